"""Organisation admin (PRODUCT.md §1, §7): branches, staff and their roles, passwords, imports.

Only admins change anything. A director may look at the staff of their own branches, read-only.
Every change is audited. Imports are uploaded here and run as a job
(:mod:`customers.import_jobs`); the page follows its progress and shows the row-by-row report.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from sqlalchemy import func, or_, select
from wtforms import (
    BooleanField,
    DateField,
    EmailField,
    IntegerField,
    PasswordField,
    SelectField,
    StringField,
)
from wtforms.validators import (
    DataRequired,
    Email,
    EqualTo,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    Regexp,
    ValidationError,
)

import customers.import_jobs as import_jobs  # registers the task until config/celery.py imports it
from config.database import db
from customers.fileformats import HEADERS, REQUIRED_COLUMNS
from customers.identity import normalise_mobile, validate_mobile
from customers.imports import KINDS
from org.models import Branch, Role, Staff, StaffRole, StaffStatus
from org.scope import NotFound, Scope
from org.services import audit, hash_password
from web import nav
from web.auth import current_scope, current_staff_id, roles_required
from workflow.models import JobProgress
from workflow.outbox import send_after_commit

bp = Blueprint("org", __name__, url_prefix="/admin")

nav.register("org.staff_list", _l("Staff"), ("admin", "director"), order=80)
nav.register("org.branches", _l("Branches"), ("admin",), order=81)
nav.register("org.imports", _l("Imports"), ("admin",), order=82)

PAGE_SIZE = 50
CODE_RE = r"^[A-Za-z0-9_\-]+$"
ROLE_LABELS = {
    "admin": _l("Administrator (系统管理员)"),
    "director": _l("Director (信用社主任 / 联社领导)"),
    "manager": _l("Customer manager (客户经理)"),
    "checker": _l("Checker (复核员)"),
}
STATUS_LABELS = {
    "active": _l("Active"),
    "on_leave": _l("On leave"),
    "inactive": _l("Inactive"),
    "departed": _l("Departed"),
}
KIND_LABELS = {
    "branches": _l("Branches (网点)"),
    "staff": _l("Staff (员工)"),
    "customers": _l("Customers (客户)"),
    "snapshots": _l("Balance snapshots (余额快照)"),
    "holdings": _l("Product holdings (产品持有)"),
}


def _union_admin() -> Scope:
    """The caller, who must be an admin of the whole union (branches and imports touch everyone)."""
    scope = current_scope()
    if not scope.has(Role.admin) or scope.branches_for(Role.admin) is not None:
        abort(403)
    return scope


def _branch_choices(blank: str | None = None) -> list[tuple[str, str]]:
    rows = db.session.execute(select(Branch.id, Branch.code, Branch.name).order_by(Branch.code)).all()
    choices = [(str(i), f"{code} · {name}") for i, code, name in rows]
    return ([("", blank)] if blank is not None else []) + choices


def _flash_errors(form: FlaskForm) -> None:
    for errors in form.errors.values():
        for error in errors:
            flash(str(error), "danger")


# ---------------------------------------------------------------------------------------------
# Branches


class BranchForm(FlaskForm):
    code = StringField(
        _l("Branch code"),
        validators=[
            DataRequired(_l("Enter the branch code.")),
            Length(max=20),
            Regexp(CODE_RE, message=_l("Letters, digits, - and _ only.")),
        ],
    )
    name = StringField(_l("Name"), validators=[DataRequired(_l("Enter the branch name.")), Length(max=100)])
    parent_id = SelectField(_l("Parent branch"), choices=[], validators=[Optional()])

    def __init__(self, *args: Any, branch: Branch | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.branch = branch
        self.parent_id.choices = _branch_choices(str(_("(none: the union itself)")))

    def validate_code(self, field: Any) -> None:
        field.data = (field.data or "").strip()
        other = db.session.scalar(select(Branch).where(Branch.code == field.data))
        if other is not None and other is not self.branch:
            raise ValidationError(_("Another branch already has this code."))

    def validate_parent_id(self, field: Any) -> None:
        if not field.data or self.branch is None:
            return
        parent = db.session.get(Branch, int(field.data))
        seen = set()
        while parent is not None and parent.id not in seen:
            if parent.id == self.branch.id:
                raise ValidationError(_("A branch cannot be placed under itself or one of its own branches."))
            seen.add(parent.id)
            parent = parent.parent


@bp.get("/branches")
@roles_required("admin")
def branches() -> Any:
    _union_admin()
    rows = db.session.execute(
        select(Branch, func.count(Staff.id))
        .outerjoin(Staff, Staff.branch_id == Branch.id)
        .group_by(Branch.id)
        .order_by(Branch.code)
    ).all()
    return render_template("org/branches.html", rows=rows)


@bp.route("/branches/new", methods=["GET", "POST"])
@roles_required("admin")
def branch_new() -> Any:
    return _branch_edit(None)


@bp.route("/branches/<int:branch_id>", methods=["GET", "POST"])
@roles_required("admin")
def branch_edit(branch_id: int) -> Any:
    branch = db.session.get(Branch, branch_id)
    if branch is None:
        raise NotFound()
    return _branch_edit(branch)


def _branch_edit(branch: Branch | None) -> Any:
    _union_admin()
    form = BranchForm(branch=branch, obj=None)
    if request.method == "GET" and branch is not None:
        form.code.data, form.name.data = branch.code, branch.name
        form.parent_id.data = str(branch.parent_id or "")
    if form.validate_on_submit():
        created = branch is None
        if branch is None:
            branch = Branch(code=form.code.data, name=form.name.data.strip())
            db.session.add(branch)
        branch.code = form.code.data
        branch.name = form.name.data.strip()
        branch.parent_id = int(form.parent_id.data) if form.parent_id.data else None
        db.session.flush()
        audit(
            db.session,
            current_staff_id(),
            "branch_create" if created else "branch_update",
            "branch",
            branch.code,
            detail={"name": branch.name, "parent_id": branch.parent_id},
        )
        db.session.commit()
        flash(_("Branch %(code)s saved.", code=branch.code), "success")
        return redirect(url_for(".branches")), 303
    status = 422 if request.method == "POST" else 200
    return render_template("org/branch_form.html", form=form, branch=branch), status


# ---------------------------------------------------------------------------------------------
# Staff


class StaffForm(FlaskForm):
    staff_no = StringField(
        _l("Staff number (login)"),
        validators=[
            DataRequired(_l("Enter the staff number.")),
            Length(max=20),
            Regexp(CODE_RE, message=_l("Letters, digits, - and _ only.")),
        ],
    )
    name = StringField(_l("Name"), validators=[DataRequired(_l("Enter the name.")), Length(max=60)])
    branch_id = SelectField(_l("Branch"), choices=[], validators=[DataRequired(_l("Choose a branch."))])
    email = EmailField(
        _l("E-mail"), validators=[Optional(), Length(max=120), Email(_l("Not an e-mail address."))]
    )
    phone = StringField(_l("Mobile"), validators=[Optional(), Length(max=20)])
    hired_on = DateField(_l("Hired on"), validators=[Optional()])
    status = SelectField(_l("Status"), choices=[], validators=[DataRequired()])
    senior = BooleanField(_l("Senior manager (gets key customers)"))
    capacity = IntegerField(
        _l("Capacity (most open assignments per campaign)"),
        default=400,
        validators=[
            InputRequired(_l("Enter a capacity.")),
            NumberRange(min=1, max=100000, message=_l("Between 1 and 100000.")),
        ],
    )
    substitute_no = StringField(
        _l("Substitute while away (staff number)"), validators=[Optional(), Length(max=20)]
    )
    away_until = DateField(_l("Away until"), validators=[Optional()])
    role_admin = BooleanField(ROLE_LABELS["admin"])
    scope_admin = SelectField(_l("Scope"), choices=[], validators=[Optional()])
    role_director = BooleanField(ROLE_LABELS["director"])
    scope_director = SelectField(_l("Scope"), choices=[], validators=[Optional()])
    role_manager = BooleanField(ROLE_LABELS["manager"])
    scope_manager = SelectField(_l("Scope"), choices=[], validators=[Optional()])
    role_checker = BooleanField(ROLE_LABELS["checker"])
    scope_checker = SelectField(_l("Scope"), choices=[], validators=[Optional()])
    password = PasswordField(
        _l("Initial password (optional)"), validators=[Optional(), Length(min=8, max=200)]
    )

    def __init__(self, *args: Any, staff: Staff | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.staff = staff
        self.substitute: Staff | None = None
        branches = _branch_choices()
        self.branch_id.choices = [("", str(_("Choose…"))), *branches]
        self.status.choices = [(k, str(v)) for k, v in STATUS_LABELS.items()]
        for role in ROLE_LABELS:
            getattr(self, f"scope_{role}").choices = [("", str(_("Whole union")))] + branches

    def roles(self) -> list[tuple[str, int | None]]:
        out = []
        for role in ROLE_LABELS:
            if getattr(self, f"role_{role}").data:
                scope = getattr(self, f"scope_{role}").data
                out.append((role, int(scope) if scope else None))
        return out

    def validate_staff_no(self, field: Any) -> None:
        field.data = (field.data or "").strip()
        other = db.session.scalar(select(Staff).where(Staff.staff_no == field.data))
        if other is not None and other is not self.staff:
            raise ValidationError(_("Another staff member already has this number."))

    def validate_phone(self, field: Any) -> None:
        if field.data:
            errors = validate_mobile(field.data)
            if errors:
                raise ValidationError(errors[0])
            field.data = normalise_mobile(field.data)

    def validate_substitute_no(self, field: Any) -> None:
        number = (field.data or "").strip()
        if not number:
            return
        substitute = db.session.scalar(select(Staff).where(Staff.staff_no == number))
        if substitute is None:
            raise ValidationError(_("No staff member with this number."))
        if (
            self.staff is not None
            and substitute.id == self.staff.id
            or number == (self.staff_no.data or "").strip()
        ):
            raise ValidationError(_("A person cannot substitute for themselves."))
        if substitute.status != StaffStatus.active:
            raise ValidationError(_("The substitute must be active."))
        self.substitute = substitute

    def validate_status(self, field: Any) -> None:
        if (
            self.staff is not None
            and self.staff.id == current_staff_id()
            and field.data != StaffStatus.active
        ):
            raise ValidationError(_("You cannot make your own account inactive."))
        # not on away_until: Optional() there skips inline validators when it is empty
        if field.data == StaffStatus.on_leave and not self.away_until.data:
            raise ValidationError(_("On leave: give the date the person is back (away until)."))

    def validate_role_admin(self, field: Any) -> None:
        if not self.roles():
            raise ValidationError(_("Give at least one role."))
        if self.staff is not None and self.staff.id == current_staff_id() and not field.data:
            raise ValidationError(_("You cannot take away your own administrator role."))


def _scoped_staff() -> Any:
    scope = current_scope()
    return select(Staff).where(scope.branch_filter(Staff.branch_id, Role.admin, Role.director))


def _get_staff(staff_id: int) -> Staff:
    staff = db.session.scalar(_scoped_staff().where(Staff.id == staff_id))
    if staff is None:
        raise NotFound()
    return staff


def _can_edit(staff: Staff | None) -> bool:
    scope = current_scope()
    if staff is None:
        return scope.has(Role.admin)
    return scope.can_see_branch(staff.branch_id, Role.admin)


@bp.get("/")
@bp.get("/staff")
@roles_required("admin", "director")
def staff_list() -> Any:
    stmt = _scoped_staff()
    q = (request.args.get("q") or "").strip()
    status = request.args.get("status") or ""
    branch = request.args.get("branch") or ""
    if q:
        like = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        stmt = stmt.where(or_(Staff.staff_no.like(like, escape="\\"), Staff.name.like(like, escape="\\")))
    if status in STATUS_LABELS:
        stmt = stmt.where(Staff.status == status)
    if branch.isdigit():
        stmt = stmt.where(Staff.branch_id == int(branch))
    page = max(request.args.get("page", 1, type=int) or 1, 1)
    total = db.session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    staff = list(
        db.session.scalars(stmt.order_by(Staff.staff_no).limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE))
    )
    return render_template(
        "org/staff_list.html",
        staff=staff,
        total=total,
        page=page,
        pages=max((total + PAGE_SIZE - 1) // PAGE_SIZE, 1),
        q=q,
        status=status,
        branch=branch,
        branches=_branch_choices(),
        status_labels=STATUS_LABELS,
        role_labels=ROLE_LABELS,
        can_create=_can_edit(None),
    )


@bp.route("/staff/new", methods=["GET", "POST"])
@roles_required("admin")
def staff_new() -> Any:
    return _staff_edit(None)


@bp.route("/staff/<int:staff_id>", methods=["GET", "POST"])
@roles_required("admin", "director")
def staff_edit(staff_id: int) -> Any:
    return _staff_edit(_get_staff(staff_id))


def _staff_edit(staff: Staff | None) -> Any:
    editable = _can_edit(staff)
    if request.method == "POST" and not editable:
        abort(403)
    form = StaffForm(staff=staff)
    if request.method == "GET":
        if staff is not None:
            _fill(form, staff)
        else:
            form.role_manager.data = True
            form.status.data = StaffStatus.active
    if editable and form.validate_on_submit():
        branch_ids = {int(form.branch_id.data)} | {b for _, b in form.roles() if b is not None}
        if not all(current_scope().can_see_branch(b, Role.admin) for b in branch_ids):
            form.branch_id.errors = [*form.branch_id.errors, _("Outside your scope.")]
        else:
            created = staff is None
            staff = _save(form, staff)
            db.session.commit()
            flash(
                _("%(staff_no)s saved.", staff_no=staff.staff_no)
                if not created
                else _("%(staff_no)s created.", staff_no=staff.staff_no),
                "success",
            )
            return redirect(url_for(".staff_edit", staff_id=staff.id)), 303
    status = 422 if request.method == "POST" else 200
    return (
        render_template(
            "org/staff_form.html",
            form=form,
            staff=staff,
            editable=editable,
            password_form=PasswordResetForm() if staff is not None and editable else None,
            role_labels=ROLE_LABELS,
            status_labels=STATUS_LABELS,
            substitute=db.session.get(Staff, staff.substitute_id)
            if staff is not None and staff.substitute_id
            else None,
        ),
        status,
    )


def _fill(form: StaffForm, staff: Staff) -> None:
    for name in (
        "staff_no",
        "name",
        "email",
        "phone",
        "hired_on",
        "status",
        "senior",
        "capacity",
        "away_until",
    ):
        getattr(form, name).data = getattr(staff, name)
    form.branch_id.data = str(staff.branch_id)
    substitute = db.session.get(Staff, staff.substitute_id) if staff.substitute_id else None
    form.substitute_no.data = substitute.staff_no if substitute else ""
    for role in staff.roles:
        getattr(form, f"role_{role.role}").data = True
        getattr(form, f"scope_{role.role}").data = str(role.branch_id or "")


def _save(form: StaffForm, staff: Staff | None) -> Staff:
    created = staff is None
    if staff is None:
        staff = Staff(
            staff_no=form.staff_no.data, name=form.name.data.strip(), branch_id=int(form.branch_id.data)
        )
        db.session.add(staff)
    before = {name: getattr(staff, name) for name in _AUDITED}
    roles_before = sorted((r.role, r.branch_id or 0) for r in staff.roles)
    staff.staff_no = form.staff_no.data
    staff.name = form.name.data.strip()
    staff.branch_id = int(form.branch_id.data)
    staff.email = form.email.data or None
    staff.phone = form.phone.data or None
    staff.hired_on = form.hired_on.data
    staff.status = form.status.data
    staff.senior = bool(form.senior.data)
    staff.capacity = int(form.capacity.data)
    staff.substitute_id = form.substitute.id if form.substitute else None
    staff.away_until = form.away_until.data
    if form.password.data:
        staff.password_hash = hash_password(form.password.data)
    wanted = dict(form.roles())
    for existing in list(staff.roles):
        if existing.role not in wanted:
            staff.roles.remove(existing)
        else:
            existing.branch_id = wanted.pop(existing.role)
    for role, branch_id in wanted.items():
        staff.roles.append(StaffRole(role=role, branch_id=branch_id))
    db.session.flush()
    changed = [name for name in _AUDITED if getattr(staff, name) != before[name]]
    roles_after = sorted((r.role, r.branch_id or 0) for r in staff.roles)
    if roles_after != roles_before:
        changed.append("roles")
    audit(
        db.session,
        current_staff_id(),
        "staff_create" if created else "staff_update",
        "staff",
        staff.staff_no,
        fields=changed,
        detail={"roles": [f"{r}@{b or 'union'}" for r, b in roles_after], "status": staff.status},
    )
    return staff


_AUDITED = (
    "staff_no",
    "name",
    "branch_id",
    "email",
    "phone",
    "hired_on",
    "status",
    "senior",
    "capacity",
    "substitute_id",
    "away_until",
)


class PasswordResetForm(FlaskForm):
    new_password = PasswordField(
        _l("New password"),
        validators=[
            DataRequired(_l("Enter a new password.")),
            Length(min=8, max=200, message=_l("At least 8 characters.")),
        ],
    )
    confirm = PasswordField(
        _l("Repeat the new password"),
        validators=[
            DataRequired(_l("Repeat the password.")),
            EqualTo("new_password", _l("The passwords differ.")),
        ],
    )


@bp.post("/staff/<int:staff_id>/password")
@roles_required("admin")
def staff_password(staff_id: int) -> Any:
    """Set a new password; the person's sessions end and a lock from failed logins is lifted."""
    staff = _get_staff(staff_id)
    if not _can_edit(staff):
        abort(403)
    form = PasswordResetForm()
    if not form.validate_on_submit():
        _flash_errors(form)
        return redirect(url_for(".staff_edit", staff_id=staff.id)), 303
    staff.password_hash = hash_password(form.new_password.data)
    staff.failed_logins = 0
    staff.locked_until = None
    staff.session_epoch += 1
    audit(db.session, current_staff_id(), "password_reset", "staff", staff.staff_no)
    db.session.commit()
    flash(_("New password set for %(staff_no)s.", staff_no=staff.staff_no), "success")
    return redirect(url_for(".staff_edit", staff_id=staff.id)), 303


# ---------------------------------------------------------------------------------------------
# Imports


class ImportForm(FlaskForm):
    kind = SelectField(_l("What the file holds"), choices=[], validators=[DataRequired()])
    file = FileField(_l("File (.csv or .xlsx)"), validators=[FileRequired(_l("Choose a file."))])
    strict = BooleanField(_l("Strict: apply nothing if any row is bad"))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.kind.choices = [(k, str(KIND_LABELS[k])) for k in KINDS]

    def validate_file(self, field: Any) -> None:
        name = (field.data.filename or "") if field.data else ""
        suffix = Path(name).suffix.lower()
        if suffix not in (".csv", ".xlsx"):
            raise ValidationError(_("Upload a .csv or .xlsx file."))


def upload_dir() -> Path:
    path = Path(current_app.instance_path) / "uploads"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _import_jobs() -> Any:
    return select(JobProgress).where(JobProgress.kind == "import")


@bp.route("/imports", methods=["GET", "POST"])
@roles_required("admin")
def imports() -> Any:
    _union_admin()
    form = ImportForm()
    if form.validate_on_submit():
        upload = form.file.data
        suffix = Path(upload.filename or "").suffix.lower()
        stored = upload_dir() / f"{uuid.uuid4().hex}{suffix}"
        upload.save(stored)
        if stored.stat().st_size == 0:
            stored.unlink()
            form.file.errors = [*form.file.errors, _("The file is empty (0 bytes).")]
        else:
            kind = form.kind.data
            progress = JobProgress(
                kind="import",
                subject=f"import:{kind}:{(upload.filename or '')[:80]}",
                owner_id=current_staff_id(),
                message=_("Waiting for a worker…"),
            )
            db.session.add(progress)
            db.session.flush()
            audit(
                db.session,
                current_staff_id(),
                "import",
                "import",
                progress.id,
                detail={
                    "kind": kind,
                    "file": (upload.filename or "")[:200],
                    "strict": bool(form.strict.data),
                },
            )
            args = (progress.id, kind, str(stored), bool(form.strict.data))
            send_after_commit(db.session, import_jobs.import_uploaded_file, *args)
            db.session.commit()
            return redirect(url_for(".import_detail", progress_id=progress.id)), 303
    recent = list(db.session.scalars(_import_jobs().order_by(JobProgress.id.desc()).limit(20)))
    status = 422 if request.method == "POST" else 200
    columns = {kind: [(en, zh, en in REQUIRED_COLUMNS[kind]) for en, zh in HEADERS[kind]] for kind in KINDS}
    return (
        render_template(
            "org/imports.html", form=form, recent=recent, kind_labels=KIND_LABELS, columns=columns
        ),
        status,
    )


@bp.get("/imports/template/<kind>.csv")
@roles_required("admin")
def import_template(kind: str) -> Any:
    """An empty file of ``kind`` with its header row, English (default) or Chinese (``?headers=zh``)."""
    _union_admin()
    if kind not in KINDS:
        raise NotFound()
    chinese = request.args.get("headers") == "zh"
    header = ",".join(zh if chinese else en for en, zh in HEADERS[kind])
    body = ("\ufeff" + header + "\r\n").encode("utf-8")
    return Response(
        body,
        mimetype="text/csv",
        headers={"Content-Disposition": f"attachment; filename={kind}{'-zh' if chinese else ''}.csv"},
    )


def _get_import(progress_id: int) -> JobProgress:
    _union_admin()
    progress = db.session.scalar(_import_jobs().where(JobProgress.id == progress_id))
    if progress is None:
        raise NotFound()
    return progress


@bp.get("/imports/<int:progress_id>")
@roles_required("admin")
def import_detail(progress_id: int) -> Any:
    progress = _get_import(progress_id)
    return render_template("org/import_detail.html", progress=progress, kind_labels=KIND_LABELS)


@bp.get("/imports/<int:progress_id>/status")
@roles_required("admin")
def import_status(progress_id: int) -> Any:
    """The progress and, once done, the report: an htmx fragment polled while the job runs."""
    progress = _get_import(progress_id)
    return render_template("org/_import_status.html", progress=progress, kind_labels=KIND_LABELS)


@bp.get("/imports/<int:progress_id>/report.csv")
@roles_required("admin")
def import_report(progress_id: int) -> Any:
    progress = _get_import(progress_id)
    name = (progress.result or {}).get("report")
    if not name or Path(name).name != name:
        raise NotFound()
    path = upload_dir() / name
    if not path.is_file():
        raise NotFound()
    return send_file(
        path, mimetype="text/csv", as_attachment=True, download_name=f"import-{progress.id}-report.csv"
    )


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
