"""``Workflow.fire``'s direct write (Core statements instead of a flush) against a real database,
checked against the general path (one ORM flush, ``Workflow.fast_path = False``): the same row,
the same history, the same errors, the same object state afterwards.

On PostgreSQL the direct write is one statement (``WITH moved AS (UPDATE … RETURNING id) INSERT …
SELECT … FROM moved``); on SQLite two (the versioned UPDATE, then the history INSERT)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event, func, inspect, select, text

from campaigns.models import Campaign, Target
from config.database import db
from tests.factories import make_campaign
from workflow.engine import FireContext, Transition, Workflow, fire, history
from workflow.errors import ConflictError, GuardRefused, InvalidTransition
from workflow.models import TransitionRecord


@contextmanager
def statements(session) -> Iterator[list[str]]:  # noqa: ANN001
    """The SQL statements the session's engine executes inside the block."""
    seen: list[str] = []
    engine = session.get_bind()

    def record(conn, cursor, stmt, params, context, executemany) -> None:  # noqa: ANN001
        seen.append(stmt.split(None, 1)[0].upper())

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


@pytest.fixture
def general_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Workflow, "fast_path", False)


def stored_history(session, entity_id: int) -> list[dict[str, Any]]:  # noqa: ANN001
    """History rows as stored (``payload IS NULL`` tells SQL NULL from a JSON null)."""
    rows = session.execute(
        text(
            "SELECT entity, from_state, to_state, trigger, actor_id, reason, payload IS NULL AS no_payload, "
            "at FROM transition_record WHERE entity_id = :id ORDER BY id"
        ),
        {"id": entity_id},
    ).mappings()
    return [dict(r) for r in rows]


def fire_pause(session, union, *, payload: dict[str, Any] | None = None) -> tuple[Campaign, TransitionRecord]:  # noqa: ANN001
    c = make_campaign(session, union.director, [union.b1], state="active")
    session.commit()
    record = fire(session, c, "pause", actor_id=union.director.id, reason="春节", payload=payload)
    return c, record


@pytest.mark.parametrize("payload", [None, {"note": "x"}])
def test_direct_write_matches_the_flush(session, union, monkeypatch: pytest.MonkeyPatch, payload) -> None:  # noqa: ANN001
    fast, fast_record = fire_pause(session, union, payload=payload)
    monkeypatch.setattr(Workflow, "fast_path", False)
    slow, slow_record = fire_pause(session, union, payload=payload)
    monkeypatch.undo()
    # the objects after fire: same attributes, saved (nothing left for the commit to flush)
    for obj in (fast, slow):
        assert (obj.state, obj.version, obj.state_reason) == ("paused", 2, "春节")
        assert not inspect(obj).modified and obj not in session.dirty
    assert not session.new and not session.dirty
    # the returned history objects: same contents, persistent in the session, with an id and a time
    for rec, obj in ((fast_record, fast), (slow_record, slow)):
        assert inspect(rec).persistent and rec in session
        assert rec.id is not None and rec.at is not None and rec.entity_id == obj.id
        assert (
            rec.entity,
            rec.from_state,
            rec.to_state,
            rec.trigger,
            rec.actor_id,
            rec.reason,
            rec.payload,
        ) == (
            "campaign",
            "active",
            "paused",
            "pause",
            union.director.id,
            "春节",
            payload,
        )
    with statements(session) as seen:
        session.commit()
    assert "UPDATE" not in seen and "INSERT" not in seen  # the commit had nothing left to write
    # what is stored: the same rows, whichever path wrote them
    session.expire_all()
    for obj in (fast, slow):
        stored = session.get(Campaign, obj.id)
        assert (stored.state, stored.version, stored.state_reason) == ("paused", 2, "春节")
    fast_rows, slow_rows = stored_history(session, fast.id), stored_history(session, slow.id)
    assert len(fast_rows) == len(slow_rows) == 1
    assert {k: v for k, v in fast_rows[0].items() if k != "at"} == {
        k: v for k, v in slow_rows[0].items() if k != "at"
    }
    assert fast_rows[0]["at"] is not None
    # and the record fire() returned is the one history() finds (one identity map)
    assert [h.id for h in history(session, "campaign", fast.id)] == [fast_record.id]


def test_direct_write_is_one_statement_on_postgresql_two_on_sqlite(session, union) -> None:  # noqa: ANN001
    c = make_campaign(session, union.director, [union.b1], state="active")
    session.commit()
    session.connection()  # the transaction's BEGIN is not fire()'s
    with statements(session) as seen:
        fire(session, c, "pause", actor_id=union.director.id)
    if session.get_bind().dialect.name == "postgresql":
        assert seen == ["WITH"]
    else:
        assert seen == ["UPDATE", "INSERT"]
    session.commit()
    assert c.version == 2 and len(history(session, "campaign", c.id)) == 1


def test_general_path_still_flushes(session, union, general_path) -> None:  # noqa: ANN001
    c = make_campaign(session, union.director, [union.b1], state="active")
    session.commit()
    session.connection()
    with statements(session) as seen:
        fire(session, c, "pause", actor_id=union.director.id)
    assert sorted(seen) == ["INSERT", "UPDATE"]  # one flush, in the unit of work's order
    session.commit()
    assert c.version == 2 and len(history(session, "campaign", c.id)) == 1


@pytest.mark.parametrize("path", ["direct", "general"])
def test_conflict_writes_nothing(session, union, monkeypatch: pytest.MonkeyPatch, path: str) -> None:  # noqa: ANN001
    if path == "general":
        monkeypatch.setattr(Workflow, "fast_path", False)
    c = make_campaign(session, union.director, [union.b1], state="active")
    session.commit()
    s1, s2 = db.factory(), db.factory()
    try:
        a, b = s1.get(Campaign, c.id), s2.get(Campaign, c.id)
        fire(s1, a, "pause", actor_id=union.director.id, reason="first")
        s1.commit()
        with pytest.raises(ConflictError, match=f"campaign {c.id} was changed by someone else"):
            fire(s2, b, "close", actor_id=union.director_b1.id, reason="second")
        s2.rollback()
        # after the rollback the loser sees the winner's row and may go on from there
        assert (b.state, b.version) == ("paused", 2)
        fire(s2, b, "close", actor_id=union.director_b1.id, reason="second")
        s2.commit()
    finally:
        s1.close()
        s2.close()
    session.expire_all()
    stored = session.get(Campaign, c.id)
    assert (stored.state, stored.version, stored.state_reason) == ("closed", 3, "second")
    assert [(r["trigger"], r["reason"]) for r in stored_history(session, c.id)] == [
        ("pause", "first"),
        ("close", "second"),
    ]


def test_conflict_leaves_the_loser_unable_to_commit_its_change(session, union) -> None:  # noqa: ANN001
    """The direct write raised before anything was written; the loser's object keeps its
    unsaved change, so a commit without the rollback cannot save it either."""
    c = make_campaign(session, union.director, [union.b1], state="active")
    session.commit()
    s1, s2 = db.factory(), db.factory()
    try:
        a, b = s1.get(Campaign, c.id), s2.get(Campaign, c.id)
        fire(s1, a, "pause")
        s1.commit()
        with pytest.raises(ConflictError):
            fire(s2, b, "close")
        with pytest.raises(Exception):  # noqa: B017, PT011 - StaleDataError from the flush
            s2.commit()
        s2.rollback()
    finally:
        s1.close()
        s2.close()
    session.expire_all()
    assert session.get(Campaign, c.id).state == "paused"
    assert len(stored_history(session, c.id)) == 1


def test_guard_refusal_and_impossible_trigger_write_nothing(session, union) -> None:  # noqa: ANN001
    c = make_campaign(session, union.director, [union.b1], state="draft", targets=[])
    session.commit()
    session.connection()
    with statements(session) as seen:
        with pytest.raises(GuardRefused, match="no targets are set") as refused:
            fire(session, c, "launch", actor_id=union.director.id)
        with pytest.raises(InvalidTransition, match="it is draft"):
            fire(session, c, "pause", actor_id=union.director.id)
    assert "UPDATE" not in seen and "INSERT" not in seen and "WITH" not in seen
    assert "no targets are set" in refused.value.reasons
    assert (c.state, c.version) == ("draft", 1) and not session.dirty
    session.commit()
    assert stored_history(session, c.id) == []


def test_other_pending_changes_take_the_general_path(session, union) -> None:  # noqa: ANN001
    """Something else waits to be flushed: fire() flushes it with the row, as before."""
    c = make_campaign(session, union.director, [union.b1], state="active")
    session.commit()
    session.add(
        Target(campaign_id=c.id, measure="deposits", branch_id=union.b1.id, value=5, split="by_headcount")
    )
    c.priority = 7  # a change of the caller's own, before the transition
    session.connection()
    with statements(session) as seen:
        fire(session, c, "pause", actor_id=union.director.id)
    assert "WITH" not in seen and seen.count("INSERT") == 2 and seen.count("UPDATE") == 1
    session.commit()
    session.expire_all()
    stored = session.get(Campaign, c.id)
    assert (stored.state, stored.priority, stored.version) == ("paused", 7, 2)
    assert session.scalar(select(func.count(Target.id)).where(Target.campaign_id == c.id)) == 2


def test_callers_own_changes_to_the_row_are_written_with_it(session, union) -> None:  # noqa: ANN001
    c = make_campaign(session, union.director, [union.b1], state="active")
    session.commit()
    c.priority = 3
    record = fire(session, c, "close", actor_id=union.director.id, reason="done")
    assert not session.dirty and c.version == 2
    session.commit()
    session.expire_all()
    stored = session.get(Campaign, c.id)
    assert (stored.state, stored.priority, stored.state_reason, stored.version) == ("closed", 3, "done", 2)
    assert [h.id for h in history(session, "campaign", c.id)] == [record.id]


def test_after_effect_that_autoflushes_still_gets_one_history_row(session, union) -> None:  # noqa: ANN001
    """An after-effect's query flushes the row first (autoflush); fire() then only adds history."""
    saved = dict(Workflow.registry)

    def count_targets(ctx: FireContext) -> None:
        ctx.payload["targets"] = ctx.session.scalar(
            select(func.count(Target.id)).where(Target.campaign_id == ctx.obj.id)
        )

    wf = Workflow(
        "campaign",
        Campaign,
        ["active", "paused"],
        [Transition.of("pause", "active", "paused", after=[count_targets])],
        initial="active",
    )
    try:
        c = make_campaign(session, union.director, [union.b1], state="active")
        session.commit()
        record = wf.fire(session, c, "pause", actor_id=union.director.id)
        assert record.payload == {"targets": 1} and inspect(record).persistent
        assert c.version == 2 and not session.dirty
        session.commit()
    finally:
        Workflow.registry.clear()
        Workflow.registry.update(saved)
    session.expire_all()
    assert session.get(Campaign, c.id).version == 2
    rows = stored_history(session, c.id)
    assert [(r["from_state"], r["to_state"]) for r in rows] == [("active", "paused")]


def test_rollback_after_direct_write_keeps_nothing(session, union) -> None:  # noqa: ANN001
    c = make_campaign(session, union.director, [union.b1], state="active")
    session.commit()
    fire(session, c, "pause")
    fire(session, c, "resume")
    assert c.version == 3
    session.rollback()
    assert (c.state, c.version) == ("active", 1)  # reloaded after the rollback
    assert stored_history(session, c.id) == []


def test_new_row_takes_the_general_path(session, union) -> None:  # noqa: ANN001
    c = Campaign(
        code="NEW-1",
        name="新活动",
        kind="deposit_drive",
        owner_id=union.director.id,
        start_date=union_today(),
        end_date=union_today(),
        state="active",
    )
    session.add(c)
    record = fire(session, c, "pause")
    assert c.id is not None and record.entity_id == c.id
    session.commit()
    assert [(r["from_state"], r["to_state"]) for r in stored_history(session, c.id)] == [("active", "paused")]


def union_today():  # noqa: ANN201
    from config import clock

    return clock.today()
