"""Handover (移交): ownership and open tasks move; state, history and reason are kept (JOURNEYS 7)."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import func, select

from campaigns import assignment
from campaigns.handover import bulk_handover_departing, handover
from campaigns.models import Assignment
from tasks.models import Task
from tests.factories import make_campaign, make_customer, make_staff
from workflow.errors import GuardRefused, ReasonRequired
from workflow.models import TransitionRecord


def _launched(session, union, n, manager):
    nos = [make_customer(session, union.b1, manager).customer_no for _ in range(n)]
    campaign = make_campaign(
        session, union.director_b1, [union.b1], population={"customers": {"customer_nos": nos}}
    )
    session.commit()
    assignment.generate(session, campaign)
    session.commit()
    return campaign, list(
        session.scalars(
            select(Assignment).where(Assignment.campaign_id == campaign.id).order_by(Assignment.id)
        )
    )


def test_handover_keeps_state_and_history_and_moves_open_tasks(session, union):
    campaign, rows = _launched(session, union, 3, union.m1)
    first = rows[0]
    first.state = "contacted"  # as if a contact was recorded
    session.commit()
    moved = handover(
        session, [r.id for r in rows[:2]], union.m2.id, "moves to the county branch", union.director_b1.id
    )
    session.commit()
    assert moved == 2
    session.expire_all()
    a0, a1, a2 = (session.get(Assignment, r.id) for r in rows)
    assert (a0.staff_id, a0.state, a0.reason) == (
        union.m2.id,
        "contacted",
        "handed over: moves to the county branch",
    )
    assert (a1.staff_id, a1.state) == (union.m2.id, "assigned")
    assert a2.staff_id == union.m1.id
    tasks = {
        t.assignment_id: t.staff_id
        for t in session.scalars(select(Task).where(Task.campaign_id == campaign.id))
    }
    assert tasks == {a0.id: union.m2.id, a1.id: union.m2.id, a2.id: union.m1.id}
    h = session.scalars(
        select(TransitionRecord).where(
            TransitionRecord.entity == "assignment", TransitionRecord.entity_id == a0.id
        )
    ).one()
    assert (h.trigger, h.from_state, h.to_state, h.actor_id, h.reason) == (
        "handover",
        "contacted",
        "contacted",
        union.director_b1.id,
        "moves to the county branch",
    )
    assert h.payload == {"from_staff_id": union.m1.id, "to_staff_id": union.m2.id}


def test_handover_needs_reason_and_an_active_receiver(session, union):
    _, rows = _launched(session, union, 1, union.m1)
    with pytest.raises(ReasonRequired):
        handover(session, [rows[0].id], union.m2.id, "  ", union.director_b1.id)
    union.m2.status = "on_leave"
    session.commit()
    with pytest.raises(GuardRefused, match="on_leave"):
        handover(session, [rows[0].id], union.m2.id, "leave", union.director_b1.id)
    session.rollback()
    assert session.get(Assignment, rows[0].id).staff_id == union.m1.id
    assert (
        session.scalar(
            select(func.count()).select_from(TransitionRecord).where(TransitionRecord.trigger == "handover")
        )
        == 0
    )


def test_finished_assignments_stay_with_their_owner(session, union):
    _, rows = _launched(session, union, 2, union.m1)
    rows[0].state = "converted"
    session.commit()
    assert handover(session, [r.id for r in rows], union.m2.id, "reorganisation", None) == 1
    session.commit()
    assert session.get(Assignment, rows[0].id).staff_id == union.m1.id


def test_bulk_handover_of_a_leaving_manager_spreads_by_load(session, union):
    leaver = make_staff(session, union.b1, staff_no="M0199", name="赵丽")
    # m2 already carries 4 open assignments elsewhere; m1 none
    _launched(session, union, 4, union.m2)
    campaign, rows = _launched(session, union, 10, leaver)
    assert {r.staff_id for r in rows} == {leaver.id}
    given = bulk_handover_departing(
        session, leaver, [union.m1.id, union.m2.id], "moves to another branch", union.director_b1.id
    )
    session.commit()
    # water-filling: m1 first catches up to 4, then 3 each → m1 7, m2 3
    assert given == {union.m1.id: 7, union.m2.id: 3}
    session.expire_all()
    owners = Counter(
        a.staff_id for a in session.scalars(select(Assignment).where(Assignment.campaign_id == campaign.id))
    )
    assert owners == {union.m1.id: 7, union.m2.id: 3}
    reasons = {
        a.reason for a in session.scalars(select(Assignment).where(Assignment.campaign_id == campaign.id))
    }
    assert reasons == {"handed over: moves to another branch"}
    open_tasks = session.scalar(
        select(func.count())
        .select_from(Task)
        .where(Task.campaign_id == campaign.id, Task.staff_id == leaver.id)
    )
    assert open_tasks == 0
    hist = session.scalar(
        select(func.count())
        .select_from(TransitionRecord)
        .where(TransitionRecord.trigger == "handover", TransitionRecord.entity == "assignment")
    )
    assert hist == 10
    # nothing left to hand over: a second run moves nothing
    assert bulk_handover_departing(session, leaver, [union.m1.id], "again", None) == {union.m1.id: 0}


def test_bulk_handover_refuses_without_colleagues(session, union):
    with pytest.raises(GuardRefused, match="at least one colleague"):
        bulk_handover_departing(session, union.m1, [union.m1.id], "leaving", None)
    with pytest.raises(ReasonRequired):
        bulk_handover_departing(session, union.m1, [union.m2.id], "", None)


def test_leaving_manager_hands_over_the_customers_themselves(session, union):
    """Journey 7: the relationship (管户) moves too, so future alerts reach the new owner."""
    from customers.models import Customer
    from org.models import AuditLog

    leaver = make_staff(session, union.b1, staff_no="M0198", name="赵丽")
    campaign, rows = _launched(session, union, 4, leaver)  # 4 customers with assignments
    idle = [make_customer(session, union.b1, leaver).id for _ in range(5)]  # 5 in no campaign
    session.commit()
    bulk_handover_departing(session, leaver, [union.m1.id, union.m2.id], "调往县联社", union.director_b1.id)
    session.commit()
    session.expire_all()
    managers = {
        c.id: c.manager_id for c in session.scalars(select(Customer).where(Customer.branch_id == union.b1.id))
    }
    assert leaver.id not in managers.values()
    # each customer with an assignment follows it to its new owner
    for a in session.scalars(select(Assignment).where(Assignment.campaign_id == campaign.id)):
        assert managers[a.customer_id] == a.staff_id
    # the others are spread evenly over the two colleagues
    spread = Counter(managers[cid] for cid in idle)
    assert sorted(spread.values()) == [2, 3]
    entry = session.scalar(select(AuditLog).where(AuditLog.action == "customers.handover"))
    assert entry is not None and entry.reason == "调往县联社"
    assert sum(entry.detail["moved"].values()) == 9
