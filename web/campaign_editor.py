"""The director's multi-step campaign editor (PRODUCT.md §3, §7, §8, §11.1, §11.5).

Steps: (1) basics — kind, name, code, period, branches; (2) population with a live count;
(3) targets — a grid per staff member of the campaign's branches, with the branch target split by
headcount or weight; (4) rules (from the kind's defaults, editable), task templates, budget and
the what-if on last month's data; (5) review with the launch check, and Launch.

Every save goes through :mod:`campaigns.definition` — the same parser as the YAML file — on the
whole definition (the stored one with this step's part replaced), so the editor and the YAML
produce the same structure and a refused step changes nothing. Only drafts are editable.
"""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace
from typing import Any

from flask import Blueprint, Flask, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from flask_wtf import FlaskForm
from sqlalchemy import func, select
from wtforms import (
    BooleanField,
    DateField,
    DecimalField,
    Field,
    HiddenField,
    IntegerField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, NumberRange, Optional, Regexp
from wtforms.widgets import CheckboxInput, ListWidget

from campaigns import kinds, services
from campaigns.definition import (
    DefinitionError,
    DefinitionErrors,
    NotEditable,
    dump_yaml,
    export_definition,
    load_definition,
    load_yaml,
)
from campaigns.launch_check import check, point_in_time_reason
from campaigns.models import Campaign, CampaignState
from campaigns.population import population_select
from config.database import db
from org.models import Branch, Role, Staff, StaffRole, StaffStatus
from web.auth import current_scope, current_staff_id, roles_required

bp = Blueprint("campaign_editor", __name__, url_prefix="/campaigns/editor")


def ch(pairs: Any) -> list[SelectChoice]:
    """SelectChoice options from (value, label) pairs."""
    return [SelectChoice(value, label) for value, label in pairs]


STEPS = (
    ("basics", _l("1 · Basics")),
    ("population", _l("2 · Population")),
    ("targets", _l("3 · Targets")),
    ("rules", _l("4 · Rules and what-if")),
    ("review", _l("5 · Review and launch")),
)
TIERS = ch([("vip", _l("VIP")), ("high", _l("high")), ("mass", _l("mass"))])
TYPES = ch(
    [("individual", _l("individual")), ("business", _l("business")), ("institution", _l("institution"))]
)
PRODUCTS = [
    "mobile_banking",
    "online_banking",
    "payroll_account",
    "debit_card",
    "time_deposit",
    "wealth",
    "loan",
]


class MultiCheckboxField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


# ------------------------------------------------------------------------------------------
# Forms
# ------------------------------------------------------------------------------------------


class BasicsForm(FlaskForm):
    kind = SelectField(_l("Kind"), validators=[DataRequired()])
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=200)])
    code = StringField(
        _l("Code"),
        validators=[
            DataRequired(),
            Length(max=40),
            Regexp(
                r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$",
                message=_l("Letters, digits, '_', '.' or '-', e.g. DEP-2027-01."),
            ),
        ],
    )
    start = DateField(_l("Start"), validators=[DataRequired(message=_l("A date YYYY-MM-DD."))])
    end = DateField(_l("End"), validators=[DataRequired(message=_l("A date YYYY-MM-DD."))])
    branches = MultiCheckboxField(_l("Branches"), coerce=str)
    all_branches = BooleanField(_l("All branches of the union"))

    def validate_branches(self, field: Field) -> None:
        from wtforms.validators import ValidationError

        if not field.data and not self.all_branches.data:
            raise ValidationError(_("Choose at least one branch."))

    def validate_end(self, field: Field) -> None:
        from wtforms.validators import ValidationError

        if self.start.data and field.data and field.data < self.start.data:
            raise ValidationError(_("The end must be on or after the start."))


class PopulationForm(FlaskForm):
    tags_any = StringField(
        _l("Any of these tags"),
        description=_l("comma-separated, e.g. returning_migrant_worker, self_employed"),
    )
    tags_all = StringField(_l("All of these tags"))
    tier_in = MultiCheckboxField(_l("Tier"), choices=TIERS)
    type_in = MultiCheckboxField(_l("Customer type"), choices=TYPES)
    area = SelectField(
        _l("Area"), choices=ch([("", "—"), ("urban", _l("urban")), ("rural", _l("rural"))]), default=""
    )
    gender = SelectField(
        _l("Gender"), choices=ch([("", "—"), ("M", _l("male")), ("F", _l("female"))]), default=""
    )
    occupation_in = StringField(_l("Occupations"), description=_l("comma-separated"))
    grid_in = StringField(_l("Grids"), description=_l("comma-separated village or street grids"))
    age_min = IntegerField(_l("Age from"), validators=[Optional(), NumberRange(min=0, max=120)])
    age_max = IntegerField(_l("Age to"), validators=[Optional(), NumberRange(min=0, max=120)])
    has_holding = SelectField(
        _l("Holds product"), choices=ch([("", "—")] + [(p, p) for p in PRODUCTS]), default=""
    )
    no_holding = SelectField(
        _l("Does not hold"), choices=ch([("", "—")] + [(p, p) for p in PRODUCTS]), default=""
    )
    is_key = SelectField(
        _l("Key customers"),
        choices=ch([("", "—"), ("yes", _l("only key customers")), ("no", _l("no key customers"))]),
        default="",
    )
    customer_nos = TextAreaField(
        _l("Or a list of customer numbers"), description=_l("one per line or comma-separated")
    )

    def validate_age_max(self, field: Field) -> None:
        from wtforms.validators import ValidationError

        if field.data is not None and self.age_min.data is not None and field.data < self.age_min.data:
            raise ValidationError(_("Must be at least the age from."))

    LISTS = ("tags_any", "tags_all", "occupation_in", "grid_in", "customer_nos")
    WORDS = ("area", "gender", "has_holding", "no_holding")

    def spec(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in self.LISTS:
            raw = (getattr(self, name).data or "").replace("\n", ",").replace("，", ",")
            items = [x.strip() for x in raw.split(",") if x.strip()]
            if items:
                out[name] = items
        for name in ("tier_in", "type_in"):
            if getattr(self, name).data:
                out[name] = list(getattr(self, name).data)
        for name in self.WORDS:
            if getattr(self, name).data:
                out[name] = getattr(self, name).data
        for name in ("age_min", "age_max"):
            if getattr(self, name).data is not None:
                out[name] = getattr(self, name).data
        if self.is_key.data:
            out["is_key"] = self.is_key.data == "yes"
        return out

    def fill(self, spec: dict[str, Any]) -> None:
        for name in self.LISTS:
            if spec.get(name):
                getattr(self, name).data = ", ".join(spec[name])
        for name in ("tier_in", "type_in", *self.WORDS, "age_min", "age_max"):
            if spec.get(name) is not None:
                getattr(self, name).data = spec[name]
        if spec.get("is_key") is not None:
            self.is_key.data = "yes" if spec["is_key"] else "no"


class RulesForm(FlaskForm):
    rules = TextAreaField(_l("Reward rules (YAML)"), render_kw={"rows": 12, "class": "font-monospace"})
    no_rules = BooleanField(_l("Launch without reward rules (explicitly none)"))
    pick = MultiCheckboxField(_l("Add from the kind's defaults"), coerce=str)
    tasks = TextAreaField(_l("Task templates (YAML)"), render_kw={"rows": 5, "class": "font-monospace"})
    budget = DecimalField(_l("Budget (元)"), places=2, validators=[Optional(), NumberRange(min=0)])
    action = HiddenField(default="save")


class LaunchForm(FlaskForm):
    pass


# ------------------------------------------------------------------------------------------
# Helpers
# ------------------------------------------------------------------------------------------


def _campaign(campaign_id: int) -> Campaign:
    scope = current_scope()
    campaign = services.get_campaign(db.session, scope, campaign_id)
    services.require_director_of(scope, campaign)
    return campaign


def _editable(campaign: Campaign) -> None:
    if campaign.state != CampaignState.draft:
        raise NotEditable(campaign)


def _kind_choices() -> list[SelectChoice]:
    from flask_babel import get_locale

    return ch(kinds.kind_choices("zh" if str(get_locale()).startswith("zh") else "en"))


def _branch_choices() -> list[tuple[str, str]]:
    scope = current_scope()
    stmt = (
        select(Branch.code, Branch.name)
        .where(scope.branch_filter(Branch.id, "director"))
        .order_by(Branch.code)
    )
    return [(code, f"{code} {name}") for code, name in db.session.execute(stmt).all()]


def _save(campaign: Campaign | None, data: dict[str, Any]) -> tuple[Campaign | None, DefinitionErrors | None]:
    try:
        saved = load_definition(db.session, data, campaign)
    except DefinitionErrors as exc:
        db.session.rollback()
        return None, exc
    db.session.commit()
    return saved, None


def _attach(
    form: FlaskForm, errors: list[DefinitionError], field_of: Any, with_path: bool = False
) -> list[str]:
    """Put each error beside its field (``field_of(path)`` → field name or None); return the rest."""
    rest = []
    for e in errors:
        name = field_of(e.path)
        text = _("Expected %(expected)s, found %(found)s.", expected=e.expected, found=e.found)
        if with_path:
            text = f"{e.path}: {text}"
        field = getattr(form, name, None) if name else None
        if field is not None:
            field.errors = [*list(field.errors), text]
        else:
            rest.append(f"{e.path}: {text}")
    return rest


def format_count(n: int) -> str:
    """ "1 284 customers" (thousands grouped by a space, as on a Chinese bank's forms)."""
    grouped = f"{n:,}".replace(",", " ")
    return ngettext("%(count)s customer", "%(count)s customers", n, count=grouped)


def _population_count(campaign: Campaign, spec: dict[str, Any]) -> int:
    probe = SimpleNamespace(
        id=campaign.id, all_branches=campaign.all_branches, population={"customers": spec}
    )
    stmt = population_select(probe)  # type: ignore[arg-type]
    return int(db.session.scalar(select(func.count()).select_from(stmt.subquery())) or 0)


def _managers(campaign: Campaign) -> list[Staff]:
    stmt = (
        select(Staff)
        .join(Branch, Branch.id == Staff.branch_id)
        .where(
            Staff.status != StaffStatus.departed,
            select(StaffRole.id)
            .where(StaffRole.staff_id == Staff.id, StaffRole.role == Role.manager)
            .exists(),
        )
        .order_by(Branch.code, Staff.staff_no)
    )
    if not campaign.all_branches:
        stmt = stmt.where(Staff.branch_id.in_([b.id for b in campaign.branches]))
    return list(db.session.scalars(stmt))


def _campaign_branches(campaign: Campaign) -> list[Branch]:
    if campaign.all_branches:
        return list(db.session.scalars(select(Branch).order_by(Branch.code)))
    return list(campaign.branches)


def split_values(total: Decimal, people: list[tuple[str, Decimal]]) -> dict[str, Decimal]:
    """Split ``total`` over (staff_no, weight) exactly to the fen, by largest remainder."""
    from appraisal.money import allocate_largest_remainder

    if not people or not any(w for _, w in people):
        return {}
    return allocate_largest_remainder(Decimal(total), people)


def _render(template: str, campaign: Campaign | None, step: str, **ctx: Any) -> Any:
    return render_template(f"campaign_editor/{template}", campaign=campaign, steps=STEPS, step=step, **ctx)


# ------------------------------------------------------------------------------------------
# Step 1: basics (also creates the draft)
# ------------------------------------------------------------------------------------------


@bp.route("/new", methods=["GET", "POST"])
@roles_required("director")
def new() -> Any:
    form = BasicsForm()
    form.kind.choices = _kind_choices()
    form.branches.choices = ch(_branch_choices())
    scope = current_scope()
    union_wide = scope.branches_for("director") is None
    if request.method == "GET":
        form.kind.data = request.args.get("kind") or next(iter(kinds.KINDS))
    errors: list[str] = []
    if form.validate_on_submit():
        spec = kinds.get_kind(form.kind.data)
        data = {
            "code": form.code.data.strip(),
            "name": form.name.data.strip(),
            "kind": spec.code,
            "owner": db.session.get(Staff, current_staff_id()).staff_no,
            "branches": "all" if (form.all_branches.data and union_wide) else list(form.branches.data),
            "period": {"start": form.start.data, "end": form.end.data},
            "population": spec.default_population(),
            "targets": [],
            "tasks": spec.default_tasks(),
            "rules": spec.default_rules(),
        }
        campaign, exc = _save(None, data)
        if exc is None and campaign is not None:
            flash(_("Draft %(code)s saved. Now choose its customers.", code=campaign.code), "success")
            return redirect(url_for(".edit", campaign_id=campaign.id, step="population"), 303)
        errors = _attach(form, exc.errors if exc else [], _basics_field)
    return _render("basics.html", None, "basics", form=form, errors=errors, union_wide=union_wide), (
        422 if request.method == "POST" else 200
    )


def _basics_field(path: str) -> str | None:
    if path.startswith("period.start"):
        return "start"
    if path.startswith("period.end"):
        return "end"
    if path.startswith("branches") or path == "owner":
        return "branches"
    return path if path in ("code", "name", "kind") else None


@bp.route("/<int:campaign_id>/edit", methods=["GET", "POST"], defaults={"step": ""})
@bp.route("/<int:campaign_id>/edit/<step>", methods=["GET", "POST"])
@roles_required("director")
def edit(campaign_id: int, step: str) -> Any:
    campaign = _campaign(campaign_id)
    step = step or "basics"  # an empty default: /edit/basics must not redirect to /edit
    views = {
        "basics": _edit_basics,
        "population": _edit_population,
        "targets": _edit_targets,
        "rules": _edit_rules,
        "review": _review,
    }
    if step not in views:
        from flask import abort

        abort(404)
    if step != "review" and campaign.state != CampaignState.draft:
        if request.method == "POST":
            raise NotEditable(campaign)
        flash(_("Only a draft can be edited; this campaign is %(state)s.", state=campaign.state), "warning")
        return redirect(url_for(".edit", campaign_id=campaign.id, step="review"))
    return views[step](campaign)


def _edit_basics(campaign: Campaign) -> Any:
    form = BasicsForm()
    form.kind.choices = _kind_choices()
    form.branches.choices = ch(_branch_choices())
    union_wide = current_scope().branches_for("director") is None
    if request.method == "GET":
        form.kind.data, form.name.data, form.code.data = campaign.kind, campaign.name, campaign.code
        form.start.data, form.end.data = campaign.start_date, campaign.end_date
        form.branches.data = [b.code for b in campaign.branches]
        form.all_branches.data = campaign.all_branches
    errors: list[str] = []
    if form.validate_on_submit():
        data = export_definition(campaign)
        if form.kind.data != campaign.kind:
            spec = kinds.get_kind(form.kind.data)
            data["tasks"], data["rules"] = spec.default_tasks(), spec.default_rules()
            flash(_("The kind changed: task templates and rules were reset to its defaults."), "info")
        data.update(
            code=form.code.data.strip(),
            name=form.name.data.strip(),
            kind=form.kind.data,
            branches="all" if (form.all_branches.data and union_wide) else list(form.branches.data),
            period={"start": form.start.data, "end": form.end.data},
        )
        saved, exc = _save(campaign, data)
        if exc is None:
            return redirect(url_for(".edit", campaign_id=campaign.id, step="population"), 303)
        errors = _attach(form, exc.errors, _basics_field)
    status = 422 if request.method == "POST" else 200
    return _render("basics.html", campaign, "basics", form=form, errors=errors, union_wide=union_wide), status


# ------------------------------------------------------------------------------------------
# Step 2: population with a live count
# ------------------------------------------------------------------------------------------


def _edit_population(campaign: Campaign) -> Any:
    form = PopulationForm()
    if request.method == "GET":
        form.fill((campaign.population or {}).get("customers") or {})
    errors: list[str] = []
    if form.validate_on_submit():
        data = export_definition(campaign)
        data["population"] = {"customers": form.spec()}
        saved, exc = _save(campaign, data)
        if exc is None:
            return redirect(url_for(".edit", campaign_id=campaign.id, step="targets"), 303)
        errors = _attach(
            form,
            exc.errors,
            lambda p: p.rsplit(".", 1)[-1] if p.startswith("population.customers.") else None,
        )
    count = _population_count(campaign, form.spec()) if not form.errors else None
    status = 422 if request.method == "POST" else 200
    return _render(
        "population.html",
        campaign,
        "population",
        form=form,
        errors=errors,
        count=count,
        format_count=format_count,
    ), status


@bp.get("/<int:campaign_id>/population/count")
@roles_required("director")
def population_count(campaign_id: int) -> Any:
    """htmx: the number of customers the filter in the form would select now."""
    campaign = _campaign(campaign_id)
    form = PopulationForm(formdata=request.args, meta={"csrf": False})
    form.validate()  # fields left out of the query (unchosen selects) simply do not filter
    if form.age_min.errors or form.age_max.errors:
        return render_template(
            "campaign_editor/_count.html", count=None, form=form, format_count=format_count
        )
    return render_template(
        "campaign_editor/_count.html",
        count=_population_count(campaign, form.spec()),
        form=form,
        format_count=format_count,
    )


# ------------------------------------------------------------------------------------------
# Step 3: targets grid
# ------------------------------------------------------------------------------------------


def _grid_form(campaign: Campaign, branches: list[Branch], people: list[Staff]) -> FlaskForm:
    measures = kinds.get_kind(campaign.kind).measures
    others = sorted(kinds.known_measures() - set(measures))
    attrs: dict[str, Any] = {
        "measure": SelectField(_l("Measure"), choices=ch([(m, m) for m in (*measures, *others)])),
        "basis": SelectField(
            _l("Basis"),
            choices=ch(
                [("daily_average", _l("daily average (日均)")), ("point_in_time", _l("point in time (时点)"))]
            ),
        ),
        "action": HiddenField(default="save"),
    }
    value = {"places": 2, "validators": [Optional(), NumberRange(min=0, message=_l("Not below 0."))]}
    for b in branches:
        attrs[f"b_{b.id}"] = DecimalField(_l("Branch target"), **value)
        attrs[f"split_{b.id}"] = SelectField(
            _l("Split"),
            choices=ch([("", "—"), ("by_headcount", _l("by headcount")), ("by_weight", _l("by weight"))]),
            default="",
        )
    for s in people:
        attrs[f"s_{s.id}"] = DecimalField(s.name, **value)
        attrs[f"w_{s.id}"] = DecimalField(
            _l("Weight"), places=None, validators=[Optional(), NumberRange(min=0)]
        )
    return type("TargetsForm", (FlaskForm,), attrs)()  # type: ignore[no-any-return]


def _edit_targets(campaign: Campaign) -> Any:
    branches, people = _campaign_branches(campaign), _managers(campaign)
    form: Any = _grid_form(campaign, branches, people)
    spec = kinds.get_kind(campaign.kind)
    measure = request.values.get("measure") or spec.target_measure or spec.measures[0]
    staff_no = {s.id: s.staff_no for s in people}
    errors: list[str] = []
    if request.method == "GET":
        form.measure.data = measure
        form.basis.data = "daily_average"
        for t in campaign.targets:
            if t.measure != measure:
                continue
            form.basis.data = t.basis
            if t.staff_id and hasattr(form, f"s_{t.staff_id}"):
                getattr(form, f"s_{t.staff_id}").data = Decimal(t.value)
            if t.branch_id and hasattr(form, f"b_{t.branch_id}"):
                getattr(form, f"b_{t.branch_id}").data = Decimal(t.value)
                getattr(form, f"split_{t.branch_id}").data = t.split or ""
                for s in people:
                    w = (t.weights or {}).get(s.staff_no)
                    if w is not None:
                        getattr(form, f"w_{s.id}").data = Decimal(str(w))
    elif form.validate_on_submit():
        if form.action.data in ("split_headcount", "split_weight"):
            _fill_split(form, branches, people, by_weight=form.action.data == "split_weight")
            flash(_("Branch targets split over their staff; check the figures and save."), "info")
        else:
            reason = point_in_time_reason(form.measure.data, form.basis.data)
            if reason:
                form.basis.errors = [
                    *list(form.basis.errors),
                    _("Refused by the launch check: %(reason)s.", reason=reason),
                ]
            else:
                saved, errors = _save_targets(campaign, form, branches, people, staff_no)
                if saved:
                    flash(_("Targets on %(measure)s saved.", measure=form.measure.data), "success")
                    return redirect(
                        url_for(".edit", campaign_id=campaign.id, step="targets", measure=form.measure.data),
                        303,
                    )
    sums = _grid_sums(form, branches, people)
    findings = [
        f for f in check(db.session, campaign) if f.code in ("stacked_targets", "point_in_time_target")
    ]
    status = 422 if request.method == "POST" and (form.errors or errors) else 200
    return _render(
        "targets.html",
        campaign,
        "targets",
        form=form,
        branches=branches,
        people=people,
        errors=errors,
        sums=sums,
        findings=findings,
        measure=form.measure.data or measure,
        others=sorted({t.measure for t in campaign.targets} - {form.measure.data or measure}),
    ), status


def _fill_split(form: Any, branches: list[Branch], people: list[Staff], by_weight: bool) -> None:
    for b in branches:
        total = getattr(form, f"b_{b.id}").data
        staff = [s for s in people if s.branch_id == b.id]
        if total is None or not staff:
            continue
        weights = [
            (s.staff_no, Decimal(getattr(form, f"w_{s.id}").data or 0) if by_weight else Decimal(1))
            for s in staff
        ]
        if by_weight and not any(w for _, w in weights):
            getattr(form, f"w_{staff[0].id}").errors = [_("Give the weights first.")]
            continue
        parts = split_values(Decimal(total), weights)
        for s in staff:
            cell = getattr(form, f"s_{s.id}")
            cell.data = parts.get(s.staff_no)
            cell.raw_data = None  # a browser posts the empty cells: show the split, not what was sent
        getattr(form, f"split_{b.id}").data = "by_weight" if by_weight else "by_headcount"


def _grid_sums(form: Any, branches: list[Branch], people: list[Staff]) -> dict[int, Decimal]:
    sums: dict[int, Decimal] = {}
    for s in people:
        v = getattr(form, f"s_{s.id}").data
        if v is not None:
            sums[s.branch_id] = sums.get(s.branch_id, Decimal(0)) + Decimal(v)
    return sums


def _save_targets(
    campaign: Campaign, form: Any, branches: list[Branch], people: list[Staff], staff_no: dict[int, str]
) -> tuple[bool, list[str]]:
    measure, basis = form.measure.data, form.basis.data
    data = export_definition(campaign)
    kept = [t for t in data["targets"] if t["measure"] != measure]
    rows: list[tuple[str, dict[str, Any]]] = []
    for b in branches:
        value = getattr(form, f"b_{b.id}").data
        if value is None:
            continue
        t: dict[str, Any] = {"measure": measure, "branch": b.code, "value": value}
        split = getattr(form, f"split_{b.id}").data
        if split:
            t["split"] = split
        if split == "by_weight":
            t["weights"] = {
                s.staff_no: getattr(form, f"w_{s.id}").data
                for s in people
                if s.branch_id == b.id and getattr(form, f"w_{s.id}").data
            }
        rows.append((f"b_{b.id}", t))
    for s in people:
        value = getattr(form, f"s_{s.id}").data
        if value is not None:
            rows.append((f"s_{s.id}", {"measure": measure, "staff": staff_no[s.id], "value": value}))
    for _name, t in rows:
        if basis != "daily_average":
            t["basis"] = basis
    data["targets"] = kept + [t for _, t in rows]
    saved, exc = _save(campaign, data)
    if exc is None:
        return True, []
    offset = len(kept)

    def field_of(path: str) -> str | None:
        if not path.startswith("targets["):
            return None
        index = int(path[len("targets[") : path.index("]")])
        if index < offset:
            return None
        name = rows[index - offset][0]
        if ".weights" in path or ".split" in path:
            return name.replace("b_", "split_") if name.startswith("b_") else name
        if path.endswith(".basis"):
            return "basis"
        return name

    return False, _attach(form, exc.errors, field_of)


# ------------------------------------------------------------------------------------------
# Step 4: rules, task templates, budget, what-if
# ------------------------------------------------------------------------------------------


def _yaml_list(items: list[dict[str, Any]]) -> str:
    return dump_yaml(items) if items else ""


def _edit_rules(campaign: Campaign) -> Any:
    spec = kinds.get_kind(campaign.kind)
    form = RulesForm()
    defaults = {r["id"]: r for r in spec.default_rules()}
    form.pick.choices = ch(
        (rid, f"{rid}: {r['kind']} · {r.get('measure', '')}") for rid, r in defaults.items()
    )
    current = export_definition(campaign)
    errors: list[str] = []
    if request.method == "GET":
        form.rules.data = _yaml_list(current["rules"] if isinstance(current["rules"], list) else [])
        form.no_rules.data = current["rules"] == "none"
        form.tasks.data = _yaml_list(current["tasks"])
        form.budget.data = campaign.budget
    elif form.validate_on_submit():
        rules, tasks = _read_yaml(form, "rules"), _read_yaml(form, "tasks")
        if form.action.data == "pick" and not form.rules.errors:
            have = {r.get("id") for r in rules or [] if isinstance(r, dict)}
            rules = list(rules or []) + [defaults[rid] for rid in form.pick.data if rid not in have]
            form.rules.data = _yaml_list([_normalised(r) for r in rules])
        elif not form.rules.errors and not form.tasks.errors:
            current["rules"] = "none" if form.no_rules.data and not rules else (rules or [])
            current["tasks"] = tasks if tasks is not None else []
            if form.budget.data is not None:
                current["budget"] = form.budget.data
            else:
                current.pop("budget", None)
            saved, exc = _save(campaign, current)
            if exc is None:
                flash(_("Rules saved; the what-if below uses them."), "success")
                return redirect(url_for(".edit", campaign_id=campaign.id, step="rules"), 303)
            errors = _attach(form, exc.errors, _rules_field, with_path=True)
    whatif, whatif_error = _whatif(campaign)
    status = 422 if request.method == "POST" and (form.errors or errors) else 200
    return _render(
        "rules.html", campaign, "rules", form=form, errors=errors, whatif=whatif, whatif_error=whatif_error
    ), status


def _normalised(rule: Any) -> Any:
    """A rule as the YAML export writes it (numbers unquoted), or as given when it is not valid yet."""
    from appraisal.rules import RuleErrors, parse_rule

    try:
        return parse_rule(rule).to_dict()
    except RuleErrors:
        return rule


def _rules_field(path: str) -> str | None:
    head = path.split("[")[0].split(".")[0]
    return head if head in ("rules", "tasks", "budget") else None


def _read_yaml(form: RulesForm, name: str) -> list[Any] | None:
    field = getattr(form, name)
    text = (field.data or "").strip()
    if not text:
        return None
    try:
        value = load_yaml(text)
    except DefinitionErrors as exc:
        field.errors = [*list(field.errors), str(exc.errors[0])]
        return None
    if not isinstance(value, list):
        field.errors = [
            *list(field.errors),
            _("Expected a list (each item starting with '- '), found something else."),
        ]
        return None
    return value


def _whatif(campaign: Campaign) -> tuple[Any, str | None]:
    from campaigns.whatif import estimate

    try:
        return estimate(db.session, campaign), None
    except Exception as exc:  # the estimate is advice: a failure must not block editing
        db.session.rollback()
        return None, str(exc)


# ------------------------------------------------------------------------------------------
# Step 5: review and launch
# ------------------------------------------------------------------------------------------


def _review(campaign: Campaign, refused: str | None = None) -> Any:
    probe = population_select(campaign)
    count = int(db.session.scalar(select(func.count()).select_from(probe.subquery())) or 0)
    findings = check(db.session, campaign)
    whatif, whatif_error = _whatif(campaign)
    return _render(
        "review.html",
        campaign,
        "review",
        form=LaunchForm(),
        yaml_text=dump_yaml(export_definition(campaign)),
        count=count,
        format_count=format_count,
        findings=findings,
        blocking=[f for f in findings if f.blocking],
        whatif=whatif,
        whatif_error=whatif_error,
        refused=refused,
        staff_names=dict(db.session.execute(select(Staff.id, Staff.name)).all()),
        branch_codes=dict(db.session.execute(select(Branch.id, Branch.code)).all()),
    ), (409 if refused else 200)


@bp.post("/<int:campaign_id>/launch")
@roles_required("director")
def launch(campaign_id: int) -> Any:
    """Launch through the engine (guards and launch check); refused → the review with the reason."""
    from workflow.errors import WorkflowError

    campaign = _campaign(campaign_id)
    form = LaunchForm()
    if not form.validate_on_submit():
        flash(_("The form expired; try again."), "danger")
        return redirect(url_for(".edit", campaign_id=campaign.id, step="review"), 303)
    try:
        services.launch(db.session, campaign, current_staff_id())
        db.session.commit()
    except WorkflowError as exc:
        db.session.rollback()
        campaign = _campaign(campaign_id)
        return _review(campaign, refused=str(exc))
    flash(_("Launched: assignments and first tasks are being made."), "success")
    return redirect(url_for("campaigns.detail", campaign_id=campaign.id), 303)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
