"""Jobs go through a transactional outbox (RELIABILITY JOB-05): written with the change, sent after
the commit, dropped with a rollback, and re-sent by the sweep when a crash came in between."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select

from config import clock
from config.database import now_local
from tasks import services
from tasks.models import Notification
from tests.factories import make_customer
from workflow import outbox
from workflow.models import OutboxMessage


def _appointment_soon(session, union):
    cust = make_customer(session, union.b1, union.m1)
    session.commit()
    at = (clock.now() + dt.timedelta(hours=2)).replace(second=0, microsecond=0)
    services.book_appointment(session, union.m1.id, cust, at, "开定期")
    session.commit()


def _reminders(session) -> int:
    session.expire_all()
    return int(
        session.scalar(
            select(func.count()).select_from(Notification).where(Notification.key.like("appt:%:reminder"))
        )
        or 0
    )


def test_sent_after_the_commit_and_marked(app, session, union):
    from tasks.jobs import remind_appointments

    _appointment_soon(session, union)
    outbox.send_after_commit(session, remind_appointments)
    assert _reminders(session) == 0  # nothing before the commit
    session.commit()
    assert _reminders(session) == 1  # the job ran (eagerly in tests): the manager is reminded
    msg = session.scalars(select(OutboxMessage)).one()
    assert msg.job == "tasks.appointment_reminders" and msg.sent_at is not None


def test_a_rollback_sends_nothing(app, session, union):
    from tasks.jobs import remind_appointments

    _appointment_soon(session, union)
    outbox.send_after_commit(session, remind_appointments)
    session.rollback()
    assert _reminders(session) == 0
    assert session.scalar(select(func.count()).select_from(OutboxMessage)) == 0


def test_the_sweep_sends_what_a_crash_left_and_forgets_old_messages(app, session, union):
    _appointment_soon(session, union)
    now = now_local()
    session.add_all(
        [
            OutboxMessage(
                job="tasks.appointment_reminders", args=[], created_at=now - dt.timedelta(minutes=5)
            ),
            OutboxMessage(job="tasks.appointment_reminders", args=[], created_at=now),  # too fresh
            OutboxMessage(job="no.such_job", args=[], created_at=now - dt.timedelta(minutes=5)),
            OutboxMessage(
                job="tasks.morning",
                args=[],
                created_at=now - dt.timedelta(days=9),
                sent_at=now - dt.timedelta(days=9),
            ),
        ]
    )
    session.commit()
    assert outbox.sweep(session) == 1
    session.commit()
    assert _reminders(session) >= 1  # the crashed-out job did its work
    left = {(m.job, m.sent_at is None) for m in session.scalars(select(OutboxMessage))}
    assert left == {
        ("tasks.appointment_reminders", False),
        ("tasks.appointment_reminders", True),  # its turn comes after the grace minute
        ("no.such_job", True),  # logged, kept for a person to look at
    }
