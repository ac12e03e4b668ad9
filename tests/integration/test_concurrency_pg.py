"""CONC-01/02 for the workflow engine: real concurrent sessions firing on one row.

Twenty threads, each with its own session from ``db.factory()``, load the same active campaign,
wait at a barrier and fire 'pause' together. Exactly one commits; every other one gets a
ConflictError (it loaded the row before the winner committed) or InvalidTransition; exactly one
history row is written and the version goes up exactly once.

Runs on PostgreSQL in the CI's second pass (``CAMPAIGNFLOW_DATABASE_URL``), where the sessions
truly race on row locks, and on SQLite, where the database lock serialises the writers and a
stale snapshot cannot write.
"""

from __future__ import annotations

import threading
from collections import Counter

from sqlalchemy import func, select

from campaigns.models import Campaign
from config.database import db, make_engine
from tests.factories import make_campaign
from workflow.engine import fire
from workflow.errors import ConflictError, InvalidTransition
from workflow.models import TransitionRecord

THREADS = 20


def race(
    database_url: str, campaign_id: int, trigger: str, actor_ids: list[int]
) -> tuple[Counter[str], list[str]]:
    """Fire ``trigger`` from THREADS sessions released together; outcome counts and loaded states."""
    # one connection per thread, so no thread waits for the pool instead of racing
    engine = make_engine(database_url, pool_size=THREADS + 2, max_overflow=0)
    barrier = threading.Barrier(THREADS, timeout=60)
    outcomes: Counter[str] = Counter()
    seen: list[str] = []
    lock = threading.Lock()

    def worker(i: int) -> None:
        session = db.factory(bind=engine)
        try:
            campaign = session.get(Campaign, campaign_id)
            assert campaign is not None
            with lock:
                seen.append(campaign.state)
            barrier.wait()
            try:
                fire(session, campaign, trigger, actor_id=actor_ids[i % len(actor_ids)], reason=f"thread {i}")
                session.commit()
                result = "ok"
            except ConflictError:
                session.rollback()
                result = "conflict"
            except InvalidTransition:
                session.rollback()
                result = "invalid"
            except Exception as exc:  # noqa: BLE001 - any other outcome fails the test below
                session.rollback()
                result = f"error: {type(exc).__name__}: {exc}"
            with lock:
                outcomes[result] += 1
        finally:
            session.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    engine.dispose()
    assert not any(t.is_alive() for t in threads), "a thread hung"
    return outcomes, seen


def test_twenty_sessions_pause_one_campaign(session, union, database_url):
    c = make_campaign(session, union.director, [union.b1], state="active")
    session.commit()
    actors = [union.director.id, union.director_b1.id]

    outcomes, seen = race(database_url, c.id, "pause", actors)

    assert seen == ["active"] * THREADS  # every thread raced from the same version
    assert outcomes["ok"] == 1, outcomes
    assert outcomes["conflict"] + outcomes["invalid"] == THREADS - 1, outcomes
    assert outcomes["conflict"] == THREADS - 1, outcomes  # all loaded 'active': stale, not invalid
    session.rollback()
    session.expire_all()
    stored = session.get(Campaign, c.id)
    assert stored.state == "paused" and stored.version == 2
    rows = list(session.scalars(select(TransitionRecord).where(TransitionRecord.entity_id == c.id)))
    assert len(rows) == 1
    assert (rows[0].from_state, rows[0].to_state, rows[0].trigger) == ("active", "paused", "pause")
    assert stored.state_reason == rows[0].reason  # the winner's reason, nobody else's


def test_repeated_races_lose_nothing(session, union, database_url):
    c = make_campaign(session, union.director, [union.b1], state="active")
    session.commit()
    triggers = ["pause", "resume", "pause", "resume", "close"]
    for n, trigger in enumerate(triggers, start=1):
        outcomes, _seen = race(database_url, c.id, trigger, [union.director.id])
        assert outcomes["ok"] == 1 and outcomes["conflict"] + outcomes["invalid"] == THREADS - 1, (
            trigger,
            outcomes,
        )
        session.rollback()  # end this session's read snapshot (SQLite WAL) before looking again
        session.expire_all()
        assert session.get(Campaign, c.id).version == 1 + n
    session.rollback()
    session.expire_all()
    history = list(
        session.scalars(
            select(TransitionRecord.trigger)
            .where(TransitionRecord.entity_id == c.id)
            .order_by(TransitionRecord.id)
        )
    )
    assert history == triggers
    assert session.scalar(select(func.count(TransitionRecord.id))) == len(triggers)
    assert session.get(Campaign, c.id).state == "closed"
