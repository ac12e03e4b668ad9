"""The manager's pages, phone-first: my queue, a task with its plan and trail, the follow-up form,
fail and snooze, claims, appointments, notifications (the bell) and the failure-reasons report."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Blueprint, Flask, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from sqlalchemy import select
from wtforms import DateField, DateTimeLocalField, HiddenField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional

from campaigns.models import Assignment, Campaign
from config import clock
from config.database import db
from customers.masking import mask_name, mask_phone
from customers.models import Customer
from tasks import claims, notify, queue, services
from tasks.models import ClaimState, Reaction
from tasks.retry import retry_busy
from web import nav, once
from web.auth import current_scope, current_staff_id, roles_required
from web.once import once_field

bp = Blueprint("queue", __name__, url_prefix="/queue")
nav.register("queue.my_queue", _l("My queue"), ("manager",), order=10)
nav.register("queue.my_claims", _l("My claims"), ("manager",), order=12)
nav.register("queue.appointments", _l("Appointments (预约)"), ("manager", "director"), order=14)
nav.register("queue.overdue", _l("Overdue tasks"), ("director",), order=38)
nav.register("queue.failures", _l("Failure reasons"), ("director", "admin"), order=40)

CHANNEL_CHOICES = [
    SelectChoice("phone", _l("Phone (电话)")),
    SelectChoice("visit", _l("Visit (上门)")),
    SelectChoice("branch", _l("At the branch (到网点)")),
    SelectChoice("wechat", _l("WeChat (微信)")),
    SelectChoice("sms", _l("SMS (短信)")),
]
CHANNELS = {c.value for c in CHANNEL_CHOICES}
REACTION_CHOICES = [
    SelectChoice(Reaction.interested.value, _l("Interested")),
    SelectChoice(Reaction.neutral.value, _l("Neutral")),
    SelectChoice(Reaction.declined.value, _l("Declined")),
    SelectChoice(Reaction.unreachable.value, _l("Unreachable")),
    SelectChoice(Reaction.converted.value, _l("Result reached (claim it)")),
]


class ActionForm(FlaskForm):
    """A one-tap action (start); CSRF only."""


class FollowUpForm(FlaskForm):
    """The follow-up record (跟进记录): channel, content, reaction, next step; optional appointment,
    prospect (扫街 new customer) and referral (转介绍)."""

    channel = SelectField(_l("Channel"), choices=CHANNEL_CHOICES, validators=[DataRequired()])
    content = TextAreaField(_l("What was said"), validators=[DataRequired(), Length(max=4000)])
    reaction = SelectField(_l("Customer reaction"), choices=REACTION_CHOICES, validators=[DataRequired()])
    next_step = StringField(_l("Next step"), validators=[Optional(), Length(max=200)])
    next_due = DateField(_l("Next step on"), validators=[Optional()])
    appointment_at = DateTimeLocalField(
        _l("Book a branch visit at (预约)"), format="%Y-%m-%dT%H:%M", validators=[Optional()]
    )
    failure_reason = StringField(_l("If it did not work: why"), validators=[Optional(), Length(max=500)])
    prospect_name = StringField(
        _l("New prospect's name (潜在客户)"), validators=[Optional(), Length(max=120)]
    )
    prospect_phone = StringField(_l("New prospect's mobile"), validators=[Optional(), Length(max=20)])
    referral_name = StringField(
        _l("Referred person's name (转介绍)"), validators=[Optional(), Length(max=120)]
    )
    referral_phone = StringField(_l("Referred person's mobile"), validators=[Optional(), Length(max=20)])


class FailForm(FlaskForm):
    reason = StringField(
        _l("Why did it fail?"),
        validators=[DataRequired(message=_l("A reason is required.")), Length(max=500)],
    )


class SnoozeForm(FlaskForm):
    until = DateField(_l("Snooze until"), validators=[DataRequired(message=_l("Give a date."))])


class ClaimForm(FlaskForm):
    """A claim of a result (业绩申报) with evidence."""

    task_id = HiddenField()
    once = once_field()  # a double tap makes one claim
    measure = SelectField(_l("Result"), validators=[DataRequired()])
    quantity = StringField(_l("Quantity"), default="1", validators=[DataRequired(), Length(max=20)])
    amount = StringField(_l("Amount (元)"), default="0", validators=[DataRequired(), Length(max=24)])
    evidence_text = TextAreaField(
        _l("Evidence (receipt or account number)"), validators=[Optional(), Length(max=2000)]
    )
    evidence_file = FileField(_l("Photo of the receipt"))


class PlanForm(FlaskForm):
    goal = StringField(_l("Goal"), validators=[DataRequired(), Length(max=300)])
    reaction_1 = StringField(_l("Likely reaction"), validators=[Optional(), Length(max=200)])
    response_1 = StringField(_l("Prepared response"), validators=[Optional(), Length(max=300)])
    reaction_2 = StringField(_l("Likely reaction"), validators=[Optional(), Length(max=200)])
    response_2 = StringField(_l("Prepared response"), validators=[Optional(), Length(max=300)])


class AppointmentForm(FlaskForm):
    customer_id = HiddenField(validators=[DataRequired()])
    at = DateTimeLocalField(_l("When"), format="%Y-%m-%dT%H:%M", validators=[DataRequired()])
    purpose = StringField(_l("Purpose"), validators=[DataRequired(), Length(max=200)])


def _flash_errors(form: FlaskForm) -> None:
    for name, errors in form.errors.items():
        label = getattr(form, name).label.text if hasattr(form, name) else name
        for e in errors:
            flash(f"{label}: {e}", "danger")


def _task(task_id: int) -> Any:
    return services.get_task(db.session, current_staff_id(), task_id)


def customer_label(customer: Customer | None) -> str:
    """The masked customer name (张*明) shown on cards."""
    if customer is None:
        return ""
    return mask_name(customer.name, customer.type)


# -- the queue ---------------------------------------------------------------------------------
@bp.get("/")
@roles_required("manager")
def my_queue() -> Any:
    sid = current_staff_id()
    today = clock.today()
    return render_template(
        "queue/index.html",
        sections=queue.my_queue(db.session, sid, today),
        counts=queue.counts(db.session, sid, today),
        today=today,
        form=ActionForm(),
        customer_label=customer_label,
    )


@bp.get("/task/<int:task_id>")
@roles_required("manager")
def task_detail(task_id: int) -> Any:
    task = _task(task_id)
    customer = db.session.get(Customer, task.customer_id) if task.customer_id else None
    assignment = db.session.get(Assignment, task.assignment_id) if task.assignment_id else None
    campaign = db.session.get(Campaign, task.campaign_id) if task.campaign_id else None
    from customers.contact import suggest_contact

    plan_form = PlanForm()
    if assignment is not None and assignment.plan:
        plan_form.goal.data = assignment.plan.get("goal")
    return render_template(
        "queue/task.html",
        task=task,
        customer=customer,
        customer_name=customer_label(customer),
        phone=mask_phone(customer.phone) if customer is not None and customer.phone else "",
        assignment=assignment,
        campaign=campaign,
        plan=(assignment.plan if assignment is not None else None) or services.default_plan(),
        suggestion=suggest_contact(customer, on=clock.today()) if customer is not None else None,
        trail=services.trail(db.session, customer.id) if customer is not None else [],
        form=ActionForm(),
        fail_form=FailForm(),
        snooze_form=SnoozeForm(),
        plan_form=plan_form,
        delegated=task.staff_id != current_staff_id(),
    )


@bp.post("/task/<int:task_id>/start")
@roles_required("manager")
def start(task_id: int) -> Any:
    task = _task(task_id)
    if not ActionForm().validate_on_submit():
        flash(_("The form expired; try again."), "danger")
        return redirect(url_for(".task_detail", task_id=task.id)), 303

    def work() -> None:
        services.start(db.session, _task(task_id), current_staff_id())
        db.session.commit()

    retry_busy(db.session, work)
    flash(_("Started."), "success")
    return redirect(url_for(".task_detail", task_id=task.id)), 303


def _followup_from(form: FollowUpForm) -> services.FollowUpInput:
    prospect = (
        {"name": form.prospect_name.data, "phone": form.prospect_phone.data}
        if (form.prospect_name.data or "").strip()
        else None
    )
    referral = (
        {"name": form.referral_name.data, "phone": form.referral_phone.data}
        if (form.referral_name.data or "").strip()
        else None
    )
    return services.FollowUpInput(
        channel=form.channel.data,
        content=form.content.data or "",
        reaction=form.reaction.data,
        next_step=form.next_step.data,
        next_due=form.next_due.data,
        failure_reason=form.failure_reason.data,
        book_appointment_at=form.appointment_at.data,
        prospect=prospect,
        referral=referral,
    )


@bp.route("/task/<int:task_id>/complete", methods=["GET", "POST"])
@roles_required("manager")
def complete(task_id: int) -> Any:
    """The follow-up form; saving it completes the task."""
    task = _task(task_id)
    customer = db.session.get(Customer, task.customer_id) if task.customer_id else None
    assignment = db.session.get(Assignment, task.assignment_id) if task.assignment_id else None
    form = FollowUpForm()
    if request.method == "GET" and customer is not None and customer.preferred_channel in CHANNELS:
        form.channel.data = customer.preferred_channel
    status = 200
    if request.method == "POST":
        if form.validate_on_submit():

            def work() -> None:
                services.complete(db.session, _task(task_id), current_staff_id(), _followup_from(form))
                db.session.commit()

            try:
                retry_busy(db.session, work)
            except services.InputError as exc:
                db.session.rollback()
                flash(str(exc), "danger")
                status = 422
            else:
                flash(_("Follow-up saved; task done."), "success")
                if form.reaction.data == Reaction.converted:
                    return redirect(url_for(".claim", task_id=task.id)), 303
                return redirect(url_for(".my_queue")), 303
        else:
            _flash_errors(form)
            status = 422
    return render_template(
        "queue/complete.html",
        task=task,
        form=form,
        customer_name=customer_label(customer),
        plan=assignment.plan if assignment is not None else None,
    ), status


@bp.post("/task/<int:task_id>/fail")
@roles_required("manager")
def fail(task_id: int) -> Any:
    task = _task(task_id)
    form = FailForm()
    if not form.validate_on_submit():
        _flash_errors(form)
        return redirect(url_for(".task_detail", task_id=task.id)), 303

    def work() -> None:
        services.fail(db.session, _task(task_id), current_staff_id(), form.reason.data)
        db.session.commit()

    retry_busy(db.session, work)
    flash(_("Marked as failed; the reason is kept for the next manager."), "warning")
    return redirect(url_for(".my_queue")), 303


@bp.post("/task/<int:task_id>/snooze")
@roles_required("manager")
def snooze(task_id: int) -> Any:
    task = _task(task_id)
    form = SnoozeForm()
    if not form.validate_on_submit():
        _flash_errors(form)
        return redirect(url_for(".task_detail", task_id=task.id)), 303

    def work() -> None:
        services.snooze(db.session, _task(task_id), current_staff_id(), form.until.data)
        db.session.commit()

    try:
        retry_busy(db.session, work)
    except services.InputError as exc:
        db.session.rollback()
        flash(str(exc), "danger")
        return redirect(url_for(".task_detail", task_id=task.id)), 303
    flash(_("Snoozed until %(day)s.", day=form.until.data.isoformat()), "success")
    return redirect(url_for(".my_queue")), 303


@bp.post("/task/<int:task_id>/plan")
@roles_required("manager")
def plan(task_id: int) -> Any:
    """Write the follow-up plan (跟进计划) of the task's assignment."""
    task = _task(task_id)
    assignment = db.session.get(Assignment, task.assignment_id) if task.assignment_id else None
    form = PlanForm()
    if assignment is None:
        flash(_("This task has no assignment to plan."), "danger")
    elif form.validate_on_submit():
        pairs = [
            {"reaction": form.reaction_1.data or "", "response": form.response_1.data or ""},
            {"reaction": form.reaction_2.data or "", "response": form.response_2.data or ""},
        ]
        services.set_plan(db.session, assignment, form.goal.data, pairs)
        db.session.commit()
        flash(_("Plan saved."), "success")
    else:
        _flash_errors(form)
    return redirect(url_for(".task_detail", task_id=task.id)), 303


# -- claims ------------------------------------------------------------------------------------
@bp.route("/claim", methods=["GET", "POST"])
@roles_required("manager")
def claim() -> Any:
    """Claim a result (业绩申报) with evidence; from a task, its campaign and customer are used."""
    sid = current_staff_id()
    task_id = request.values.get("task_id", type=int)
    task = services.get_task(db.session, sid, task_id) if task_id else None
    campaign = db.session.get(Campaign, task.campaign_id) if task is not None and task.campaign_id else None
    form = ClaimForm()
    form.measure.choices = [
        SelectChoice(m, m.replace("_", " ")) for m in claims.campaign_measures(db.session, campaign)
    ]
    if task is not None:
        form.task_id.data = str(task.id)
    status = 200
    if request.method == "POST":
        if form.validate_on_submit():
            token, first_went = once.begin(sid, "claim", form.once.data)
            if first_went is not None:
                flash(_("This claim was already submitted; it was not made twice."), "info")
                return redirect(first_went or url_for(".my_claims")), 303
            try:
                stored = None
                upload = form.evidence_file.data
                if upload is not None and getattr(upload, "filename", ""):
                    settings = current_app.config["SETTINGS"]
                    stored = claims.store_evidence(settings.instance_dir, upload.filename, upload.read())
                c = claims.submit(
                    db.session,
                    sid,
                    measure=form.measure.data,
                    quantity=form.quantity.data,
                    amount=form.amount.data,
                    campaign_id=campaign.id if campaign else None,
                    customer_id=task.customer_id if task is not None else None,
                    assignment_id=task.assignment_id if task is not None else None,
                    task_id=task.id if task is not None else None,
                    evidence_text=form.evidence_text.data,
                    evidence_file=stored,
                )
            except services.InputError as exc:
                db.session.rollback()
                once.release(token)
                flash(str(exc), "danger")
                status = 422
            except BaseException:
                once.release(token)
                raise
            else:
                db.session.commit()
                once.done(token, url_for(".my_claims"))
                flash(_("Claim #%(id)s submitted for verification.", id=c.id), "success")
                return redirect(url_for(".my_claims")), 303
        else:
            _flash_errors(form)
            status = 422
    return render_template("queue/claim.html", form=form, task=task, campaign=campaign), status


@bp.get("/claims")
@roles_required("manager")
def my_claims() -> Any:
    return render_template(
        "queue/claims.html", claims=claims.my_claims(db.session, current_staff_id()), ClaimState=ClaimState
    )


# -- appointments, notifications, report ------------------------------------------------------
@bp.get("/appointments")
@roles_required("manager", "director")
def appointments() -> Any:
    rows = services.my_appointments(db.session, current_staff_id())
    customers = {
        c.id: c
        for c in db.session.scalars(select(Customer).where(Customer.id.in_([a.customer_id for a in rows])))
    }
    return render_template(
        "queue/appointments.html",
        appointments=rows,
        customers=customers,
        customer_label=customer_label,
        me=current_staff_id(),
        now=clock.now(),
        cancel_form=CancelAppointmentForm(),
        miss_form=MissAppointmentForm(),
    )


@bp.route("/appointments/new", methods=["GET", "POST"])
@roles_required("manager")
def new_appointment() -> Any:
    task = _task(request.values.get("task_id", type=int) or 0)
    customer = db.session.get(Customer, task.customer_id) if task.customer_id else None
    if customer is None:
        flash(_("This task has no customer."), "danger")
        return redirect(url_for(".task_detail", task_id=task.id)), 303
    form = AppointmentForm(customer_id=str(customer.id))
    status = 200
    if request.method == "POST":
        if form.validate_on_submit():
            try:
                appt = services.book_appointment(
                    db.session, current_staff_id(), customer, form.at.data, form.purpose.data
                )
            except services.InputError as exc:
                db.session.rollback()
                flash(str(exc), "danger")
                status = 422
            else:
                db.session.commit()
                msg = _("Appointment booked.")
                if appt.accompanied_by_id:
                    msg += " " + _("Key customer: the branch director will accompany (主任陪同).")
                flash(msg, "success")
                return redirect(url_for(".appointments")), 303
        else:
            _flash_errors(form)
            status = 422
    return render_template(
        "queue/appointment_new.html", form=form, task=task, customer_name=customer_label(customer)
    ), status


class CancelAppointmentForm(FlaskForm):
    reason = StringField(
        _l("Why is it cancelled?"),
        validators=[DataRequired(message=_l("A reason is required.")), Length(max=500)],
    )


class MissAppointmentForm(FlaskForm):
    note = StringField(_l("Note (optional)"), validators=[Optional(), Length(max=500)])


@bp.post("/appointments/<int:appointment_id>/cancel")
@roles_required("manager")
def cancel_appointment(appointment_id: int) -> Any:
    services.own_appointment(db.session, current_staff_id(), appointment_id)
    form = CancelAppointmentForm()
    if not form.validate_on_submit():
        _flash_errors(form)
        return redirect(url_for(".appointments")), 303

    def work() -> None:
        services.cancel_appointment(db.session, current_staff_id(), appointment_id, form.reason.data)
        db.session.commit()

    retry_busy(db.session, work)
    flash(_("Appointment cancelled; its task has left your queue."), "warning")
    return redirect(url_for(".appointments")), 303


@bp.post("/appointments/<int:appointment_id>/miss")
@roles_required("manager")
def miss_appointment(appointment_id: int) -> Any:
    services.own_appointment(db.session, current_staff_id(), appointment_id)
    form = MissAppointmentForm()
    if not form.validate_on_submit():
        _flash_errors(form)
        return redirect(url_for(".appointments")), 303

    def work() -> None:
        services.miss_appointment(db.session, current_staff_id(), appointment_id, form.note.data)
        db.session.commit()

    retry_busy(db.session, work)
    flash(_("Marked as missed; a call to rebook is in your queue for tomorrow."), "warning")
    return redirect(url_for(".appointments")), 303


@bp.route("/notifications", methods=["GET", "POST"])
@roles_required("manager", "director", "checker", "admin")
def notifications() -> Any:
    sid = current_staff_id()
    form = ActionForm()
    if request.method == "POST" and form.validate_on_submit():
        notify.mark_all_read(db.session, sid)
        db.session.commit()
        return redirect(url_for(".notifications")), 303
    return render_template("queue/notifications.html", items=notify.recent(db.session, sid), form=form)


@bp.get("/overdue")
@roles_required("director", "admin")
def overdue() -> Any:
    """Overdue tasks of the director's branches (where the escalation notification points)."""
    from sqlalchemy import func

    from org.models import Branch, Staff
    from tasks.models import Task, TaskState

    scope = current_scope()
    rows = db.session.execute(
        select(Branch.code, Staff.name, func.count())
        .select_from(Task)
        .join(Branch, Branch.id == Task.branch_id)
        .join(Staff, Staff.id == Task.staff_id)
        .where(
            Task.state.in_((TaskState.open, TaskState.in_progress)),
            Task.due_on < clock.today(),
            scope.branch_filter(Task.branch_id, "director", "admin"),
        )
        .group_by(Branch.code, Staff.name)
        .order_by(func.count().desc())
    ).all()
    return render_template("queue/overdue.html", rows=rows)


@bp.get("/report/failures")
@roles_required("director", "admin")
def failures() -> Any:
    scope = current_scope()
    rows = queue.failure_report(db.session, scope.branches_for("director", "admin"))
    return render_template("queue/failures.html", rows=rows)


KIND_LABELS = {
    "contact": _l("contact"),
    "follow_up": _l("follow-up"),
    "visit": _l("visit"),
    "retention": _l("retention"),
    "appointment": _l("branch visit"),
    "activation": _l("activation"),
}


def channel_label(channel: str | None) -> str:
    """A channel's label: "Phone (电话)"."""
    for c in CHANNEL_CHOICES:
        if c.value == channel:
            return str(c.label)
    return channel or ""


def kind_label(kind: str | None) -> str:
    return str(KIND_LABELS.get(kind or "", kind or ""))


def measure_label(measure: str | None) -> str:
    """A measure's label in the user's language (from the rule engine's registry)."""
    from flask_babel import get_locale

    try:
        from appraisal.rules import MEASURES
    except ImportError:  # pragma: no cover
        MEASURES = {}  # noqa: N806
    m = MEASURES.get(measure or "")
    if m is None:
        return (measure or "").replace("_", " ")
    return str(m.label_zh if str(get_locale()) == "zh_CN" else m.label_en)


def notification_count() -> int:
    """Unread notifications of the signed-in person (the bell's number); 0 when signed out."""
    if not getattr(current_user, "is_authenticated", False):
        return 0
    return notify.unread_count(db.session, current_user.staff.id)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    app.jinja_env.globals["notification_count"] = notification_count
    app.jinja_env.globals["customer_label"] = customer_label
    app.jinja_env.globals["channel_label"] = channel_label
    app.jinja_env.globals["kind_label"] = kind_label
    app.jinja_env.globals["measure_label"] = measure_label
    _ = dt  # dates are parsed by the forms
