"""The queue's card statement against a plain reference built from ORM objects in Python.

``tasks.queue.my_queue`` runs one statement (customers looked up once per page, card columns
only, owners computed in SQL; on PostgreSQL the customers by an array of ids): every section, its
order, truncation, delegation, customers, suggestions and plans must equal the obvious
computation, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import random

import pytest
from sqlalchemy import event, select

from campaigns.models import Assignment, Campaign
from config import clock
from customers.contact import suggest_contact
from customers.models import Customer
from org.models import Staff, StaffStatus
from tasks import queue
from tasks.models import Task, TaskState
from tests.factories import make_campaign, make_customer
from tests.integration.queue_helpers import make_assignment, make_task

TIER_RANK = {"vip": 0, "high": 1, "mass": 2}


def _reference(session, staff_id: int, today: dt.date, limit: int) -> dict[str, list[tuple]]:
    """The queue computed the obvious way: every task of every owner, filtered and sorted in Python."""
    staff = {s.id: s for s in session.scalars(select(Staff))}

    def away(s: Staff) -> bool:
        return s.substitute_id is not None and (
            s.status == StaffStatus.on_leave or (s.away_until is not None and s.away_until >= today)
        )

    owners = {
        s.id
        for s in staff.values()
        if (s.id == staff_id and not away(s)) or (s.substitute_id == staff_id and away(s))
    }
    assert set(queue.owners_for(session, staff_id, today)) == owners
    hidden = {c.id for c in session.scalars(select(Campaign)) if c.state in queue.HIDDEN_CAMPAIGN_STATES}
    out: dict[str, list[tuple]] = {s: [] for s in queue.SECTIONS}
    for t in session.scalars(select(Task)):
        if t.staff_id not in owners or (t.campaign_id is not None and t.campaign_id in hidden):
            continue
        if t.state == TaskState.snoozed:
            section = "snoozed"
        elif t.state in queue.ACTIVE:
            section = "overdue" if t.due_on < today else "today" if t.due_on == today else "upcoming"
        else:
            continue
        out[section].append(t)
    result = {}
    for section, tasks in out.items():
        c_of = {t.id: session.get(Customer, t.customer_id) if t.customer_id else None for t in tasks}
        tasks.sort(
            key=lambda t: (
                TIER_RANK.get(c_of[t.id].tier, 3) if c_of[t.id] else 3,
                -t.priority,
                t.due_on,
                t.id,
            )
        )
        result[section] = [
            (
                t.id,
                t.state,
                t.due_on,
                t.version,
                t.staff_id != staff_id,
                staff[t.staff_id].name,
                max(0, (today - t.due_on).days) if section == "overdue" else 0,
                (c_of[t.id].id, c_of[t.id].name, c_of[t.id].tier) if c_of[t.id] else None,
                suggest_contact(c_of[t.id], on=today) if c_of[t.id] else None,
                session.get(Assignment, t.assignment_id).plan if t.assignment_id else None,
            )
            for t in tasks[:limit]
        ]
    return result


def _seen(items: dict[str, list[queue.QueueItem]]) -> dict[str, list[tuple]]:
    return {
        section: [
            (
                i.task.id,
                i.task.state,
                i.task.due_on,
                i.task.version,
                i.delegated,
                i.owner_name,
                i.overdue_days,
                (i.customer.id, i.customer.name, i.customer.tier) if i.customer else None,
                i.suggestion,
                i.plan,
            )
            for i in found
        ]
        for section, found in items.items()
    }


@pytest.fixture
def busy_queues(session, union):
    """Tasks of three managers in every state, section, tier; one campaign paused; m1 away (m2 covers)."""
    rng = random.Random(20261130)
    today = clock.today()
    active = make_campaign(session, union.director_b1, [union.b1, union.b2], state="active")
    paused = make_campaign(session, union.director_b1, [union.b1, union.b2], state="paused")
    customers = [
        make_customer(
            session,
            union.b1,
            union.m1,
            tier=rng.choice(["vip", "high", "mass", None]),
            do_not_contact=(n % 7 == 0),
            occupation=rng.choice([None, "农民", "公务员", "个体户"]),
            tags=rng.choice([[], ["farmer"]]),
            preferred_channel=rng.choice([None, "wechat"]),
        )
        for n in range(12)
    ]
    assignments: dict[tuple[int, int], object] = {}
    states = [TaskState.open, TaskState.open, TaskState.in_progress, TaskState.snoozed, TaskState.done]
    for manager in (union.m1, union.m2, union.m3):
        for _ in range(40):
            customer = rng.choice([*customers, None])
            campaign = rng.choice([None, active, active, paused])
            state = rng.choice(states)
            assignment = None
            if campaign is not None and customer is not None and rng.random() < 0.3:
                key = (campaign.id, customer.id)  # one assignment per campaign and customer
                if key not in assignments:
                    assignments[key] = make_assignment(
                        session, campaign, customer, manager, plan={"goal": f"goal {rng.randint(1, 99)}"}
                    )
                assignment = assignments[key]
            make_task(
                session,
                manager,
                customer,
                campaign=campaign,
                assignment=assignment,
                due=today + dt.timedelta(days=rng.randint(-4, 4)),
                priority=rng.randint(0, 3),
                state=state,
                snoozed_until=today + dt.timedelta(days=2) if state == TaskState.snoozed else None,
            )
    union.m1.substitute_id = union.m2.id
    union.m1.away_until = today + dt.timedelta(days=2)
    session.commit()
    return union


@pytest.mark.parametrize("limit", [1, 3, 50])
@pytest.mark.parametrize("who", ["m1", "m2", "m3"])
def test_my_queue_equals_the_plain_computation(session, busy_queues, who, limit):
    today = clock.today()
    sid = getattr(busy_queues, who).id
    expected = _reference(session, sid, today, limit)
    session.expunge_all()
    assert _seen(queue.my_queue(session, sid, today, limit=limit)) == expected
    if who == "m2" and limit == 50:  # m2 also works the absent m1's tasks
        assert any(item[4] for items in expected.values() for item in items)


@pytest.mark.parametrize("section", queue.SECTIONS)
def test_one_section_statement_equals_that_section_of_the_queue(session, busy_queues, section):
    today = clock.today()
    sid = busy_queues.m2.id
    dialect = session.get_bind().dialect.name
    rows = session.execute(queue.section_select(sid, section, today, 3, dialect))
    alone = queue.cards(rows, sid, today)
    assert _seen(alone)[section] == _seen(queue.my_queue(session, sid, today, limit=3))[section]
    assert all(not items for name, items in alone.items() if name != section)
    with pytest.raises(ValueError, match="unknown queue section"):
        queue.section_select(sid, "later", today)


def test_counts_with_and_without_a_list_of_owners(session, busy_queues):
    today = clock.today()
    for manager in (busy_queues.m1, busy_queues.m2, busy_queues.m3):
        expected = {s: len(items) for s, items in _reference(session, manager.id, today, 10_000).items()}
        assert queue.counts(session, manager.id, today) == expected
        owners = queue.owners_for(session, manager.id, today)
        assert queue.counts(session, manager.id, today, owners=owners) == expected


def test_one_statement_per_queue_and_one_card_per_customer(session, busy_queues):
    today = clock.today()
    statements: list[str] = []
    engine = session.get_bind()

    def count(*args):  # noqa: ANN002
        statements.append(args[2])

    event.listen(engine, "before_cursor_execute", count)
    try:
        items = queue.my_queue(session, busy_queues.m2.id, today)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    queries = [s for s in statements if s.lstrip().upper().startswith(("SELECT", "WITH"))]  # not BEGIN
    assert len(queries) == 1
    cards = [i for section in items.values() for i in section if i.customer is not None]
    by_customer: dict[int, set[int]] = {}
    for i in cards:
        by_customer.setdefault(i.customer.id, set()).add(id(i.customer))
        assert i.suggestion is not None
    assert by_customer and all(len(objects) == 1 for objects in by_customer.values())
    assert any(not i.suggestion.allowed for i in cards)  # do-not-contact customers are flagged


def test_suggestion_can_be_left_out(session, busy_queues):
    items = queue.my_queue(session, busy_queues.m3.id, clock.today(), suggest=False)
    assert all(i.suggestion is None for section in items.values() for i in section)
    assert any(i.customer is not None for section in items.values() for i in section)
