"""Verbs on tasks, follow-ups, prospects, referrals and appointments (PRODUCT.md §5, JOURNEYS 2).

Services flush; the entrypoint commits. Bad input raises :class:`InputError` (HTTP 422) naming
the field, before anything is changed; a task outside the caller's queue is :class:`NotFound`.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns.machine import assignment_workflow
from campaigns.models import Assignment, Campaign
from config import clock
from customers.models import Customer, CustomerTag, Lifecycle
from org import sensitive
from org.models import Role, Staff, StaffRole, StaffStatus
from org.scope import NotFound
from tasks.machine import CONTACT_KINDS
from tasks.models import (
    PLAN_SEED,
    REACTION_TRIGGERS,
    Appointment,
    AppointmentState,
    FollowUp,
    Reaction,
    Task,
    TaskState,
)
from tasks.notify import notify
from workflow.engine import fire
from workflow.errors import WorkflowError

CHANNELS = ("phone", "visit", "branch", "wechat", "sms")


class InputError(WorkflowError):
    """Bad input: the message names the field; nothing was changed (HTTP 422)."""

    http_status = 422

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")

    def to_dict(self) -> dict[str, object]:
        return {**super().to_dict(), "field": self.field}


# -- access ------------------------------------------------------------------------------------
def is_away(staff: Staff, today: dt.date | None = None) -> bool:
    today = today or clock.today()
    return staff.substitute_id is not None and (
        staff.status == StaffStatus.on_leave or (staff.away_until is not None and staff.away_until >= today)
    )


def may_act(session: Session, staff_id: int, task: Task, today: dt.date | None = None) -> bool:
    """Whether ``staff_id`` works this task: its owner (unless away with a substitute) or that substitute."""
    owner = session.get(Staff, task.staff_id) if task.staff_id else None
    if owner is None:
        return False
    away = is_away(owner, today)
    return (task.staff_id == staff_id and not away) or (away and owner.substitute_id == staff_id)


def get_task(session: Session, staff_id: int, task_id: int) -> Task:
    """The task if it is in the caller's queue (own or delegated), else :class:`NotFound`."""
    task = session.get(Task, task_id)
    if task is None or not may_act(session, staff_id, task):
        raise NotFound(f"No task {task_id}")
    return task


# -- the task verbs ----------------------------------------------------------------------------
def start(session: Session, task: Task, actor_id: int) -> Task:
    """open → in_progress; refused for a do-not-contact customer or outside their contact window."""
    fire(session, task, "start", actor_id=actor_id)
    return task


@dataclass
class FollowUpInput:
    """What the follow-up form carries (跟进记录)."""

    channel: str
    content: str
    reaction: str
    next_step: str | None = None
    next_due: dt.date | None = None
    failure_reason: str | None = None
    at: dt.datetime | None = None
    book_appointment_at: dt.datetime | None = None  # the next step is a branch visit (预约)
    prospect: dict[str, Any] | None = None  # canvassing: register a new prospect (潜在客户)
    referral: dict[str, Any] | None = None  # 转介绍: the customer introduces another

    def validate(self, today: dt.date) -> None:
        if not (self.content or "").strip():
            raise InputError("content", "a follow-up needs its content (what was said); it is empty")
        if self.channel not in CHANNELS:
            raise InputError(
                "channel", f"{self.channel!r} is not a channel; choose one of {', '.join(CHANNELS)}"
            )
        if self.reaction not in set(Reaction):
            raise InputError(
                "reaction", f"{self.reaction!r} is not a reaction; choose one of {', '.join(Reaction)}"
            )
        if self.next_due is not None and self.next_due < today:
            raise InputError("next_due", f"the next step's date {self.next_due.isoformat()} is in the past")
        if self.next_due is not None and not (self.next_step or "").strip():
            raise InputError("next_step", "say what the next step is when you give its date")
        if self.book_appointment_at is not None and self.book_appointment_at < clock.now():
            raise InputError("appointment", "the appointment time is in the past")
        for name, data in (("prospect", self.prospect), ("referral", self.referral)):
            if data is not None and not str(data.get("name") or "").strip():
                raise InputError(f"{name}.name", "a name is required to register a new customer")
        for name, text in (
            ("content", self.content),
            ("next_step", self.next_step),
            ("failure_reason", self.failure_reason),
        ):
            refused = sensitive.problem(text)
            if refused:
                raise InputError(name, refused)


def complete(
    session: Session, task: Task, actor_id: int, data: FollowUpInput | None = None
) -> FollowUp | None:
    """Record the follow-up and complete the task (an open task is started first).

    The follow-up moves the assignment by its reaction; a next step with a date creates the next
    task (``source='follow_up'``, key ``fu:<task id>``: never twice); a booked visit makes an
    appointment; a prospect or referral enters the customer base.
    """
    today = clock.today()
    if task.state not in (TaskState.open, TaskState.in_progress):
        from tasks.machine import task_workflow
        from workflow.errors import InvalidTransition

        raise InvalidTransition(
            "task", task.id, task.state, "complete", task_workflow.triggers_from(task.state)
        )
    if task.kind in CONTACT_KINDS and data is None:
        raise InputError("content", "a contact task needs a follow-up record (跟进记录) to be completed")
    if data is not None:
        data.validate(today)
    if task.state == TaskState.open:
        fire(session, task, "start", actor_id=actor_id)
    follow_up = record_follow_up(session, task, actor_id, data) if data is not None else None
    fire(
        session,
        task,
        "complete",
        actor_id=actor_id,
        payload={"follow_up_id": follow_up.id} if follow_up else None,
    )
    if task.source == "appointment" and task.detail and task.detail.get("appointment_id"):
        appt = session.get(Appointment, int(task.detail["appointment_id"]))
        if appt is not None and appt.state == AppointmentState.booked:  # the visit happened
            fire(session, appt, "attend", actor_id=actor_id, reason="its visit task was completed")
    return follow_up


def record_follow_up(session: Session, task: Task, actor_id: int, data: FollowUpInput) -> FollowUp:
    """Store the follow-up of ``task`` and apply its consequences (see :func:`complete`)."""
    if task.customer_id is None:
        raise InputError("customer", "this task has no customer to record a follow-up for")
    fu = FollowUp(
        task_id=task.id,
        assignment_id=task.assignment_id,
        customer_id=task.customer_id,
        staff_id=actor_id,
        at=data.at or clock.now(),
        channel=data.channel,
        content=data.content.strip(),
        reaction=data.reaction,
        next_step=(data.next_step or "").strip() or None,
        next_due=data.next_due,
        failure_reason=(data.failure_reason or "").strip() or None,
    )
    session.add(fu)
    session.flush()
    if task.assignment_id:
        _move_assignment(session, task.assignment_id, data.reaction, actor_id)
    visit_that_day = data.book_appointment_at is not None and data.book_appointment_at.date() == data.next_due
    if data.next_due is not None and not visit_that_day:  # the appointment's own task covers that day
        create_next_task(session, task, fu)
    if data.book_appointment_at is not None:
        customer = session.get(Customer, task.customer_id)
        if customer is None:
            raise NotFound(f"No customer {task.customer_id}")
        appt = book_appointment(
            session,
            actor_id,
            customer,
            data.book_appointment_at,
            fu.next_step or "branch visit (到网点)",
            follow_up=fu,
        )
        fu.next_step = fu.next_step or f"branch visit {appt.at:%Y-%m-%d %H:%M}"
    if data.prospect:
        register_prospect(session, actor_id, data.prospect, task=task)
    if data.referral:
        record_referral(session, actor_id, task.customer_id, data.referral)
    return fu


def _move_assignment(session: Session, assignment_id: int, reaction: str, actor_id: int) -> None:
    a = session.get(Assignment, assignment_id)
    if a is None:
        return
    allowed = assignment_workflow.triggers_from(a.state)
    for trigger in REACTION_TRIGGERS.get(reaction, ()):
        if trigger in allowed:
            fire(session, a, trigger, actor_id=actor_id, reason=f"follow-up: {reaction}")
            return


def create_next_task(session: Session, task: Task, fu: FollowUp) -> Task:
    """The follow-up's next step as a task for the same owner; idempotent by ``fu:<task id>``."""
    key = f"fu:{task.id}"
    existing = session.scalar(select(Task).where(Task.source_key == key))
    if existing is not None:
        return existing
    nxt = Task(
        kind="follow_up",
        title=(fu.next_step or "follow-up")[:200],
        campaign_id=task.campaign_id,
        assignment_id=task.assignment_id,
        customer_id=task.customer_id,
        branch_id=task.branch_id,
        staff_id=task.staff_id,
        due_on=fu.next_due or clock.today(),
        priority=task.priority,
        source="follow_up",
        source_key=key,
        detail={"previous_task_id": task.id, "follow_up_id": fu.id},
    )
    session.add(nxt)
    session.flush()
    return nxt


def fail(session: Session, task: Task, actor_id: int, reason: str | None) -> Task:
    """in_progress → failed with a reason (an open task is started first); the reason is reported."""
    if not (reason or "").strip():
        raise InputError("reason", "a reason is required when a task fails")
    refused = sensitive.problem(reason)
    if refused:
        raise InputError("reason", refused)
    if task.state == TaskState.open:
        fire(session, task, "start", actor_id=actor_id)
    fire(session, task, "fail", actor_id=actor_id, reason=reason)
    return task


def snooze(session: Session, task: Task, actor_id: int, until: dt.date | None) -> Task:
    """open → snoozed until a future date (the scheduler wakes it that morning)."""
    today = clock.today()
    if until is None:
        raise InputError("until", "give the date to snooze until")
    if until <= today:
        raise InputError(
            "until", f"{until.isoformat()} is not in the future: snooze to a date after {today.isoformat()}"
        )
    fire(session, task, "snooze", actor_id=actor_id, payload={"until": until.isoformat()})
    return task


# -- plans, trails, prospects, referrals -------------------------------------------------------
def default_plan(goal: str | None = None) -> dict[str, Any]:
    """A follow-up plan (跟进计划) to fill in: the goal, likely reactions and prepared responses."""
    return {"goal": goal or "", "seed": PLAN_SEED, "reactions": [{"reaction": "", "response": ""}]}


def set_plan(
    session: Session, assignment: Assignment, goal: str, reactions: list[dict[str, str]]
) -> Assignment:
    if not (goal or "").strip():
        raise InputError("goal", "the plan needs a goal")
    clean = [
        {"reaction": str(r.get("reaction", "")).strip(), "response": str(r.get("response", "")).strip()}
        for r in reactions
        if str(r.get("reaction", "")).strip()
    ]
    assignment.plan = {"goal": goal.strip(), "seed": PLAN_SEED, "reactions": clean}
    session.flush()
    return assignment


def trail(session: Session, customer_id: int) -> list[FollowUp]:
    """Every follow-up of a customer, newest first, whoever made it (a new owner sees them all)."""
    return list(
        session.scalars(
            select(FollowUp)
            .where(FollowUp.customer_id == customer_id)
            .order_by(FollowUp.at.desc(), FollowUp.id.desc())
        )
    )


def _new_customer(session: Session, actor_id: int, data: dict[str, Any], **kw: Any) -> Customer:
    staff = session.get(Staff, actor_id)
    if staff is None:
        raise NotFound(f"No staff {actor_id}")
    name = str(data.get("name") or "").strip()
    if not name:
        raise InputError("name", "a name is required to register a new customer")
    phone = str(data.get("phone") or "").strip() or None
    if phone is not None:
        from customers.identity import normalise_mobile, validate_mobile

        problems = validate_mobile(phone)
        if problems:
            raise InputError("phone", "; ".join(problems))
        phone = normalise_mobile(phone)
    c = Customer(
        customer_no=f"P{clock.today():%y%m%d}{uuid.uuid4().hex[:8].upper()}",
        name=name[:120],
        phone=phone,
        address=(str(data.get("address") or "").strip() or None),
        grid=(str(data.get("grid") or "").strip() or None),
        occupation=(str(data.get("occupation") or "").strip() or None),
        branch_id=staff.branch_id,
        manager_id=staff.id,
        lifecycle=Lifecycle.prospect,
        referred_by_staff_id=staff.id,
        notes=(str(data.get("notes") or "").strip() or None),
        **kw,
    )
    session.add(c)
    session.flush()
    if c.tags:  # the list filter reads customer_tag
        session.add_all(CustomerTag(customer_id=c.id, tag=tag) for tag in dict.fromkeys(c.tags))
        session.flush()
    return c


def register_prospect(
    session: Session, actor_id: int, data: dict[str, Any], task: Task | None = None
) -> Customer:
    """A canvassing visit registers a new prospect (潜在客户) on the spot, owned by the visitor.

    Registered on a task's visit, the prospect is tagged ``canvassing`` and with the campaign's
    code (what the campaign dashboard counts as "prospects made"), and, unless told otherwise,
    lives in the grid of the shop being visited (the neighbour next door)."""
    if task is None:
        return _new_customer(session, actor_id, data, tags=[])
    tags = ["canvassing"]
    if task.campaign_id is not None:
        code = session.scalar(select(Campaign.code).where(Campaign.id == task.campaign_id))
        if code:
            tags.append(code)
    if not str(data.get("grid") or "").strip():
        visited = session.scalar(select(Customer.grid).where(Customer.id == task.customer_id))
        data = {**data, "grid": visited}
    return _new_customer(session, actor_id, data, tags=tags)


def record_referral(session: Session, actor_id: int, referrer_id: int, data: dict[str, Any]) -> Customer:
    """转介绍: the customer introduces another, who enters the customer base with its referrer."""
    return _new_customer(session, actor_id, data, referred_by_customer_id=referrer_id)


# -- appointments ------------------------------------------------------------------------------
def branch_director(session: Session, branch_id: int) -> Staff | None:
    """The active director of the branch (信用社主任), if any."""
    return session.scalars(
        select(Staff)
        .join(StaffRole, StaffRole.staff_id == Staff.id)
        .where(
            StaffRole.role == Role.director,
            StaffRole.branch_id == branch_id,
            Staff.status == StaffStatus.active,
        )
        .order_by(Staff.id)
        .limit(1)
    ).first()


def book_appointment(
    session: Session,
    actor_id: int,
    customer: Customer,
    at: dt.datetime,
    purpose: str,
    follow_up: FollowUp | None = None,
) -> Appointment:
    """Book a branch visit; a key customer's director accompanies (对于重要客户，信用社主任要亲自陪同).

    Both are notified, and the manager gets an appointment task on that day (key ``appt:<id>``).
    """
    if at < clock.now():
        raise InputError("at", f"{at:%Y-%m-%d %H:%M} is in the past")
    if not (purpose or "").strip():
        raise InputError("purpose", "say what the visit is for")
    refused = sensitive.problem(purpose)
    if refused:
        raise InputError("purpose", refused)
    if customer.do_not_contact:
        raise InputError("customer", "the customer asked not to be contacted (do-not-contact)")
    director = branch_director(session, customer.branch_id) if customer.is_key else None
    appt = Appointment(
        customer_id=customer.id,
        staff_id=actor_id,
        branch_id=customer.branch_id,
        at=at,
        purpose=purpose.strip()[:200],
        accompanied_by_id=director.id if director and director.id != actor_id else None,
        follow_up_id=follow_up.id if follow_up else None,
    )
    session.add(appt)
    session.flush()
    session.add(
        Task(
            kind="appointment",
            title=f"branch visit: {appt.purpose}"[:200],
            customer_id=customer.id,
            branch_id=customer.branch_id,
            staff_id=actor_id,
            due_on=at.date(),
            source="appointment",
            source_key=f"appt:{appt.id}",
            detail={"appointment_id": appt.id},
        )
    )
    session.flush()
    from customers.masking import mask_name

    who = mask_name(customer.name, customer.type)
    text = f"Appointment {at:%Y-%m-%d %H:%M}: {who} — {appt.purpose}"
    notify(session, actor_id, "appointment", text, link="/queue/appointments", key=f"appt:{appt.id}:booked")
    if appt.accompanied_by_id:
        notify(
            session,
            appt.accompanied_by_id,
            "appointment",
            f"Please accompany a key customer (重要客户): {text}",
            link="/queue/appointments",
            key=f"appt:{appt.id}:booked",
        )
    return appt


def own_appointment(session: Session, staff_id: int, appointment_id: int) -> Appointment:
    """An appointment the staff member booked; anyone else's (or none) is "not found"."""
    appt = session.get(Appointment, appointment_id)
    if appt is None or appt.staff_id != staff_id:
        raise NotFound(f"No appointment {appointment_id}")
    return appt


def cancel_appointment(session: Session, staff_id: int, appointment_id: int, reason: str) -> Appointment:
    """Call off a booked visit (reason required): its task leaves the queue, the accompanying
    director is told."""
    appt = own_appointment(session, staff_id, appointment_id)
    fire(session, appt, "cancel", actor_id=staff_id, reason=reason)
    return appt


def miss_appointment(
    session: Session, staff_id: int, appointment_id: int, note: str | None = None
) -> Appointment:
    """The customer did not come (no-show): once the time has passed; the visit task is
    cancelled and a call to rebook is due tomorrow."""
    appt = own_appointment(session, staff_id, appointment_id)
    fire(session, appt, "miss", actor_id=staff_id, reason=note)
    return appt


def my_appointments(session: Session, staff_id: int, from_day: dt.date | None = None) -> list[Appointment]:
    """Appointments the staff member booked or accompanies: from ``from_day`` (today) on, and any
    earlier one still booked, so a visit that did not happen can be marked as missed."""
    from_day = from_day or clock.today()
    start = dt.datetime.combine(from_day, dt.time.min)
    return list(
        session.scalars(
            select(Appointment)
            .where(
                (Appointment.staff_id == staff_id) | (Appointment.accompanied_by_id == staff_id),
                # from today on, and earlier ones still booked (to mark attended or missed)
                (Appointment.at >= start) | (Appointment.state == AppointmentState.booked),
            )
            .order_by(Appointment.at)
        )
    )
