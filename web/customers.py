"""Customer base pages (客户信息库): list with filters, card, reveal, needs, exports, key customers,
needs report, and the admin audit page (/admin/audit).

Personal data is masked by default (customers/masking.py); "show in full" needs a reason, is
limited per day and audited; every export is audited. Every query goes through
customers/queries.py (the caller's scope; a guessed id answers 404).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from flask import Blueprint, Flask, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from sqlalchemy import String, cast, func, literal, select
from wtforms import BooleanField, HiddenField, SelectField, SelectMultipleField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from config import clock
from config.database import db
from customers import masking, queries
from customers.contribution import pareto_points
from customers.models import Alert, Customer, Holding, Snapshot
from customers.reports import DIMENSIONS, NEED_VALUES, NEEDS, needs_report
from org.models import AuditLog, Branch, Staff
from org.services import audit
from web import nav
from web.auth import current_scope, current_staff_id, roles_required
from web.exports import FORMATS, send_table

bp = Blueprint("customers", __name__)

ALL_ROLES = ("admin", "director", "checker", "manager")
nav.register("customers.index", _l("Customers"), ALL_ROLES, order=10)
nav.register(
    "customers.key_customers", _l("Key customers (重点客户)"), ("admin", "director", "manager"), order=11
)
nav.register("customers.alerts", _l("Alerts (客户变化预警)"), ("admin", "director", "manager"), order=13)
nav.register("customers.needs", _l("Needs report"), ("admin", "director", "manager"), order=12)
nav.register("customers.audit_log", _l("Audit log"), ("admin",), order=90)

#: Fields that can be shown in full on request.
REVEALABLE = ("name", "id_number", "phone", "address")
#: Most rows in one export.
EXPORT_LIMIT = 50_000

SEGMENT_TAGS = (
    "returning_migrant_worker",
    "self_employed",
    "civil_servant",
    "farmer",
    "institution_employee",
    "retired",
)
#: Occupation suggestions of the list filter (free text is accepted too; no table scan per request).
OCCUPATIONS = (
    "农民",
    "返乡农民工",
    "个体工商户",
    "公务员",
    "事业单位职工",
    "教师",
    "医生",
    "退休",
    "事业单位",
)
PRODUCTS = ("mobile_banking", "online_banking", "payroll_account", "debit_card")

NEED_LABELS: dict[str, Any] = {
    "preferred_product": _l("Preferred product"),
    "term": _l("Term"),
    "return_expectation": _l("Return expectation"),
    "risk_appetite": _l("Risk appetite"),
}
DIMENSION_LABELS: dict[str, Any] = {
    "age_band": _l("Age band"),
    "occupation": _l("Occupation"),
    "gender": _l("Gender"),
    "area": _l("Urban / rural"),
}


class MultiCheckboxField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class RevealForm(FlaskForm):
    """Show personal data in full: which fields and why (audited)."""

    fields = MultiCheckboxField(
        _l("Fields"),
        choices=[
            SelectChoice("name", _l("Name")),
            SelectChoice("id_number", _l("ID number")),
            SelectChoice("phone", _l("Phone")),
            SelectChoice("address", _l("Address")),
        ],
        default=["id_number", "phone"],
    )
    reason = TextAreaField(
        _l("Reason"),
        validators=[
            DataRequired(message=_l("Say why you need to see this in full.")),
            Length(min=4, max=300),
        ],
    )


def _choices(values: tuple[str, ...]) -> list[SelectChoice]:
    return [SelectChoice("", "—")] + [SelectChoice(v, v) for v in values]


class NeedsForm(FlaskForm):
    """Structured needs (存款工具的选择、存款期限、存款回报的期盼), kept by the relationship manager."""

    preferred_product = SelectField(
        _l("Preferred product"), choices=_choices(NEED_VALUES["preferred_product"])
    )
    term = SelectField(_l("Term"), choices=_choices(NEED_VALUES["term"]))
    return_expectation = SelectField(
        _l("Return expectation"), choices=_choices(NEED_VALUES["return_expectation"])
    )
    risk_appetite = SelectField(_l("Risk appetite"), choices=_choices(NEED_VALUES["risk_appetite"]))


class ExportForm(FlaskForm):
    """An export with personal data in full (admins only): a reason is required."""

    fmt = HiddenField(default="xlsx")
    query = HiddenField()
    full = BooleanField(_l("Personal data in full"))
    reason = StringField(_l("Reason"), validators=[Optional(), Length(max=300)])


# --------------------------------------------------------------------------------------------
# list


def _masked_name(customer: Customer, scope: Any) -> str:
    if queries.in_relationship(scope, customer):
        return customer.name
    return masking.mask_name(customer.name, customer.type)


def _branch_choices(scope: Any) -> list[Branch]:
    branches = scope.branches_for("admin", "director", "checker")
    stmt = select(Branch).order_by(Branch.code)
    if branches is not None:
        allowed = set(branches) | ({scope.branch_id} if scope.has("manager") else set())
        stmt = stmt.where(Branch.id.in_(sorted(allowed)))
    return list(db.session.scalars(stmt))


def _manager_choices(scope: Any, branch_ids: list[int]) -> list[Staff]:
    if not scope.has("admin", "director", "checker"):
        return [db.session.get(Staff, scope.staff_id)]
    from org.models import StaffRole

    stmt = (
        select(Staff)
        .join(StaffRole, StaffRole.staff_id == Staff.id)
        .where(StaffRole.role == "manager", Staff.branch_id.in_(branch_ids))
        .order_by(Staff.staff_no)
        .limit(500)
    )
    return list(db.session.scalars(stmt).unique())


@bp.get("/customers/")
@roles_required(*ALL_ROLES)
def index() -> Any:
    scope = current_scope()
    flt = queries.CustomerFilter.from_args(request.args)
    before = request.args.get("before", type=int)
    page = queries.customer_page(db.session, scope, flt, before=before)
    branches = _branch_choices(scope)
    branch_codes = {b.id: b.code for b in branches}
    rows = [
        {
            "c": c,
            "name": _masked_name(c, scope),
            "phone": masking.mask_phone(c.phone),
            "branch": branch_codes.get(c.branch_id, ""),
        }
        for c in page.rows
    ]
    return render_template(
        "customers/index.html",
        rows=rows,
        flt=flt,
        page=page,
        branches=branches,
        managers=_manager_choices(scope, [b.id for b in branches]),
        occupations=OCCUPATIONS,
        segment_tags=SEGMENT_TAGS,
        products=PRODUCTS,
        age_bands=[b[0] for b in queries.AGE_BANDS],
        export_form=ExportForm(),
        may_export_full=queries.may_export_unmasked(scope),
        today=clock.today(),
    )


# --------------------------------------------------------------------------------------------
# export


def _export_rows(scope: Any, flt: queries.CustomerFilter, full: bool) -> tuple[list[str], list[list[Any]]]:
    headers = [
        _("Customer no."),
        _("Name"),
        _("Type"),
        _("Branch"),
        _("Manager"),
        _("Tier"),
        _("Key customer"),
        _("ID number"),
        _("Phone"),
        _("Gender"),
        _("Occupation"),
        _("Urban / rural"),
        _("Grid"),
        _("Tags"),
        _("Contribution"),
    ]
    stmt = flt.apply(queries.scoped_customers(scope)).order_by(Customer.id).limit(EXPORT_LIMIT)
    branches = dict(db.session.execute(select(Branch.id, Branch.code)).all())
    staff_names: dict[int, str] = {}
    out: list[list[Any]] = []
    for c in db.session.scalars(stmt).yield_per(2000):
        if c.manager_id and c.manager_id not in staff_names:
            s = db.session.get(Staff, c.manager_id)
            staff_names[c.manager_id] = s.name if s else ""
        out.append(
            [
                c.customer_no,
                c.name if full else _masked_name(c, scope),
                c.type,
                branches.get(c.branch_id, ""),
                staff_names.get(c.manager_id or 0, ""),
                c.tier or "",
                bool(c.is_key),
                c.id_number if full else masking.mask_id_number(c.id_number),
                c.phone if full else masking.mask_phone(c.phone),
                c.gender or "",
                c.occupation or "",
                c.area or "",
                c.grid or "",
                ",".join(c.tags or []),
                c.contribution if c.contribution is not None else "",
            ]
        )
    return headers, out


@bp.get("/customers/export.<fmt>")
@roles_required(*ALL_ROLES)
def export(fmt: str) -> Any:
    """The filtered list, masked, as CSV or XLSX; audited."""
    if fmt not in FORMATS:
        abort(404)
    scope = current_scope()
    flt = queries.CustomerFilter.from_args(request.args)
    headers, rows = _export_rows(scope, flt, full=False)
    audit(
        db.session,
        current_staff_id(),
        "export",
        "customer",
        None,
        fields=[],
        detail={"format": fmt, "rows": len(rows), "filter": flt.args(), "masked": True},
    )
    db.session.commit()
    return send_table(rows, headers, f"customers-{clock.today().isoformat()}", fmt)


@bp.post("/customers/export")
@roles_required("admin")
def export_full() -> Any:
    """Admins only: the filtered list with personal data in full; a reason is required; audited."""
    scope = current_scope()
    form = ExportForm()
    reason = (form.reason.data or "").strip() if form.validate_on_submit() else ""
    fmt = form.fmt.data if form.fmt.data in FORMATS else "xlsx"
    if not reason or len(reason) < 4:
        flash(_("A reason is required to export personal data in full."), "danger")
        return redirect(url_for(".index")), 303
    from urllib.parse import parse_qs

    args = {k: v[-1] for k, v in parse_qs(form.query.data or "").items()}
    flt = queries.CustomerFilter.from_args(args)
    headers, rows = _export_rows(scope, flt, full=True)
    audit(
        db.session,
        current_staff_id(),
        "export",
        "customer",
        None,
        fields=list(REVEALABLE[:3]),
        reason=reason,
        detail={"format": fmt, "rows": len(rows), "filter": flt.args(), "masked": False},
    )
    db.session.commit()
    return send_table(rows, headers, f"customers-full-{clock.today().isoformat()}", fmt)


# --------------------------------------------------------------------------------------------
# card


def _balance_chart(customer_id: int) -> dict[str, Any]:
    snaps = list(
        db.session.scalars(
            select(Snapshot)
            .where(Snapshot.customer_id == customer_id)
            .order_by(Snapshot.as_of.desc())
            .limit(12)
        )
    )[::-1]
    labels = [s.as_of.strftime("%Y-%m") for s in snaps]

    def series(values: list[Decimal]) -> list[str]:
        return [str(v) for v in values]

    return {
        "type": "line",
        "data": {
            "labels": labels,
            "datasets": [
                {
                    "label": _("Deposits"),
                    "data": series([s.deposit_demand + s.deposit_time for s in snaps]),
                    "borderColor": "#198754",
                    "tension": 0.2,
                },
                {
                    "label": _("Wealth"),
                    "data": series([s.wealth for s in snaps]),
                    "borderColor": "#0d6efd",
                    "tension": 0.2,
                },
                {
                    "label": _("Loans"),
                    "data": series([s.loan for s in snaps]),
                    "borderColor": "#dc3545",
                    "tension": 0.2,
                },
            ],
        },
        "options": {"responsive": True},
    }, snaps


def _follow_ups(customer_id: int) -> list[Any]:
    try:
        from tasks.models import FollowUp  # type: ignore[attr-defined]
    except ImportError:
        return []
    return list(
        db.session.scalars(
            select(FollowUp).where(FollowUp.customer_id == customer_id).order_by(FollowUp.at.desc()).limit(30)
        )
    )


def _reveals_today(staff_id: int) -> int:
    start_of_day = dt.datetime.combine(clock.today(), dt.time())  # stored times are union-local
    return int(
        db.session.scalar(
            select(func.count())
            .select_from(AuditLog)
            .where(AuditLog.actor_id == staff_id, AuditLog.action == "reveal", AuditLog.at >= start_of_day)
        )
        or 0
    )


def _render_card(
    customer: Customer, revealed: set[str], reveal_form: RevealForm | None = None, status: int = 200
) -> Any:
    scope = current_scope()
    chart, snaps = _balance_chart(customer.id)
    latest = snaps[-1] if snaps else None
    shown = {
        "name": customer.name
        if ("name" in revealed or queries.in_relationship(scope, customer))
        else masking.mask_name(customer.name, customer.type),
        "id_number": customer.id_number
        if "id_number" in revealed
        else masking.mask_id_number(customer.id_number),
        "phone": customer.phone if "phone" in revealed else masking.mask_phone(customer.phone),
        "address": customer.address if "address" in revealed else masking.mask_address(customer.address),
    }
    from customers.contact import suggest_contact

    suggestion = suggest_contact(customer, on=clock.today())
    holdings = list(
        db.session.scalars(
            select(Holding).where(Holding.customer_id == customer.id).order_by(Holding.product)
        )
    )
    alerts = list(
        db.session.scalars(
            select(Alert).where(Alert.customer_id == customer.id).order_by(Alert.id.desc()).limit(20)
        )
    )
    branch = db.session.get(Branch, customer.branch_id)
    manager = db.session.get(Staff, customer.manager_id) if customer.manager_id else None
    needs_form = None
    if queries.may_edit_needs(scope, customer):
        needs_form = NeedsForm(data=dict(customer.needs or {}))
    age = None
    if customer.birth_date:
        from customers.contact import age_on

        age = age_on(customer.birth_date, clock.today())
    return (
        render_template(
            "customers/card.html",
            c=customer,
            shown=shown,
            revealed=revealed,
            chart=chart,
            latest=latest,
            holdings=holdings,
            alerts=alerts,
            follow_ups=_follow_ups(customer.id),
            suggestion=suggestion,
            branch=branch,
            manager=manager,
            age=age,
            needs_form=needs_form,
            need_labels=NEED_LABELS,
            may_reveal=queries.may_reveal(scope, customer),
            reveal_form=reveal_form or RevealForm(),
            in_relationship=queries.in_relationship(scope, customer),
        ),
        status,
    )


@bp.get("/customers/<int:customer_id>")
@roles_required(*ALL_ROLES)
def card(customer_id: int) -> Any:
    customer = queries.get_customer(db.session, current_scope(), customer_id)
    return _render_card(customer, set())


@bp.post("/customers/<int:customer_id>/reveal")
@roles_required(*ALL_ROLES)
def reveal(customer_id: int) -> Any:
    """Show personal data in full: a reason, a daily cap, and an audit row (who, when, which, why)."""
    scope = current_scope()
    customer = queries.get_customer(db.session, scope, customer_id)
    if not queries.may_reveal(scope, customer):
        abort(403)
    form = RevealForm()
    if not form.validate_on_submit():
        return _render_card(customer, set(), reveal_form=form, status=422)
    fields = [f for f in (form.fields.data or []) if f in REVEALABLE] or ["id_number", "phone"]
    limit = current_app.config["SETTINGS"].reveal_limit_per_day
    if _reveals_today(scope.staff_id) >= limit:
        from org import watch

        watch.reveal_cap_reached(db.session, scope.staff_id, limit)
        db.session.commit()
        abort(429)
    audit(
        db.session,
        scope.staff_id,
        "reveal",
        "customer",
        customer.id,
        fields=fields,
        reason=form.reason.data.strip(),
        detail={"customer_no": customer.customer_no},
    )
    db.session.commit()
    body, status = _render_card(customer, set(fields))
    resp = current_app.make_response((body, status))
    resp.headers["Cache-Control"] = "no-store"  # data shown in full is not kept by the browser
    return resp


@bp.post("/customers/<int:customer_id>/needs")
@roles_required(*ALL_ROLES)
def save_needs(customer_id: int) -> Any:
    scope = current_scope()
    customer = queries.get_customer(db.session, scope, customer_id)
    if not queries.may_edit_needs(scope, customer):
        abort(403)
    form = NeedsForm()
    if not form.validate_on_submit():
        for field, errors in form.errors.items():
            for e in errors:
                flash(f"{getattr(form, field).label.text}: {e}", "danger")
        return redirect(url_for(".card", customer_id=customer.id)), 303
    customer.needs = {k: getattr(form, k).data for k in NEEDS if getattr(form, k).data} or None
    db.session.commit()
    flash(_("Needs saved."), "success")
    return redirect(url_for(".card", customer_id=customer.id)), 303


# --------------------------------------------------------------------------------------------
# key customers


@bp.get("/customers/key")
@roles_required("admin", "director", "manager")
def key_customers() -> Any:
    scope = current_scope()
    branches = _branch_choices(scope)
    if not branches:
        abort(404)
    branch_id = request.args.get("branch", type=int) or (
        scope.branch_id if scope.branch_id in {b.id for b in branches} else branches[0].id
    )
    branch = next((b for b in branches if b.id == branch_id), None)
    if branch is None:
        abort(404)
    base = queries.scope_clause(scope)
    ranked = (
        select(
            Customer.contribution.label("contribution"),
            func.ntile(20).over(order_by=(Customer.contribution.desc(), Customer.id)).label("bucket"),
        )
        .where(base, Customer.branch_id == branch.id, Customer.contribution.is_not(None))
        .subquery()
    )
    buckets = db.session.execute(
        select(ranked.c.bucket, func.sum(ranked.c.contribution), func.count())
        .group_by(ranked.c.bucket)
        .order_by(ranked.c.bucket)
    ).all()
    total_n = sum(int(n) for _b, _s, n in buckets)
    total = sum((Decimal(str(s or 0)) for _b, s, _n in buckets), Decimal("0"))
    points: list[tuple[Decimal, Decimal]] = [(Decimal(0), Decimal(0))]
    bars: list[str] = []
    run_n, run_s = 0, Decimal("0")
    for _b, s, n in buckets:
        run_n += int(n)
        run_s += Decimal(str(s or 0))
        if total_n and total > 0:
            points.append(
                (
                    (Decimal(run_n) * 100 / total_n).quantize(Decimal("0.1")),
                    (run_s * 100 / total).quantize(Decimal("0.1")),
                )
            )
            bars.append(str((Decimal(str(s or 0)) * 100 / total).quantize(Decimal("0.1"))))
    chart = {
        "type": "bar",
        "data": {
            "labels": [f"{x}%" for x, _y in points[1:]],
            "datasets": [
                {
                    "type": "line",
                    "label": _("Cumulative share of contribution (%)"),
                    "data": [str(y) for _x, y in points[1:]],
                    "borderColor": "#dc3545",
                    "yAxisID": "y",
                },
                {
                    "type": "bar",
                    "label": _("Share of contribution (%)"),
                    "data": bars,
                    "backgroundColor": "#198754",
                    "yAxisID": "y",
                },
            ],
        },
        "options": {
            "responsive": True,
            "scales": {
                "y": {
                    "min": 0,
                    "max": 100,
                    "title": {"display": True, "text": _("Share of contribution (%)")},
                },
                "x": {"title": {"display": True, "text": _("Share of customers (%)")}},
            },
        },
    }
    key_stmt = (
        select(Customer)
        .where(base, Customer.branch_id == branch.id, Customer.is_key.is_(True))
        .order_by(Customer.contribution.desc(), Customer.id)
        .limit(100)
    )
    key_rows = [{"c": c, "name": _masked_name(c, scope)} for c in db.session.scalars(key_stmt)]
    key_count, key_sum = db.session.execute(
        select(func.count(), func.coalesce(func.sum(Customer.contribution), 0)).where(
            base, Customer.branch_id == branch.id, Customer.is_key.is_(True)
        )
    ).one()
    share_of_customers = round(100 * int(key_count) / total_n) if total_n else 0
    share_of_value = round(100 * Decimal(str(key_sum)) / total) if total > 0 else 0
    return render_template(
        "customers/key.html",
        branches=branches,
        branch=branch,
        chart=chart,
        rows=key_rows,
        key_count=int(key_count),
        total_n=total_n,
        share_of_customers=share_of_customers,
        share_of_value=share_of_value,
        points=points,
        pareto_points=pareto_points,
    )


# --------------------------------------------------------------------------------------------
# alerts


@bp.get("/customers/alerts")
@roles_required("admin", "director", "manager")
def alerts() -> Any:
    """Alerts of the caller's customers, newest first, with the state of their retention task."""
    from customers.alerts import ALERT_TYPES
    from tasks.models import Task

    scope = current_scope()
    kind = request.args.get("type", "")
    period = (request.args.get("period") or "").strip()[:7]
    before = request.args.get("before", type=int)
    stmt = (
        select(Alert, Customer, Task)
        .join(Customer, Customer.id == Alert.customer_id)
        .outerjoin(Task, Task.source_key == literal("alert:", String) + cast(Alert.id, String))
        .where(queries.scope_clause(scope))
    )
    if kind in ALERT_TYPES:
        stmt = stmt.where(Alert.type == kind)
    if period:
        stmt = stmt.where(Alert.period == period)
    if before:
        stmt = stmt.where(Alert.id < before)
    size = 50
    rows = db.session.execute(stmt.order_by(Alert.id.desc()).limit(size + 1)).all()
    next_before = rows[size - 1][0].id if len(rows) > size else None
    items = [{"a": a, "c": c, "task": t, "name": _masked_name(c, scope)} for a, c, t in rows[:size]]
    periods = [
        p
        for (p,) in db.session.execute(
            select(Alert.period).group_by(Alert.period).order_by(Alert.period.desc()).limit(24)
        )
    ]
    return render_template(
        "customers/alerts.html",
        items=items,
        next_before=next_before,
        types=ALERT_TYPES,
        kind=kind,
        period=period,
        periods=periods,
    )


# --------------------------------------------------------------------------------------------
# needs report


@bp.get("/customers/needs")
@roles_required("admin", "director", "manager")
def needs() -> Any:
    scope = current_scope()
    dimension = request.args.get("dimension", "age_band")
    need = request.args.get("need", "preferred_product")
    if dimension not in DIMENSIONS:
        dimension = "age_band"
    if need not in NEEDS:
        need = "preferred_product"
    flt = queries.CustomerFilter.from_args(request.args)
    report = needs_report(db.session, scope, dimension, need, flt)
    return render_template(
        "customers/needs.html",
        report=report,
        dimensions=DIMENSIONS,
        needs=NEEDS,
        dimension_labels=DIMENSION_LABELS,
        need_labels=NEED_LABELS,
        branches=_branch_choices(scope),
        flt=flt,
        age_bands=[b[0] for b in queries.AGE_BANDS],
        occupations=OCCUPATIONS,
    )


# --------------------------------------------------------------------------------------------
# audit page


@bp.get("/admin/audit")
@roles_required("admin")
def audit_log() -> Any:
    action = (request.args.get("action") or "").strip()[:40]
    staff_no = (request.args.get("staff") or "").strip()[:20]
    object_id = (request.args.get("object") or "").strip()[:60]
    day_from = _date_arg("from")
    day_to = _date_arg("to")
    before = request.args.get("before", type=int)
    stmt = select(AuditLog, Staff).outerjoin(Staff, Staff.id == AuditLog.actor_id)
    if action:
        stmt = stmt.where(AuditLog.action == action)
    if staff_no:
        stmt = stmt.where(Staff.staff_no == staff_no)
    if object_id:
        stmt = stmt.where(AuditLog.object_id == object_id)
    if day_from:
        stmt = stmt.where(AuditLog.at >= dt.datetime.combine(day_from, dt.time()))
    if day_to:
        stmt = stmt.where(
            AuditLog.at
            < dt.datetime.combine(day_to + dt.timedelta(days=1), dt.time())
        )
    if before:
        stmt = stmt.where(AuditLog.id < before)
    size = 50
    rows = db.session.execute(stmt.order_by(AuditLog.id.desc()).limit(size + 1)).all()
    next_before = rows[size - 1][0].id if len(rows) > size else None
    actions = [
        a
        for (a,) in db.session.execute(
            select(AuditLog.action).group_by(AuditLog.action).order_by(AuditLog.action)
        )
    ]
    return render_template(
        "customers/audit.html",
        rows=rows[:size],
        next_before=next_before,
        actions=actions,
        args={
            "action": action,
            "staff": staff_no,
            "object": object_id,
            "from": request.args.get("from", ""),
            "to": request.args.get("to", ""),
        },
    )


def _date_arg(name: str) -> dt.date | None:
    raw = (request.args.get(name) or "").strip()
    try:
        return dt.date.fromisoformat(raw) if raw else None
    except ValueError:
        return None


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
