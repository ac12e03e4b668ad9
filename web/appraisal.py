"""Appraisal pages: incentive runs, my statement (with what-if and disputes), the disputes queue,
scorecards, training sessions with attendance, complaints."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal, InvalidOperation
from typing import Any

from flask import Blueprint, Flask, Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from sqlalchemy import func, or_, select
from wtforms import (
    BooleanField,
    DateField,
    HiddenField,
    IntegerField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, NumberRange, Optional, Regexp

from appraisal import ledger, runs
from appraisal.exports import export_run
from appraisal.jobs import start_run
from appraisal.measures import gather
from appraisal.models import (
    DISPUTE_CATEGORIES,
    Attendance,
    Complaint,
    ComplaintState,
    Dispute,
    IncentiveRun,
    RunState,
    ScorecardWeights,
    StatementLine,
    TrainingSession,
)
from appraisal.scorecard import PARTS, current_weights, score_month, validate_weights
from campaigns.models import Campaign
from config import clock
from config.database import db
from org.models import Branch, Staff
from org.services import audit
from web import nav
from web.auth import current_scope, current_staff_id, roles_required
from workflow.engine import history
from workflow.errors import GuardRefused
from workflow.models import JobProgress

bp = Blueprint("appraisal", __name__, url_prefix="/appraisal")
RUN_ROLES = ("checker", "director", "admin")
MONTH_RE = r"^\d{4}-(0[1-9]|1[0-2])$"


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    nav.register("appraisal.my_statement", _l("My statement (绩效明细)"), ("manager",), order=60)
    nav.register("appraisal.run_list", _l("Incentive runs (绩效核算)"), RUN_ROLES, order=61)
    nav.register("appraisal.dispute_queue", _l("Disputes (申诉)"), ("checker", "admin"), order=62)
    nav.register(
        "appraisal.scorecards",
        _l("Scorecards (综合考核)"),
        ("director", "checker", "admin", "manager"),
        order=63,
    )
    nav.register("appraisal.training", _l("Training (培训)"), ("director", "checker", "admin"), order=64)
    nav.register("appraisal.complaints", _l("Complaints (投诉)"), ("director", "checker", "admin"), order=65)


def ch(pairs: Any) -> list[SelectChoice]:
    """SelectChoice options from (value, label) pairs."""
    return [SelectChoice(value, label) for value, label in pairs]


def _errors(exc: Exception) -> Any:
    flash(str(exc), "danger")


def _form_errors(form: FlaskForm) -> None:
    for field, errors in form.errors.items():
        for e in errors:
            flash(f"{getattr(form, field).label.text}: {e}", "danger")


# ---------------------------------------------------------------------------------------------
# Runs


class RunForm(FlaskForm):
    month = StringField(
        _l("Month (YYYY-MM)"),
        validators=[DataRequired(), Regexp(MONTH_RE, message=_l("Write the month as YYYY-MM."))],
    )
    scope = SelectField(_l("Scope"), validators=[Optional()], choices=[])


class LockForm(FlaskForm):
    imports_done = BooleanField(_l("The month's core-banking imports are done"))


class EmptyForm(FlaskForm):
    pass


def _branch_choices() -> list[SelectChoice]:
    scope = current_scope()
    branches = scope.branches_for(*RUN_ROLES)
    choices = [("", _("Whole union"))] if branches is None else []
    stmt = select(Branch.code, Branch.name).where(Branch.parent_id.is_not(None)).order_by(Branch.code)
    if branches is not None:
        stmt = stmt.where(Branch.id.in_(branches))
    return ch(choices + [(code, f"{code} {name}") for code, name in db.session.execute(stmt)])


def _visible_runs() -> Any:
    branches = current_scope().branches_for(*RUN_ROLES)
    stmt = select(IncentiveRun)
    if branches is not None:
        stmt = stmt.where(IncentiveRun.scope_branch_id.in_(branches))
    return stmt


def _get_run(run_id: int) -> IncentiveRun:
    run = db.session.scalar(_visible_runs().where(IncentiveRun.id == run_id))
    if run is None:
        abort(404)
    return run


@bp.route("/runs", methods=["GET", "POST"])
@roles_required(*RUN_ROLES)
def run_list() -> Any:
    form = RunForm()
    form.scope.choices = _branch_choices()
    if request.method == "POST":
        if not current_scope().has("checker", "admin"):
            abort(403)
        if form.validate_on_submit():
            scope = form.scope.data or None
            if scope is None and current_scope().branches_for(*RUN_ROLES) is not None:
                abort(403)
            try:
                run, progress = start_run(db.session, form.month.data.strip(), scope, current_staff_id())
                db.session.commit()
            except (ledger.MonthError, runs.RunError) as exc:
                db.session.rollback()
                _errors(exc)
            else:
                return redirect(url_for(".run_detail", run_id=run.id, progress=progress.id)), 303
        else:
            _form_errors(form)
    if not form.month.data:
        form.month.data = ledger.previous_month(ledger.month_of(clock.today()))
    items = list(
        db.session.scalars(
            _visible_runs().order_by(IncentiveRun.month.desc(), IncentiveRun.scope_key).limit(60)
        )
    )
    return render_template("appraisal/runs.html", form=form, runs=items)


@bp.get("/runs/<int:run_id>")
@roles_required(*RUN_ROLES)
def run_detail(run_id: int) -> Any:
    from appraisal.exports import payroll_rows

    run = _get_run(run_id)
    progress = None
    if request.args.get("progress", type=int):
        progress = db.session.get(JobProgress, request.args.get("progress", type=int))
    if progress is None and run.state == RunState.computing:
        progress = db.session.scalars(
            select(JobProgress)
            .where(JobProgress.subject == f"run:{run.month}:{run.scope_key}")
            .order_by(JobProgress.id.desc())
            .limit(1)
        ).first()
    totals = (run.totals or {}).get("branches", {}) if run.state != RunState.computing else {}
    chart = {
        "type": "bar",
        "data": {
            "labels": list(totals),
            "datasets": [{"label": _("Total per branch"), "data": [float(v) for v in totals.values()]}],
        },
        "options": {"plugins": {"legend": {"display": False}}},
    }
    payroll = payroll_rows(db.session, run) if run.state != RunState.computing else []
    ids = {
        no: sid
        for sid, no in db.session.execute(
            select(Staff.id, Staff.staff_no).where(Staff.staff_no.in_([r[1] for r in payroll] or [""]))
        )
    }
    return render_template(
        "appraisal/run.html",
        run=run,
        progress=progress,
        chart=chart if totals else None,
        campaigns=(run.totals or {}).get("campaigns", {}) if run.state != RunState.computing else {},
        payroll=payroll,
        staff_ids=ids,
        checklist=runs.close_checklist(db.session, run) if run.state == RunState.approved else [],
        lock_form=LockForm(),
        form=EmptyForm(),
        trail=history(db.session, "incentive_run", run.id),
    )


@bp.post("/runs/<int:run_id>/recompute")
@roles_required("checker", "admin")
def run_recompute(run_id: int) -> Any:
    run = _get_run(run_id)
    if not EmptyForm().validate_on_submit():
        abort(400)
    try:
        run, progress = start_run(
            db.session, run.month, run.scope_key if run.scope_branch_id else None, current_staff_id()
        )
        db.session.commit()
    except (ledger.MonthError, runs.RunError) as exc:
        db.session.rollback()
        _errors(exc)
        return redirect(url_for(".run_detail", run_id=run_id)), 303
    return redirect(url_for(".run_detail", run_id=run.id, progress=progress.id)), 303


def _step_up_refused() -> bool:
    """Step-up before money is released (RELIABILITY AUTH-05, LED-09): whoever has two-step sign-in
    confirms an approval or a lock with a fresh code. Flashes and returns True when refused."""
    from org import mfa

    staff = db.session.get(Staff, current_staff_id())
    if staff is None or not staff.totp_secret:
        return False
    if mfa.verify(db.session, staff, request.form.get("code", "")):
        return False
    db.session.rollback()
    flash(_("Confirm with a current code from your authenticator app (it was missing, wrong or already used)."), "danger")
    return True


@bp.post("/runs/<int:run_id>/approve")
@roles_required("director")
def run_approve(run_id: int) -> Any:
    run = _get_run(run_id)
    if not EmptyForm().validate_on_submit():
        abort(400)
    if _step_up_refused():
        return redirect(url_for(".run_detail", run_id=run.id)), 303
    staff = db.session.get(Staff, current_staff_id())
    try:
        runs.approve_run(db.session, run, staff)  # guard refusals (four eyes) → 409 page with the reason
    except runs.RunError as exc:
        db.session.rollback()
        _errors(exc)
        return redirect(url_for(".run_detail", run_id=run.id)), 303
    db.session.commit()
    flash(_("Run approved."), "success")
    return redirect(url_for(".run_detail", run_id=run.id)), 303


@bp.post("/runs/<int:run_id>/lock")
@roles_required("checker", "admin")
def run_lock(run_id: int) -> Any:
    run = _get_run(run_id)
    form = LockForm()
    if not form.validate_on_submit():
        abort(400)
    if _step_up_refused():
        return redirect(url_for(".run_detail", run_id=run.id)), 303
    try:
        runs.lock_run(db.session, run, current_staff_id(), bool(form.imports_done.data))
    except (runs.RunError, GuardRefused) as exc:
        db.session.rollback()
        _errors(exc)
        return redirect(url_for(".run_detail", run_id=run.id)), 303
    db.session.commit()
    flash(_("Month locked: nothing of it changes any more."), "success")
    return redirect(url_for(".run_detail", run_id=run.id)), 303


@bp.get("/runs/<int:run_id>/export")
@roles_required(*RUN_ROLES)
def run_export(run_id: int) -> Any:
    run = _get_run(run_id)
    fmt = request.args.get("fmt", "xlsx")
    lines = request.args.get("lines") == "1"
    if fmt not in ("csv", "xlsx"):
        abort(400)
    if run.state == RunState.computing or (
        not lines and run.state not in (RunState.approved, RunState.locked)
    ):
        flash(_("The payroll sheet needs an approved run; export the lines to check it."), "warning")
        return redirect(url_for(".run_detail", run_id=run.id)), 303
    data = export_run(db.session, run, fmt, lines)
    audit(
        db.session,
        current_staff_id(),
        "export",
        "incentive_run",
        run.id,
        detail={"month": run.month, "scope": run.scope_key, "lines": lines, "format": fmt, "via": "web"},
    )
    db.session.commit()
    name = f"{'lines' if lines else 'payroll'}-{run.month}-{run.scope_key}.{fmt}"
    mime = (
        "text/csv; charset=utf-8"
        if fmt == "csv"
        else "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    return Response(data, mimetype=mime, headers={"Content-Disposition": f"attachment; filename={name}"})


# ---------------------------------------------------------------------------------------------
# Statements


class DisputeForm(FlaskForm):
    category = SelectField(_l("Category"), choices=ch((c, c.replace("_", " ")) for c in DISPUTE_CATEGORIES))
    text = TextAreaField(_l("What is wrong"), validators=[DataRequired(), Length(max=2000)])
    attachment = FileField(_l("Attachment (optional)"))


def _statement_page(staff: Staff, run: IncentiveRun | None, own: bool) -> Any:
    months = [
        r.month
        for r in db.session.scalars(
            select(IncentiveRun)
            .where(
                IncentiveRun.state != RunState.computing,
                or_(IncentiveRun.scope_branch_id.is_(None), IncentiveRun.scope_branch_id == staff.branch_id),
            )
            .order_by(IncentiveRun.month.desc())
            .limit(24)
        )
    ]
    lines = runs.statement(db.session, run, staff.id) if run is not None else []
    codes = dict(
        db.session.execute(
            select(Campaign.id, Campaign.code).where(Campaign.id.in_({ln.campaign_id for ln in lines} or {0}))
        ).all()
    )
    disputes = list(
        db.session.scalars(
            select(Dispute).where(Dispute.staff_id == staff.id).order_by(Dispute.id.desc()).limit(50)
        )
    )
    total = sum((ln.amount for ln in lines), Decimal("0.00"))
    return render_template(
        "appraisal/statement.html",
        staff=staff,
        run=run,
        lines=lines,
        codes=codes,
        total=total,
        months=sorted(set(months), reverse=True),
        disputes=disputes,
        own=own,
        form=DisputeForm(),
        whatifs=runs.what_if(db.session, lines),
        trails={d.id: history(db.session, "dispute", d.id) for d in disputes},
    )


def _run_for(staff: Staff, month: str | None) -> IncentiveRun | None:
    stmt = select(IncentiveRun).where(
        IncentiveRun.state != RunState.computing,
        or_(IncentiveRun.scope_branch_id.is_(None), IncentiveRun.scope_branch_id == staff.branch_id),
    )
    if month:
        stmt = stmt.where(IncentiveRun.month == month)
    # a branch run is more specific than the union run of the same month
    return db.session.scalars(
        stmt.order_by(IncentiveRun.month.desc(), IncentiveRun.scope_branch_id.desc().nulls_last())
    ).first()


@bp.get("/statement")
@roles_required("manager", "director", "checker", "admin")
def my_statement() -> Any:
    staff = db.session.get(Staff, current_staff_id())
    return _statement_page(staff, _run_for(staff, request.args.get("month")), own=True)


@bp.get("/runs/<int:run_id>/staff/<int:staff_id>")
@roles_required(*RUN_ROLES)
def staff_statement(run_id: int, staff_id: int) -> Any:
    run = _get_run(run_id)
    staff = db.session.scalar(
        select(Staff).where(Staff.id == staff_id, current_scope().branch_filter(Staff.branch_id, *RUN_ROLES))
    )
    if staff is None:
        abort(404)
    return _statement_page(staff, run, own=staff.id == current_staff_id())


def _own_line(line_id: int) -> StatementLine:
    line = db.session.get(StatementLine, line_id)
    scope = current_scope()
    if line is None:
        abort(404)
    if line.staff_id != current_staff_id():
        branches = scope.branches_for(*RUN_ROLES)
        if not scope.has(*RUN_ROLES) or (branches is not None and line.branch_id not in branches):
            abort(404)
    return line


@bp.get("/lines/<int:line_id>/events")
@roles_required("manager", "director", "checker", "admin")
def line_events(line_id: int) -> Any:
    line = _own_line(line_id)
    run = db.session.get(IncentiveRun, line.run_id)
    events = ledger.events_of(db.session, line.staff_id, run.month, line.campaign_id)
    if line.measure:
        events = [e for e in events if e.measure == line.measure]
    return render_template("appraisal/events.html", line=line, run=run, events=events)


@bp.post("/lines/<int:line_id>/dispute")
@roles_required("manager", "director", "checker", "admin")
def raise_dispute(line_id: int) -> Any:
    line = _own_line(line_id)
    form = DisputeForm()
    if not form.validate_on_submit():
        _form_errors(form)
        return redirect(url_for(".my_statement")), 303
    attachment = None
    upload = form.attachment.data
    if upload and getattr(upload, "filename", ""):
        data = upload.read(2 * 1024 * 1024 + 1)
        if len(data) > 2 * 1024 * 1024:
            flash(_("Attachment: at most 2 MB."), "danger")
            return redirect(url_for(".my_statement")), 303
        attachment = (upload.filename[:200], data)
    staff = db.session.get(Staff, current_staff_id())
    try:
        runs.raise_dispute(db.session, line, staff, form.text.data, form.category.data, attachment)
    except runs.RunError as exc:
        db.session.rollback()
        _errors(exc)
        return redirect(url_for(".my_statement")), 303
    db.session.commit()
    flash(_("Dispute sent; a checker answers it before the deadline."), "success")
    run = db.session.get(IncentiveRun, line.run_id)
    return redirect(url_for(".my_statement", month=run.month)), 303


# ---------------------------------------------------------------------------------------------
# Disputes queue


class AnswerForm(FlaskForm):
    decision = SelectField(
        _l("Decision"),
        choices=ch([("accept", _l("Accept: adjust in the next run")), ("reject", _l("Reject"))]),
    )
    adjustment = StringField(
        _l("Adjustment (yuan; negative deducts)"), validators=[Optional(), Length(max=20)]
    )
    answer = TextAreaField(_l("Answer / reason"), validators=[Length(max=2000)])


def _disputes() -> Any:
    return select(Dispute).where(current_scope().branch_filter(Dispute.branch_id, "checker", "admin"))


@bp.get("/disputes")
@roles_required("checker", "admin")
def dispute_queue() -> Any:
    state = request.args.get("state", "open")
    items = list(
        db.session.scalars(
            _disputes().where(Dispute.state == state).order_by(Dispute.deadline, Dispute.id).limit(200)
        )
    )
    lines = {
        ln.id: ln
        for ln in db.session.scalars(
            select(StatementLine).where(StatementLine.id.in_([d.line_id for d in items] or [0]))
        )
    }
    return render_template(
        "appraisal/disputes.html",
        disputes=items,
        lines=lines,
        state=state,
        form=AnswerForm(),
        today=clock.today(),
        trails={d.id: history(db.session, "dispute", d.id) for d in items},
    )


@bp.post("/disputes/<int:dispute_id>/answer")
@roles_required("checker", "admin")
def dispute_answer(dispute_id: int) -> Any:
    dispute = db.session.scalar(_disputes().where(Dispute.id == dispute_id))
    if dispute is None:
        abort(404)
    form = AnswerForm()
    if not form.validate_on_submit():
        _form_errors(form)
        return redirect(url_for(".dispute_queue")), 303
    accept = form.decision.data == "accept"
    adjustment = None
    if accept:
        try:
            adjustment = Decimal(form.adjustment.data.strip()) if form.adjustment.data else None
        except InvalidOperation:
            flash(_("Adjustment: a number in yuan, e.g. 120.50."), "danger")
            return redirect(url_for(".dispute_queue")), 303
    try:
        runs.answer_dispute(
            db.session, dispute, current_staff_id(), accept, form.answer.data or "", adjustment
        )
    except runs.RunError as exc:
        db.session.rollback()
        _errors(exc)
        return redirect(url_for(".dispute_queue")), 303
    db.session.commit()
    flash(_("Dispute answered."), "success")
    return redirect(url_for(".dispute_queue")), 303


@bp.get("/disputes/<int:dispute_id>/attachment")
@roles_required("manager", "checker", "admin")
def dispute_attachment(dispute_id: int) -> Any:
    dispute = db.session.get(Dispute, dispute_id)
    if dispute is None or dispute.attachment is None:
        abort(404)
    if (
        dispute.staff_id != current_staff_id()
        and db.session.scalar(_disputes().where(Dispute.id == dispute_id)) is None
    ):
        abort(404)
    return Response(
        dispute.attachment,
        mimetype="application/octet-stream",
        headers={"Content-Disposition": "attachment; filename=evidence", "X-Content-Type-Options": "nosniff"},
    )


# ---------------------------------------------------------------------------------------------
# Scorecards


class WeightsForm(FlaskForm):
    w_results = IntegerField(_l("Results (attainment)"), validators=[NumberRange(0, 100)])
    w_process = IntegerField(_l("Process (follow-ups, tasks on time)"), validators=[NumberRange(0, 100)])
    w_service = IntegerField(
        _l("Service quality (complaints, satisfaction)"), validators=[NumberRange(0, 100)]
    )
    w_training = IntegerField(_l("Training attendance"), validators=[NumberRange(0, 100)])
    follow_up_norm = IntegerField(_l("Follow-ups expected per month"), validators=[NumberRange(1, 10000)])
    complaint_penalty = IntegerField(
        _l("Points off per verified complaint"), validators=[NumberRange(0, 100)]
    )


@bp.route("/scorecards", methods=["GET", "POST"])
@roles_required("director", "checker", "admin", "manager")
def scorecards() -> Any:
    scope = current_scope()
    weights = current_weights(db.session)
    form = WeightsForm(data={("w_" + k if k in PARTS else k): v for k, v in weights.items()})
    if request.method == "POST":
        if not scope.has("director", "admin") or not scope.is_union_wide:
            abort(403)
        if form.validate_on_submit():
            try:
                clean = validate_weights(
                    {k: getattr(form, "w_" + k if k in PARTS else k).data for k in weights}
                )
            except ValueError as exc:
                _errors(exc)
            else:
                db.session.add(ScorecardWeights(weights=clean, created_by=current_staff_id()))
                db.session.commit()
                flash(_("Weights saved."), "success")
                return redirect(url_for(".scorecards")), 303
        else:
            _form_errors(form)
    month = request.args.get("month") or ledger.month_of(clock.today())
    try:
        month = ledger.parse_month(month)
    except ledger.MonthError as exc:
        _errors(exc)
        month = ledger.month_of(clock.today())
    scores = list(score_month(gather(db.session, month, None), weights).values())
    branches = scope.branches_for("director", "checker", "admin")
    if not scope.has("director", "checker", "admin"):
        me = db.session.get(Staff, current_staff_id())
        scores = [s for s in scores if s.branch_code == me.branch.code]
    elif branches is not None:
        codes = set(db.session.scalars(select(Branch.code).where(Branch.id.in_(branches))))
        scores = [s for s in scores if s.branch_code in codes]
    top = scores[:20]
    chart = {
        "type": "bar",
        "data": {
            "labels": [f"{s.name}" for s in top],
            "datasets": [
                {
                    "label": str(_l(p.capitalize())),
                    "data": [float(getattr(s, p)) * int(weights[p]) / 100 for s in top],
                }
                for p in PARTS
            ],
        },
        "options": {"indexAxis": "y", "scales": {"x": {"stacked": True}, "y": {"stacked": True}}},
    }
    return render_template(
        "appraisal/scorecards.html",
        scores=scores,
        weights=weights,
        form=form,
        month=month,
        chart=chart,
        can_edit=scope.has("director", "admin") and scope.is_union_wide,
    )


# ---------------------------------------------------------------------------------------------
# Training sessions and attendance


class SessionForm(FlaskForm):
    title = StringField(_l("Title"), validators=[DataRequired(), Length(max=200)], default="员工夜校")
    kind = SelectField(
        _l("Kind"),
        choices=ch(
            [
                ("staff_school", _l("Staff school (员工夜校)")),
                ("external", _l("External course")),
                ("other", _l("Other")),
            ]
        ),
    )
    held_on = DateField(_l("Held on"), validators=[DataRequired()])
    branch = SelectField(_l("Branch"), choices=[], validators=[Optional()])
    mandatory = BooleanField(_l("Mandatory (absence counts)"), default=True)


class AttendanceForm(FlaskForm):
    present_ids = HiddenField()
    upload = FileField(_l("Or import a file (staff_no, present)"))


def _training_sessions() -> Any:
    scope = current_scope()
    branches = scope.branches_for("director", "checker", "admin")
    stmt = select(TrainingSession)
    if branches is not None:
        stmt = stmt.where(or_(TrainingSession.branch_id.in_(branches), TrainingSession.branch_id.is_(None)))
    return stmt


@bp.route("/training", methods=["GET", "POST"])
@roles_required("director", "checker", "admin")
def training() -> Any:
    form = SessionForm()
    form.branch.choices = _branch_choices()
    if request.method == "POST":
        if form.validate_on_submit():
            branch_id = None
            if form.branch.data:
                branch_id = db.session.scalar(select(Branch.id).where(Branch.code == form.branch.data))
            elif current_scope().branches_for("director", "checker", "admin") is not None:
                abort(403)
            if form.held_on.data > clock.today():
                flash(_("Held on: a session is recorded once held (not in the future)."), "danger")
            else:
                s = TrainingSession(
                    title=form.title.data,
                    kind=form.kind.data,
                    held_on=form.held_on.data,
                    branch_id=branch_id,
                    mandatory=bool(form.mandatory.data),
                    created_by=current_staff_id(),
                )
                db.session.add(s)
                db.session.commit()
                return redirect(url_for(".training_session", session_id=s.id)), 303
        else:
            _form_errors(form)
    if not form.held_on.data:
        form.held_on.data = clock.today()
    sessions = list(
        db.session.scalars(_training_sessions().order_by(TrainingSession.held_on.desc()).limit(100))
    )
    counts = dict(
        db.session.execute(
            select(Attendance.session_id, func.count())
            .where(Attendance.session_id.in_([s.id for s in sessions] or [0]), Attendance.present.is_(True))
            .group_by(Attendance.session_id)
        ).all()
    )
    return render_template("appraisal/training.html", form=form, sessions=sessions, counts=counts)


def _month_open(day: dt.date, branch_id: int | None) -> bool:
    month = ledger.month_of(day)
    return not ledger.is_closed(ledger.locked_scopes(db.session, [month]), month, branch_id)


@bp.route("/training/<int:session_id>", methods=["GET", "POST"])
@roles_required("director", "checker", "admin")
def training_session(session_id: int) -> Any:
    ts = db.session.scalar(_training_sessions().where(TrainingSession.id == session_id))
    if ts is None:
        abort(404)
    staff_stmt = select(Staff).where(Staff.status != "departed").order_by(Staff.staff_no)
    if ts.branch_id is not None:
        staff_stmt = staff_stmt.where(Staff.branch_id == ts.branch_id)
    else:
        staff_stmt = staff_stmt.where(
            current_scope().branch_filter(Staff.branch_id, "director", "checker", "admin")
        )
    staff = list(db.session.scalars(staff_stmt))
    form = AttendanceForm()
    if request.method == "POST":
        if not form.validate_on_submit():
            abort(400)
        if not _month_open(ts.held_on, ts.branch_id):
            flash(_("The month of this session is approved or locked: attendance cannot change."), "danger")
            return redirect(url_for(".training_session", session_id=ts.id)), 303
        by_no = {s.staff_no: s for s in staff}
        present: dict[int, bool] = {}
        upload = form.upload.data
        if upload and getattr(upload, "filename", ""):
            problems: list[str] = []
            text = upload.read().decode("utf-8-sig", errors="replace")
            for n, row in enumerate(csv.reader(io.StringIO(text)), start=1):
                if n == 1 and row and row[0].strip().lower() in ("staff_no", "员工编号"):
                    continue
                if not row or not row[0].strip():
                    continue
                no = row[0].strip()
                flag = (row[1].strip().lower() if len(row) > 1 else "1") in (
                    "1",
                    "true",
                    "yes",
                    "是",
                    "y",
                    "present",
                    "出席",
                )
                if no not in by_no:
                    problems.append(_("row %(n)s: no staff member %(no)s here", n=n, no=no))
                else:
                    present[by_no[no].id] = flag
            if problems:
                for p in problems[:20]:
                    flash(p, "danger")
                return redirect(url_for(".training_session", session_id=ts.id)), 303
        else:
            chosen = set(request.form.getlist("present"))
            present = {s.id: str(s.id) in chosen for s in staff}
        existing = {
            a.staff_id: a
            for a in db.session.scalars(select(Attendance).where(Attendance.session_id == ts.id))
        }
        for sid, flag in present.items():
            if sid in existing:
                existing[sid].present = flag
            else:
                db.session.add(Attendance(session_id=ts.id, staff_id=sid, present=flag))
        db.session.commit()
        flash(_("Attendance saved."), "success")
        return redirect(url_for(".training_session", session_id=ts.id)), 303
    marks = {
        a.staff_id: a.present
        for a in db.session.scalars(select(Attendance).where(Attendance.session_id == ts.id))
    }
    return render_template("appraisal/training_session.html", ts=ts, staff=staff, marks=marks, form=form)


# ---------------------------------------------------------------------------------------------
# Complaints


class ComplaintForm(FlaskForm):
    staff_no = StringField(_l("Staff number"), validators=[DataRequired(), Length(max=20)])
    received_on = DateField(_l("Received on"), validators=[DataRequired()])
    text = TextAreaField(_l("Complaint"), validators=[DataRequired(), Length(max=2000)])


class VerifyForm(FlaskForm):
    decision = HiddenField(validators=[DataRequired()])
    satisfaction = IntegerField(
        _l("Customer satisfaction after handling (1–5)"), validators=[Optional(), NumberRange(1, 5)]
    )


def _complaints() -> Any:
    return (
        select(Complaint)
        .join(Staff, Staff.id == Complaint.staff_id)
        .where(current_scope().branch_filter(Staff.branch_id, "director", "checker", "admin"))
    )


@bp.route("/complaints", methods=["GET", "POST"])
@roles_required("director", "checker", "admin")
def complaints() -> Any:
    form = ComplaintForm()
    if request.method == "POST":
        if form.validate_on_submit():
            staff = db.session.scalar(
                select(Staff).where(
                    Staff.staff_no == form.staff_no.data.strip(),
                    current_scope().branch_filter(Staff.branch_id, "director", "checker", "admin"),
                )
            )
            if staff is None:
                flash(
                    _("Staff number: no staff member %(no)s in your scope.", no=form.staff_no.data), "danger"
                )
            elif form.received_on.data > clock.today():
                flash(_("Received on: the date is in the future."), "danger")
            elif not _month_open(form.received_on.data, staff.branch_id):
                flash(_("Received on: that month is approved or locked."), "danger")
            else:
                db.session.add(
                    Complaint(
                        staff_id=staff.id,
                        received_on=form.received_on.data,
                        text=form.text.data,
                        created_by=current_staff_id(),
                    )
                )
                db.session.commit()
                flash(_("Complaint recorded; verify it to count it."), "success")
                return redirect(url_for(".complaints")), 303
        else:
            _form_errors(form)
    if not form.received_on.data:
        form.received_on.data = clock.today()
    items = list(
        db.session.scalars(
            _complaints().order_by(Complaint.received_on.desc(), Complaint.id.desc()).limit(200)
        )
    )
    return render_template("appraisal/complaints.html", form=form, complaints=items, verify_form=VerifyForm())


@bp.post("/complaints/<int:complaint_id>/verify")
@roles_required("checker", "admin")
def complaint_verify(complaint_id: int) -> Any:
    c = db.session.scalar(_complaints().where(Complaint.id == complaint_id))
    if c is None:
        abort(404)
    form = VerifyForm()
    if not form.validate_on_submit() or form.decision.data not in ("verified", "dismissed"):
        _form_errors(form)
        return redirect(url_for(".complaints")), 303
    if c.state != ComplaintState.open:
        flash(_("This complaint was already handled."), "warning")
        return redirect(url_for(".complaints")), 303
    staff = db.session.get(Staff, c.staff_id)
    if not _month_open(c.received_on, staff.branch_id):
        flash(_("The month of this complaint is approved or locked."), "danger")
        return redirect(url_for(".complaints")), 303
    c.state = form.decision.data
    c.satisfaction = form.satisfaction.data
    c.verified_by = current_staff_id()
    c.verified_at = clock.now()
    db.session.commit()
    flash(_("Complaint %(state)s.", state=c.state), "success")
    return redirect(url_for(".complaints")), 303


__all__ = ["bp", "init_app"]
