"""My queue: sections, priority order, hidden campaigns, delegation, suggestions, do-not-contact."""

from __future__ import annotations

import datetime as dt

import pytest

from config import clock
from tasks import queue, services
from tasks.models import TaskState
from tests.factories import make_campaign, make_customer
from tests.integration.queue_helpers import make_task
from workflow.errors import GuardRefused


def test_sections_and_counts(session, union):
    today = clock.today()
    c = make_customer(session, union.b1, union.m1)
    make_task(session, union.m1, c, due=today)
    make_task(session, union.m1, c, due=today - dt.timedelta(days=2))
    make_task(session, union.m1, c, due=today + dt.timedelta(days=3))
    make_task(
        session, union.m1, c, due=today, state=TaskState.snoozed, snoozed_until=today + dt.timedelta(days=1)
    )
    make_task(session, union.m1, c, due=today, state=TaskState.done)
    make_task(session, union.m2, c, due=today)  # someone else's
    session.commit()
    assert queue.counts(session, union.m1.id) == {"overdue": 1, "today": 1, "upcoming": 1, "snoozed": 1}
    q = queue.my_queue(session, union.m1.id)
    assert [len(q[s]) for s in queue.SECTIONS] == [1, 1, 1, 1]
    assert q["overdue"][0].overdue_days == 2
    assert q["today"][0].suggestion is not None and q["today"][0].suggestion.reason


def test_priority_order_tier_then_campaign_priority_then_due(session, union):
    today = clock.today()
    mass = make_customer(session, union.b1, union.m1, tier="mass")
    vip = make_customer(session, union.b1, union.m1, tier="vip")
    high = make_customer(session, union.b1, union.m1, tier="high")
    t_mass = make_task(session, union.m1, mass, due=today + dt.timedelta(days=1))
    t_high_low = make_task(session, union.m1, high, due=today + dt.timedelta(days=1), priority=0)
    t_high_hi = make_task(session, union.m1, high, due=today + dt.timedelta(days=5), priority=9)
    t_vip = make_task(session, union.m1, vip, due=today + dt.timedelta(days=9))
    session.commit()
    ids = [i.task.id for i in queue.my_queue(session, union.m1.id)["upcoming"]]
    assert ids == [t_vip.id, t_high_hi.id, t_high_low.id, t_mass.id]


@pytest.mark.parametrize(
    "state,hidden", [("active", False), ("paused", True), ("closed", True), ("cancelled", True)]
)
def test_tasks_of_paused_closed_cancelled_campaigns_are_hidden(session, union, state, hidden):
    camp = make_campaign(session, union.director_b1, [union.b1], state=state)
    c = make_customer(session, union.b1, union.m1)
    make_task(session, union.m1, c, campaign=camp)
    session.commit()
    assert queue.counts(session, union.m1.id)["today"] == (0 if hidden else 1)


def test_delegation_to_substitute_while_away(session, union):
    c = make_customer(session, union.b1, union.m1)
    t = make_task(session, union.m1, c)
    union.m1.substitute_id = union.m2.id
    union.m1.away_until = clock.today() + dt.timedelta(days=3)
    session.commit()
    assert queue.counts(session, union.m1.id)["today"] == 0
    items = queue.my_queue(session, union.m2.id)["today"]
    assert (
        [i.task.id for i in items] == [t.id] and items[0].delegated and items[0].owner_name == union.m1.name
    )
    # the substitute may act, the owner (away) may not; the task stays the owner's
    assert services.get_task(session, union.m2.id, t.id) is t
    with pytest.raises(services.NotFound):
        services.get_task(session, union.m1.id, t.id)
    services.start(session, t, union.m2.id)
    assert t.staff_id == union.m1.id
    # back from leave: the task returns to the owner
    union.m1.away_until = clock.today() - dt.timedelta(days=1)
    session.commit()
    assert queue.counts(session, union.m1.id)["today"] == 1
    assert queue.counts(session, union.m2.id)["today"] == 0


def test_other_managers_task_is_not_found(session, union):
    t = make_task(session, union.m1, make_customer(session, union.b1, union.m1))
    session.commit()
    with pytest.raises(services.NotFound):
        services.get_task(session, union.m3.id, t.id)


def test_do_not_contact_customer_cannot_be_started(session, union):
    c = make_customer(session, union.b1, union.m1, do_not_contact=True)
    t = make_task(session, union.m1, c)
    session.commit()
    with pytest.raises(GuardRefused, match="do-not-contact"):
        services.start(session, t, union.m1.id)
    session.rollback()
    assert session.get(type(t), t.id).state == "open"


def test_contact_window_is_enforced(session, union, monkeypatch):
    c = make_customer(session, union.b1, union.m1, contact_window="18:00-21:00")
    t = make_task(session, union.m1, c)
    session.commit()
    day = clock.today()
    monkeypatch.setattr(clock, "now", lambda: dt.datetime.combine(day, dt.time(9, 30)))
    with pytest.raises(GuardRefused, match="contact window 18:00-21:00"):
        services.start(session, t, union.m1.id)
    session.rollback()
    monkeypatch.setattr(clock, "now", lambda: dt.datetime.combine(day, dt.time(19, 0)))
    services.start(session, session.get(type(t), t.id), union.m1.id)
    assert t.state == "in_progress"


def test_snooze_into_the_past_is_refused_and_wake_reopens(session, union):
    t = make_task(session, union.m1, make_customer(session, union.b1, union.m1))
    session.commit()
    with pytest.raises(services.InputError, match="not in the future"):
        services.snooze(session, t, union.m1.id, clock.today())
    assert t.state == "open"
    services.snooze(session, t, union.m1.id, clock.today() + dt.timedelta(days=2))
    session.commit()
    assert t.state == "snoozed" and t.snoozed_until == clock.today() + dt.timedelta(days=2)
    from tasks.jobs import wake_snoozed

    assert wake_snoozed(session, clock.today() + dt.timedelta(days=2)) == 1
    session.commit()
    session.expire_all()
    assert t.state == "open" and t.snoozed_until is None


def test_failure_report_per_campaign_and_branch(session, union):
    camp = make_campaign(session, union.director_b1, [union.b1], state="active")
    c = make_customer(session, union.b1, union.m1)
    for reason in ("moved away", "moved away", "rival bank"):
        services.fail(session, make_task(session, union.m1, c, campaign=camp), union.m1.id, reason)
    with pytest.raises(services.InputError):
        services.fail(session, make_task(session, union.m1, c, campaign=camp), union.m1.id, "  ")
    session.commit()
    rows = queue.failure_report(session)
    assert rows[0] == {
        "campaign_code": camp.code,
        "campaign_name": camp.name,
        "branch_code": "B01",
        "reason": "moved away",
        "count": 2,
    }
    assert queue.failure_report(session, frozenset({union.b2.id})) == []


def test_concurrent_completions_of_different_tasks_all_succeed(session, union):
    """Four phones complete different tasks at once: with SQLite's single writer a request may be
    refused as busy; the unit of work is run again (tasks.retry), so none is lost."""
    import threading

    from config.database import db
    from tasks.models import Task
    from tasks.retry import retry_busy

    c = make_customer(session, union.b1, union.m1)
    ids = [make_task(session, union.m1, c, kind="activation").id for _ in range(24)]
    session.commit()
    errors: list[BaseException] = []

    def phone(chunk: list[int]) -> None:
        s = db.factory()
        try:
            for tid in chunk:

                def work(tid: int = tid) -> None:
                    services.complete(s, s.get(Task, tid), union.m1.id, None)
                    s.commit()

                retry_busy(s, work, attempts=20)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            s.close()

    threads = [threading.Thread(target=phone, args=(ids[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    session.expire_all()
    assert {session.get(Task, i).state for i in ids} == {"done"}


def test_retry_busy_never_retries_a_real_conflict(session):
    from sqlalchemy.exc import OperationalError
    from sqlalchemy.orm.exc import StaleDataError

    from tasks.retry import retry_busy
    from workflow.errors import ConflictError

    calls = []

    def busy_once() -> str:
        calls.append(1)
        if len(calls) == 1:
            raise ConflictError("task", 1) from OperationalError(
                "UPDATE", {}, Exception("database is locked")
            )
        return "done"

    assert retry_busy(session, busy_once) == "done" and len(calls) == 2

    def stale() -> None:
        calls.append(1)
        raise ConflictError("task", 1) from StaleDataError("0 rows")

    calls.clear()
    with pytest.raises(ConflictError):
        retry_busy(session, stale)
    assert len(calls) == 1
