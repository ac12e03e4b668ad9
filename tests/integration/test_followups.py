"""Follow-ups: completing records them, moves the assignment, makes the next task once; prospects,
referrals, appointments with the director for key customers, the trail after a handover."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from campaigns.models import Assignment
from config import clock
from customers.models import Customer
from tasks import jobs, services
from tasks.models import Appointment, FollowUp, Notification, Task
from tests.factories import make_campaign, make_customer
from tests.integration.queue_helpers import make_assignment, make_task
from workflow.errors import InvalidTransition


def _fu(**kw):
    base = {"channel": "phone", "content": "talked about the 1-year time deposit", "reaction": "interested"}
    return services.FollowUpInput(**{**base, **kw})


@pytest.fixture
def setup(session, union):
    camp = make_campaign(session, union.director_b1, [union.b1], state="active")
    cust = make_customer(session, union.b1, union.m1)
    a = make_assignment(session, camp, cust, union.m1)
    t = make_task(session, union.m1, cust, campaign=camp, assignment=a)
    session.commit()
    return camp, cust, a, t


def test_complete_records_follow_up_moves_assignment_and_creates_next_task_once(session, union, setup):
    camp, cust, a, t = setup
    nxt_day = clock.today() + dt.timedelta(days=4)
    fu = services.complete(session, t, union.m1.id, _fu(next_step="branch visit Friday", next_due=nxt_day))
    session.commit()
    assert t.state == "done" and fu.task_id == t.id and fu.customer_id == cust.id
    assert session.get(Assignment, a.id).state == "interested"
    nxt = session.scalar(select(Task).where(Task.source_key == f"fu:{t.id}"))
    assert nxt.source == "follow_up" and nxt.due_on == nxt_day and nxt.staff_id == union.m1.id
    # a re-run never duplicates the next task
    assert services.create_next_task(session, t, fu).id == nxt.id
    assert session.scalar(select(func.count()).select_from(Task).where(Task.source == "follow_up")) == 1


def test_completing_twice_is_refused_and_changes_nothing(session, union, setup):
    _, _, _, t = setup
    services.complete(session, t, union.m1.id, _fu())
    session.commit()
    with pytest.raises(InvalidTransition, match="it is done"):
        services.complete(session, t, union.m1.id, _fu())
    assert session.scalar(select(func.count()).select_from(FollowUp)) == 1


@pytest.mark.parametrize("content", ["", "   "])
def test_follow_up_without_content_is_refused(session, union, setup, content):
    _, _, a, t = setup
    with pytest.raises(services.InputError, match="content"):
        services.complete(session, t, union.m1.id, _fu(content=content))
    with pytest.raises(services.InputError, match="follow-up record"):
        services.complete(session, t, union.m1.id, None)
    assert t.state == "open" and session.scalar(select(func.count()).select_from(FollowUp)) == 0


@pytest.mark.parametrize(
    "reaction,state", [("neutral", "contacted"), ("declined", "declined"), ("unreachable", "unreachable")]
)
def test_reactions_move_the_assignment(session, union, setup, reaction, state):
    _, _, a, t = setup
    services.complete(session, t, union.m1.id, _fu(reaction=reaction))
    assert session.get(Assignment, a.id).state == state


def test_canvassing_prospect_and_referral_enter_the_customer_base(session, union, setup):
    _, cust, _, t = setup
    services.complete(
        session,
        t,
        union.m1.id,
        _fu(prospect={"name": "王小店", "phone": "13800138000", "grid": "G03"}, referral={"name": "李表弟"}),
    )
    session.commit()
    prospect = session.scalar(select(Customer).where(Customer.name == "王小店"))
    assert (
        prospect.lifecycle == "prospect"
        and prospect.referred_by_staff_id == union.m1.id
        and prospect.grid == "G03"
    )
    referral = session.scalar(select(Customer).where(Customer.name == "李表弟"))
    assert referral.referred_by_customer_id == cust.id and referral.manager_id == union.m1.id
    with pytest.raises(services.InputError, match="phone"):
        services.register_prospect(session, union.m1.id, {"name": "x", "phone": "12345"})


def test_key_customer_appointment_brings_the_director_and_notifies_both(session, union):
    key = make_customer(session, union.b1, union.m1, is_key=True)
    t = make_task(session, union.m1, key)
    session.commit()
    at = dt.datetime.combine(clock.today() + dt.timedelta(days=1), dt.time(10, 0))
    services.complete(session, t, union.m1.id, _fu(next_step="branch visit", book_appointment_at=at))
    session.commit()
    appt = session.scalar(select(Appointment))
    assert appt.accompanied_by_id == union.director_b1.id and appt.at == at
    assert session.scalar(select(Task).where(Task.source_key == f"appt:{appt.id}")).due_on == at.date()
    who = {
        n.staff_id for n in session.scalars(select(Notification).where(Notification.kind == "appointment"))
    }
    assert who == {union.m1.id, union.director_b1.id}
    # reminders, once
    now = at - dt.timedelta(hours=3)
    assert jobs.appointment_reminders(session, now) == 1
    assert jobs.appointment_reminders(session, now) == 0
    assert (
        session.scalar(
            select(func.count())
            .select_from(Notification)
            .where(Notification.key == f"appt:{appt.id}:reminder")
        )
        == 2
    )
    # completing the appointment's task marks the visit done
    appt_task = session.scalar(select(Task).where(Task.source_key == f"appt:{appt.id}"))
    services.complete(
        session, appt_task, union.m1.id, _fu(channel="branch", content="opened the time deposit")
    )
    assert appt.state == "done"
    # an ordinary customer: no director
    plain = make_customer(session, union.b1, union.m1)
    a2 = services.book_appointment(session, union.m1.id, plain, at, "open a card")
    assert a2.accompanied_by_id is None
    with pytest.raises(services.InputError, match="past"):
        services.book_appointment(session, union.m1.id, plain, at - dt.timedelta(days=3), "late")


def test_new_owner_sees_the_whole_trail_after_handover(session, union, setup):
    _, cust, a, t = setup
    services.complete(
        session, t, union.m1.id, _fu(reaction="neutral", failure_reason="wants cash for new year")
    )
    a.staff_id = union.m2.id  # handover
    t2 = make_task(session, union.m2, cust, assignment=a)
    session.commit()
    services.complete(session, t2, union.m2.id, _fu(content="second call"))
    trail = services.trail(session, cust.id)
    assert [f.staff_id for f in trail] == [union.m2.id, union.m1.id]
    assert trail[1].failure_reason == "wants cash for new year"


def test_due_soon_and_overdue_notifications_are_idempotent(session, union):
    c = make_customer(session, union.b1, union.m1)
    make_task(session, union.m1, c, due=clock.today() + dt.timedelta(days=1))
    make_task(session, union.m2, c, due=clock.today() - dt.timedelta(days=1))
    session.commit()
    assert jobs.due_soon_reminders(session) == 1
    jobs.due_soon_reminders(session)
    assert jobs.overdue_escalation(session) == 1
    jobs.overdue_escalation(session)
    kinds = sorted((n.staff_id, n.kind) for n in session.scalars(select(Notification)))
    assert kinds == sorted([(union.m1.id, "due_soon"), (union.director_b1.id, "overdue")])


def test_plan_is_kept_on_the_assignment(session, union, setup):
    _, _, a, _ = setup
    services.set_plan(
        session,
        a,
        "move remittance into a 1-year time deposit",
        [{"reaction": "wants cash for the new year", "response": "the 6-month product"}],
    )
    assert a.plan["seed"] == "对客户可能做出的反应进行初步评估并且制定应对方案"
    with pytest.raises(services.InputError, match="goal"):
        services.set_plan(session, a, " ", [])


def test_two_devices_completing_one_task_exactly_one_wins(session, union, setup):
    """CONC-01: the same task completed from two phones at once: one succeeds, the other gets a
    conflict; one follow-up, one history row per transition."""
    from config.database import db
    from workflow.errors import ConflictError
    from workflow.models import TransitionRecord

    _, _, _, t = setup
    a, b = db.factory(), db.factory()
    try:
        ta, tb = a.get(Task, t.id), b.get(Task, t.id)  # both phones loaded version 1
        services.complete(a, ta, union.m1.id, _fu(content="from phone A"))
        a.commit()
        with pytest.raises((ConflictError, InvalidTransition)):
            services.complete(b, tb, union.m1.id, _fu(content="from phone B"))
        b.rollback()
    finally:
        a.close()
        b.close()
    session.expire_all()
    assert [f.content for f in session.scalars(select(FollowUp))] == ["from phone A"]
    triggers = [
        r.trigger for r in session.scalars(select(TransitionRecord).where(TransitionRecord.entity == "task"))
    ]
    assert triggers == ["start", "complete"]


def test_next_step_and_branch_visit_on_the_same_day_make_one_task(session, union, setup):
    """Journey 2: "branch visit Friday" booked as an appointment gives one task for Friday, not two."""
    camp, cust, a, t = setup
    friday = clock.today() + dt.timedelta(days=3)
    at = dt.datetime.combine(friday, dt.time(10, 0))
    services.complete(
        session, t, union.m1.id, _fu(next_step="branch visit Friday", next_due=friday, book_appointment_at=at)
    )
    session.commit()
    on_friday = session.scalars(select(Task).where(Task.staff_id == union.m1.id, Task.due_on == friday)).all()
    assert [x.source for x in on_friday] == ["appointment"]
    # a visit on another day keeps the follow-up task of the next step
    t2 = make_task(session, union.m1, cust, campaign=camp, assignment=a)
    session.commit()
    later = friday + dt.timedelta(days=7)
    services.complete(
        session,
        t2,
        union.m1.id,
        _fu(
            next_step="call back", next_due=friday, book_appointment_at=dt.datetime.combine(later, dt.time(9))
        ),
    )
    session.commit()
    assert session.scalar(select(Task).where(Task.source_key == f"fu:{t2.id}")).due_on == friday


def _booked(session, union, *, key=False, hours=26):
    cust = make_customer(session, union.b1, union.m1, is_key=key)
    session.commit()
    at = (clock.now() + dt.timedelta(hours=hours)).replace(second=0, microsecond=0)
    appt = services.book_appointment(session, union.m1.id, cust, at, "open a time deposit")
    session.commit()
    return appt, session.scalar(select(Task).where(Task.source_key == f"appt:{appt.id}"))


def test_cancelling_an_appointment_needs_a_reason_closes_its_task_and_tells_the_director(session, union):
    from workflow.errors import ReasonRequired

    appt, visit = _booked(session, union, key=True)
    with pytest.raises(ReasonRequired):
        services.cancel_appointment(session, union.m1.id, appt.id, "  ")
    session.rollback()
    assert appt.state == "booked" and visit.state == "open"
    services.cancel_appointment(session, union.m1.id, appt.id, "customer is travelling")
    session.commit()
    assert appt.state == "cancelled" and visit.state == "cancelled"
    told = session.scalar(select(Notification).where(Notification.key == f"appt:{appt.id}:cancel"))
    assert told.staff_id == union.director_b1.id and "customer is travelling" in told.text
    # nothing more can happen to it, and the message says what it is and what is allowed
    with pytest.raises(InvalidTransition, match="cancelled"):
        services.miss_appointment(session, union.m1.id, appt.id)
    # no reminder for a cancelled visit
    assert jobs.appointment_reminders(session, appt.at - dt.timedelta(hours=2)) == 0


def test_no_show_only_after_the_time_and_it_brings_a_call_to_rebook(session, union, monkeypatch):
    from workflow.errors import GuardRefused

    appt, visit = _booked(session, union)
    with pytest.raises(GuardRefused, match="only after"):
        services.miss_appointment(session, union.m1.id, appt.id)
    session.rollback()
    later = appt.at + dt.timedelta(hours=1)
    monkeypatch.setattr(clock, "now", lambda: later)
    services.miss_appointment(session, union.m1.id, appt.id, "did not answer the phone either")
    session.commit()
    assert appt.state == "no_show" and visit.state == "cancelled"
    rebook = session.scalar(select(Task).where(Task.source_key == f"appt:{appt.id}:rebook"))
    assert rebook.staff_id == union.m1.id and rebook.customer_id == appt.customer_id
    assert rebook.state == "open" and rebook.due_on == later.date() + dt.timedelta(days=1)
    assert rebook.kind == "follow_up" and "rebook" in rebook.title


def test_only_the_booking_manager_may_cancel_or_mark_missed(session, union):
    from org.scope import NotFound

    appt, _ = _booked(session, union)
    for who in (union.m2.id, union.director_b1.id):
        with pytest.raises(NotFound):
            services.cancel_appointment(session, who, appt.id, "not mine")
    with pytest.raises(NotFound):
        services.cancel_appointment(session, union.m1.id, appt.id + 999, "no such")
    assert appt.state == "booked"
