"""Claiming from the branch pool (抢单), RELIABILITY.md CONC-01: of many managers pressing
"claim" at the same moment exactly one wins; the others get a 409 conflict.

The concurrent test uses real threads with separate sessions released by a barrier. On
PostgreSQL they truly race (row lock + conditional UPDATE); on SQLite the writers serialise —
in both exactly one wins.
"""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker

from campaigns import pool
from campaigns.models import Assignment
from config.database import db, make_engine
from org.models import AuditLog, Staff
from org.scope import NotFound, Scope
from tasks.models import Task
from tests.conftest import USE_PG
from tests.factories import make_campaign, make_customer, make_staff
from workflow.errors import ConflictError, GuardRefused
from workflow.models import TransitionRecord

N = 60 if USE_PG else 12


def _pool_assignment(session, union, state="active"):
    customer = make_customer(session, union.b1)
    campaign = make_campaign(session, union.director_b1, [union.b1], state=state)
    a = Assignment(campaign_id=campaign.id, customer_id=customer.id, branch_id=union.b1.id, state="pool")
    session.add(a)
    session.commit()
    return campaign, a


def test_concurrent_claims_exactly_one_wins(session, union):
    campaign, a = _pool_assignment(session, union)
    managers = [make_staff(session, union.b1) for _ in range(N)]
    session.commit()
    ids = [m.id for m in managers]
    engine = make_engine(
        str(db.engine.url.render_as_string(hide_password=False)), pool_size=N + 2, max_overflow=0
    )
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    barrier = threading.Barrier(N)
    results: dict[int, str] = {}

    def attempt(staff_id: int) -> None:
        s = factory()
        try:
            scope = Scope.of(s, s.get(Staff, staff_id))
            barrier.wait(timeout=30)
            try:
                pool.claim(s, scope, a.id)
                s.commit()
                results[staff_id] = "won"
            except ConflictError as exc:
                s.rollback()
                assert "already claimed by someone else" in str(exc)
                results[staff_id] = "409"
        except Exception as exc:  # anything else is a failure of the test
            s.rollback()
            results[staff_id] = f"error: {exc!r}"
        finally:
            s.close()

    threads = [threading.Thread(target=attempt, args=(sid,)) for sid in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    engine.dispose()

    outcomes = sorted(results.values())
    assert len(outcomes) == N
    assert outcomes.count("won") == 1, outcomes
    assert outcomes.count("409") == N - 1, outcomes
    winner = next(sid for sid, r in results.items() if r == "won")
    session.expire_all()
    row = session.get(Assignment, a.id)
    assert (row.staff_id, row.state, row.version, row.reason) == (winner, "assigned", 2, "claimed from pool")
    hist = session.scalars(
        select(TransitionRecord).where(
            TransitionRecord.entity == "assignment", TransitionRecord.entity_id == a.id
        )
    ).all()
    assert [(h.trigger, h.from_state, h.to_state, h.actor_id) for h in hist] == [
        ("claim", "pool", "assigned", winner)
    ]
    assert (
        session.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.action == "claim.success"))
        == 1
    )
    tasks = session.scalars(select(Task).where(Task.assignment_id == a.id)).all()
    assert [(t.staff_id, t.state) for t in tasks] == [(winner, "open")]


def test_second_claim_gets_conflict_and_scope_is_enforced(session, union):
    campaign, a = _pool_assignment(session, union)
    claimed = pool.claim(session, Scope.of(session, union.m1), a.id)
    session.commit()
    assert claimed.staff_id == union.m1.id
    with pytest.raises(ConflictError, match="already claimed by someone else"):
        pool.claim(session, Scope.of(session, union.m2), a.id)
    session.rollback()
    # a manager of another branch cannot even see it; a guessed id is 404 as well
    _, other = _pool_assignment(session, union)
    with pytest.raises(NotFound):
        pool.claim(session, Scope.of(session, union.m3), other.id)
    with pytest.raises(NotFound):
        pool.claim(session, Scope.of(session, union.m1), 999999)


def test_claim_refused_while_campaign_paused(session, union):
    _, a = _pool_assignment(session, union, state="paused")
    with pytest.raises(GuardRefused, match="paused"):
        pool.claim(session, Scope.of(session, union.m1), a.id)
    session.rollback()
    assert session.get(Assignment, a.id).state == "pool"
    scope = Scope.of(session, union.m1)
    assert session.scalars(pool.pool_query(scope)).all() == []


def test_pool_query_lists_own_branch_only(session, union):
    _, a = _pool_assignment(session, union)
    assert [x.id for x in session.scalars(pool.pool_query(Scope.of(session, union.m1)))] == [a.id]
    assert session.scalars(pool.pool_query(Scope.of(session, union.m3))).all() == []


def test_concurrent_http_claims_through_the_web_route(app, session, union):
    """The same race through the whole stack: real requests (one test client and thread per
    manager, each request with its own scoped session), released together."""
    from tests.factories import login

    _, a = _pool_assignment(session, union)
    n = 30 if USE_PG else 8
    managers = [make_staff(session, union.b1) for _ in range(n)]
    session.commit()
    clients = []
    for m in managers:
        c = app.test_client()
        login(c, m)
        clients.append(c)
    barrier = threading.Barrier(n)
    statuses: list[int] = []

    def attempt(client) -> None:  # noqa: ANN001
        barrier.wait(timeout=30)
        r = client.post(f"/pool/{a.id}/claim", headers={"Accept": "application/json"})
        statuses.append(r.status_code)
        if r.status_code == 409:
            assert "already claimed by someone else" in r.get_json()["message"]

    threads = [threading.Thread(target=attempt, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sorted(statuses) == [303] + [409] * (n - 1), statuses
    session.expire_all()
    row = session.get(Assignment, a.id)
    assert row.version == 2 and row.staff_id in {m.id for m in managers}


def test_director_distributes_the_pool_again_key_customers_first(session, union):
    from campaigns import assignment

    union.m1.capacity = 1
    union.m2.capacity = 1
    plain = [make_customer(session, union.b1) for _ in range(3)]
    campaign = make_campaign(session, union.director_b1, [union.b1], state="active")
    session.commit()
    assignment.generate(session, campaign)
    session.commit()
    pooled = session.scalars(
        select(Assignment).where(Assignment.campaign_id == campaign.id, Assignment.state == "pool")
    ).all()
    assert len(pooled) == 1 and assignment.unassigned_alert(session, campaign) is not None
    key = make_customer(session, union.b1, is_key=True)
    session.add(Assignment(campaign_id=campaign.id, customer_id=key.id, branch_id=union.b1.id, state="pool"))
    union.m1.capacity = 2  # room for exactly one more
    session.commit()

    assert pool.distribute_pool(session, campaign, union.director_b1.id) == 1
    session.commit()
    rows = {
        a.customer_id: a
        for a in session.scalars(select(Assignment).where(Assignment.campaign_id == campaign.id))
    }
    assert (rows[key.id].staff_id, rows[key.id].state, rows[key.id].reason) == (
        union.m1.id,
        "assigned",
        "least loaded in branch (1 open)",
    )
    assert sum(1 for c in plain if rows[c.id].state == "pool") == 1
    hist = session.scalars(select(TransitionRecord).where(TransitionRecord.trigger == "assign")).all()
    assert [(h.entity_id, h.from_state, h.to_state, h.actor_id) for h in hist] == [
        (rows[key.id].id, "pool", "assigned", union.director_b1.id)
    ]
    assert session.scalars(select(Task.staff_id).where(Task.assignment_id == rows[key.id].id)).all() == [
        union.m1.id
    ]
    # everyone full again: nothing moves; the alert still names the one left
    assert pool.distribute_pool(session, campaign, None) == 0
    assert "1 assignments" in assignment.unassigned_alert(session, campaign).message
