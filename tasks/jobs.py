"""Scheduled jobs of the task queue (Celery beat): thin adapters over set-based functions.

* due-soon reminders (one notification per manager and day: tasks due tomorrow),
* overdue escalation to the branch director (one per branch and day),
* snooze wake-up (``bulk_fire('wake')`` on tasks whose date has come),
* follow-on and cadence tasks of the campaigns' task templates (:mod:`tasks.cadence`),
* appointment reminders (the day before, to the manager and the accompanying director),
* automatic verification of claims confirmed by imported core-banking data, and the
  retention sweep (clawback of claims whose account closed inside the window).

Each function takes a session and is idempotent (notifications carry a dedupe ``key``).
"""

from __future__ import annotations

import datetime as dt

from celery import shared_task
from celery.schedules import crontab
from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from config import clock
from config.database import db, now_local
from org.models import Branch
from tasks.models import Appointment, AppointmentState, Task, TaskState
from tasks.notify import notify
from workflow.engine import bulk_fire

ACTIVE = (TaskState.open, TaskState.in_progress)


def wake_snoozed(session: Session, today: dt.date | None = None) -> int:
    """Snoozed tasks whose date has come go back to open (set-based)."""
    today = today or clock.today()
    return bulk_fire(
        session,
        Task,
        "wake",
        Task.snoozed_until <= today,
        reason="snooze date reached",
        values={"snoozed_until": None},
    )


def due_soon_reminders(session: Session, today: dt.date | None = None) -> int:
    """Tell each manager how many tasks fall due tomorrow; once per manager and day."""
    today = today or clock.today()
    tomorrow = today + dt.timedelta(days=1)
    rows = session.execute(
        select(Task.staff_id, func.count())
        .where(Task.state.in_(ACTIVE), Task.due_on == tomorrow, Task.staff_id.is_not(None))
        .group_by(Task.staff_id)
    ).all()
    for staff_id, n in rows:
        assert staff_id is not None  # filtered above
        notify(
            session,
            staff_id,
            "due_soon",
            f"{n} task(s) due tomorrow ({tomorrow.isoformat()})",
            "/queue",
            key=f"due_soon:{tomorrow}",
        )
    return len(rows)


def overdue_escalation(session: Session, today: dt.date | None = None, grace_days: int = 0) -> int:
    """Tell each branch director how many tasks of their branch are overdue; once per branch and day."""
    from tasks.services import branch_director

    today = today or clock.today()
    rows = session.execute(
        select(Task.branch_id, func.count())
        .where(Task.state.in_(ACTIVE), Task.due_on < today - dt.timedelta(days=grace_days))
        .group_by(Task.branch_id)
    ).all()
    sent = 0
    for branch_id, n in rows:
        director = branch_director(session, branch_id)
        if director is None:
            continue
        code = session.scalar(select(Branch.code).where(Branch.id == branch_id))
        notify(
            session,
            director.id,
            "overdue",
            f"{n} overdue task(s) in branch {code}",
            "/queue/overdue",
            key=f"overdue:{branch_id}:{today}",
        )
        sent += 1
    return sent + _retention_escalation(session, today, grace_days)


def _retention_escalation(session: Session, today: dt.date, grace_days: int) -> int:
    """Journey 6: an untouched retention task (raised by a customer alert) is named to the branch
    director — which customer (masked), which manager, how late — once per task."""
    from customers.masking import mask_name
    from customers.models import Customer
    from org.models import Staff
    from tasks.services import branch_director

    rows = session.execute(
        select(Task.id, Task.branch_id, Task.due_on, Task.detail, Customer.name, Customer.type, Staff.name)
        .join(Customer, Customer.id == Task.customer_id)
        .outerjoin(Staff, Staff.id == Task.staff_id)
        .where(
            Task.source == "alert",
            Task.state.in_(ACTIVE),
            Task.due_on < today - dt.timedelta(days=grace_days),
        )
    ).all()
    sent = 0
    for task_id, branch_id, due_on, detail, cname, ctype, manager in rows:
        director = branch_director(session, branch_id)
        if director is None:
            continue
        alert = str((detail or {}).get("alert_type", "alert")).replace("_", " ")
        late = (today - due_on).days
        notify(
            session,
            director.id,
            "overdue",
            f"Retention task for {mask_name(cname, ctype)} ({alert}) untouched, {late} day(s) overdue — {manager or 'no owner'}",
            f"/queue/task/{task_id}",
            key=f"overdue-retention:{task_id}",
        )
        sent += 1
    return sent


def appointment_reminders(session: Session, now: dt.datetime | None = None, ahead_hours: int = 24) -> int:
    """Remind the manager and the accompanying director of visits in the next ``ahead_hours``."""
    now = now or clock.now()
    appts = session.scalars(
        select(Appointment).where(
            and_(
                Appointment.state == AppointmentState.booked,
                Appointment.reminded_at.is_(None),
                Appointment.at >= now,
                Appointment.at <= now + dt.timedelta(hours=ahead_hours),
            )
        )
    ).all()
    for a in appts:
        text = f"Reminder: branch visit {a.at:%Y-%m-%d %H:%M} — {a.purpose}"
        for sid in {a.staff_id, a.accompanied_by_id} - {None}:
            notify(session, sid, "appointment", text, "/queue/appointments", key=f"appt:{a.id}:reminder")  # type: ignore[arg-type]
        a.reminded_at = now_local()
    session.flush()
    return len(appts)


@shared_task(name="tasks.morning", ignore_result=True)
def morning() -> dict[str, int]:
    """Wake snoozed tasks, make follow-on and cadence tasks of the campaigns' templates, then send
    due-soon reminders and overdue escalations."""
    from tasks import cadence

    out = {}
    with db.transaction() as session:
        out["woken"] = wake_snoozed(session)
    with db.transaction() as session:
        out["generated"] = cadence.generate(session)
    with db.transaction() as session:
        out["due_soon"] = due_soon_reminders(session)
        out["escalated"] = overdue_escalation(session)
    return out


@shared_task(name="tasks.appointment_reminders", ignore_result=True)
def remind_appointments() -> int:
    with db.transaction() as session:
        return appointment_reminders(session)


@shared_task(name="tasks.auto_verify", ignore_result=True)
def auto_verify_claims() -> dict[str, int]:
    """Verify claims confirmed by the imported core-banking data; sweep the retention window."""
    from tasks import claims

    with db.transaction() as session:
        result = claims.auto_verify(session)
    with db.transaction() as session:
        result["reversed"] = claims.retention_sweep(session)
    return result


@shared_task(name="tasks.purge_expired_notes", ignore_result=True)
def purge_expired_notes() -> dict[str, int]:
    """Replace personal notes older than the retention period (tasks/retention.py)."""
    from config.settings import Settings
    from tasks import retention

    days = Settings.from_env().retention_days
    with db.transaction() as session:
        return retention.purge(session, retention.cutoff(clock.today(), days))


SCHEDULE = {
    "tasks-purge-expired-notes": {
        "task": "tasks.purge_expired_notes",
        "schedule": crontab(minute=0, hour=3, day_of_month=1),
    },
    "tasks-morning": {"task": "tasks.morning", "schedule": crontab(minute=0, hour=7)},
    "tasks-appointment-reminders": {
        "task": "tasks.appointment_reminders",
        "schedule": crontab(minute=0, hour="*/2"),
    },
    "tasks-auto-verify": {"task": "tasks.auto_verify", "schedule": crontab(minute=30, hour=6)},
}
