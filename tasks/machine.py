"""The task state machine (PRODUCT.md §5), declared once as data.

Starting a contact task checks do-not-contact and the customer's contact window (§4.5: enforced
by the queue, not left to memory); completing one needs a follow-up record.
"""

from __future__ import annotations

from sqlalchemy import select

from config import clock
from config.database import now_local
from tasks.models import Appointment, AppointmentState, FollowUp, Task, TaskState
from workflow.engine import FireContext, Guard, Transition, Workflow

T = TaskState

#: Task kinds that mean talking to the customer.
CONTACT_KINDS = frozenset({"contact", "follow_up", "visit", "retention", "call", "appointment", "canvass"})


def _customer(ctx: FireContext):  # noqa: ANN202
    from customers.models import Customer

    cid = ctx.obj.customer_id
    return ctx.session.get(Customer, cid) if cid else None


def _may_contact(ctx: FireContext) -> str | None:
    if ctx.obj.kind not in CONTACT_KINDS:
        return None
    customer = _customer(ctx)
    if customer is not None and customer.do_not_contact:
        return "the customer asked not to be contacted (do-not-contact): this contact task cannot be started"
    return None


def _in_contact_window(ctx: FireContext) -> str | None:
    if ctx.obj.kind not in CONTACT_KINDS or ctx.payload.get("ignore_window"):
        return None
    customer = _customer(ctx)
    window = customer.contact_window if customer is not None else None
    if not window:
        return None
    from customers.contact import next_window_start, within_window

    try:
        now = clock.now()
        if within_window(window, now.time()):
            return None
        nxt = next_window_start(window, now)
    except ValueError:
        return None
    return f"outside the customer's contact window {window}: next possible at {nxt:%Y-%m-%d %H:%M}"


def _has_follow_up(ctx: FireContext) -> str | None:
    if ctx.obj.kind not in CONTACT_KINDS:
        return None
    found = ctx.session.scalar(select(FollowUp.id).where(FollowUp.task_id == ctx.obj.id).limit(1))
    return None if found else "a contact task needs a follow-up record (跟进记录) to be completed"


def _finished(ctx: FireContext) -> None:
    ctx.obj.finished_at = now_local()


def _failed(ctx: FireContext) -> None:
    ctx.obj.failed_reason = ctx.reason
    _finished(ctx)


def _snoozed(ctx: FireContext) -> None:
    import datetime as dt

    until = ctx.payload.get("until")
    ctx.obj.snoozed_until = dt.date.fromisoformat(until) if isinstance(until, str) else until


def _woken(ctx: FireContext) -> None:
    ctx.obj.snoozed_until = None


task_workflow = Workflow(
    "task",
    Task,
    list(T),
    [
        Transition.of(
            "start",
            T.open,
            T.in_progress,
            guards=[Guard("may_contact", _may_contact), Guard("in_contact_window", _in_contact_window)],
        ),
        Transition.of(
            "complete",
            T.in_progress,
            T.done,
            guards=[Guard("has_follow_up", _has_follow_up)],
            after=[_finished],
        ),
        Transition.of("fail", T.in_progress, T.failed, reason_required=True, after=[_failed]),
        Transition.of("snooze", T.open, T.snoozed, after=[_snoozed]),
        Transition.of("wake", T.snoozed, T.open, after=[_woken]),
        Transition.of("cancel", [T.open, T.in_progress, T.snoozed], T.cancelled, after=[_finished]),
        Transition.of("expire", [T.open, T.in_progress, T.snoozed], T.expired, after=[_finished]),
    ],
    initial=T.open,
)


# -- appointments (预约) ----------------------------------------------------------------------
AS = AppointmentState


def _appointment_task(ctx: FireContext) -> Task | None:
    return ctx.session.scalars(select(Task).where(Task.source_key == f"appt:{ctx.obj.id}")).first()


def _has_passed(ctx: FireContext) -> str | None:
    if ctx.obj.at > clock.now():
        return f"the visit is at {ctx.obj.at:%Y-%m-%d %H:%M}: it can be marked as missed only after that"
    return None


def _close_visit_task(ctx: FireContext) -> None:
    """The visit will not happen: its task leaves the queue (cancelled, with the same reason)."""
    from workflow.engine import fire

    task = _appointment_task(ctx)
    if task is not None and task.state in (T.open, T.in_progress, T.snoozed):
        why = ctx.reason or ("customer did not come" if ctx.trigger == "miss" else "appointment cancelled")
        what = "missed" if ctx.trigger == "miss" else "cancelled"
        fire(ctx.session, task, "cancel", actor_id=ctx.actor_id, reason=f"appointment {what}: {why}")


def _rebook_task(ctx: FireContext) -> None:
    """A missed visit gives the manager a call to rebook tomorrow (once per appointment)."""
    import datetime as dt

    key = f"appt:{ctx.obj.id}:rebook"
    if ctx.session.scalar(select(Task.id).where(Task.source_key == key)) is not None:
        return
    ctx.session.add(
        Task(
            kind="follow_up",
            title=f"missed branch visit — call to rebook: {ctx.obj.purpose}"[:200],
            customer_id=ctx.obj.customer_id,
            branch_id=ctx.obj.branch_id,
            staff_id=ctx.obj.staff_id,
            due_on=clock.today() + dt.timedelta(days=1),
            source="appointment",
            source_key=key,
            detail={"appointment_id": ctx.obj.id, "missed_at": f"{ctx.obj.at:%Y-%m-%d %H:%M}"},
        )
    )
    ctx.session.flush()


def _tell_companion(ctx: FireContext) -> None:
    """The branch director who was to accompany hears that the visit is off."""
    if not ctx.obj.accompanied_by_id:
        return
    from tasks.notify import notify

    what = "cancelled" if ctx.trigger == "cancel" else "missed (customer did not come)"
    text = f"Appointment {ctx.obj.at:%Y-%m-%d %H:%M} {what}: {ctx.obj.purpose}"
    if ctx.reason:
        text += f" — {ctx.reason}"
    notify(
        ctx.session,
        ctx.obj.accompanied_by_id,
        "appointment",
        text,
        link="/queue/appointments",
        key=f"appt:{ctx.obj.id}:{ctx.trigger}",
    )


appointment_workflow = Workflow(
    "appointment",
    Appointment,
    list(AS),
    [
        Transition.of("attend", AS.booked, AS.done),
        Transition.of(
            "cancel",
            AS.booked,
            AS.cancelled,
            reason_required=True,
            after=[_close_visit_task, _tell_companion],
        ),
        Transition.of(
            "miss",
            AS.booked,
            AS.no_show,
            guards=[Guard("has_passed", _has_passed)],
            after=[_close_visit_task, _rebook_task, _tell_companion],
        ),
    ],
    initial=AS.booked,
)
