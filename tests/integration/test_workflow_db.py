"""The workflow engine against a real database (SQLite file or PostgreSQL): history in the same
transaction, optimistic locking, set-based bulk transitions and the daily schedule."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from campaigns import services
from campaigns.models import Assignment, Campaign
from config import clock
from config.database import db
from tasks.models import Task
from tests.factories import make_campaign, make_customer
from workflow.engine import bulk_fire, fire, history
from workflow.errors import ConflictError, InvalidTransition
from workflow.models import JobProgress, TransitionRecord

TODAY = clock.today()
DAY = dt.timedelta(days=1)


def records(session, entity: str = "campaign", entity_id: int | None = None) -> list[TransitionRecord]:
    q = select(TransitionRecord).where(TransitionRecord.entity == entity).order_by(TransitionRecord.id)
    if entity_id is not None:
        q = q.where(TransitionRecord.entity_id == entity_id)
    return list(session.scalars(q))


def make_task(session, campaign: Campaign, staff, state: str = "open", n: int = 0) -> Task:
    t = Task(
        kind="contact",
        title=f"call {n}",
        campaign_id=campaign.id,
        branch_id=staff.branch_id,
        staff_id=staff.id,
        due_on=TODAY,
        state=state,
        source_key=f"test:{campaign.id}:{n}:{state}",
    )
    session.add(t)
    session.flush()
    return t


# -- one row ------------------------------------------------------------------------------------


def test_fire_writes_exactly_one_history_row_in_the_same_transaction(session, union):
    c = make_campaign(session, union.director, [union.b1], state="active")
    session.commit()
    assert c.version == 1

    record = fire(session, c, "pause", actor_id=union.director.id, reason="春节", payload={"note": "x"})
    # not committed yet: another session sees neither the state nor the history
    other = db.factory()
    try:
        assert other.scalar(select(Campaign.state).where(Campaign.id == c.id)) == "active"
        assert other.scalar(select(func.count(TransitionRecord.id))) == 0
    finally:
        other.close()
    session.commit()

    session.expire_all()
    stored = session.get(Campaign, c.id)
    assert stored.state == "paused" and stored.version == 2
    rows = records(session, entity_id=c.id)
    assert len(rows) == 1 and rows[0].id == record.id
    r = rows[0]
    assert (r.entity, r.entity_id, r.from_state, r.to_state, r.trigger) == (
        "campaign",
        c.id,
        "active",
        "paused",
        "pause",
    )
    assert r.actor_id == union.director.id and r.reason == "春节" and r.payload == {"note": "x"}
    assert r.at is not None
    assert [h.id for h in history(session, "campaign", c.id)] == [r.id]


def test_rollback_keeps_neither_state_nor_history(session, union):
    c = make_campaign(session, union.director, [union.b1], state="active")
    session.commit()
    fire(session, c, "pause", actor_id=union.director.id)
    fire(session, c, "resume", actor_id=union.director.id)
    assert len(records(session)) == 2  # flushed inside the transaction
    session.rollback()
    session.expire_all()
    stored = session.get(Campaign, c.id)
    assert stored.state == "active" and stored.version == 1
    assert records(session) == []


def test_refused_trigger_writes_nothing(session, union):
    c = make_campaign(session, union.director, [union.b1], state="closed")
    session.commit()
    with pytest.raises(InvalidTransition, match="it is closed; allowed from closed: settle"):
        fire(session, c, "pause")
    session.commit()
    assert records(session) == [] and session.get(Campaign, c.id).version == 1


def test_history_is_in_order_over_several_transitions(session, union):
    c = make_campaign(session, union.director, [union.b1], state="active")
    session.commit()
    for trigger in ("pause", "resume", "pause", "close"):
        fire(session, c, trigger, actor_id=union.director.id)
        session.commit()
    rows = history(session, "campaign", c.id)
    assert [(r.from_state, r.trigger, r.to_state) for r in rows] == [
        ("active", "pause", "paused"),
        ("paused", "resume", "active"),
        ("active", "pause", "paused"),
        ("paused", "close", "closed"),
    ]
    assert session.get(Campaign, c.id).version == 5


# -- optimistic lock (CONC-02) ------------------------------------------------------------------


def test_two_sessions_both_fire_second_gets_conflict_and_nothing_is_lost(session, union):
    c = make_campaign(session, union.director, [union.b1], state="active")
    session.commit()
    s1, s2 = db.factory(), db.factory()
    try:
        a = s1.get(Campaign, c.id)
        b = s2.get(Campaign, c.id)
        assert a.version == b.version == 1
        fire(s1, a, "pause", actor_id=union.director.id, reason="first")
        s1.commit()
        # s2 still holds version 1 and state active: its trigger is valid in memory, but stale
        with pytest.raises(ConflictError, match="changed by someone else"):
            fire(s2, b, "close", actor_id=union.director_b1.id, reason="second")
        s2.rollback()
    finally:
        s1.close()
        s2.close()
    session.expire_all()
    stored = session.get(Campaign, c.id)
    assert stored.state == "paused" and stored.version == 2 and stored.state_reason == "first"
    rows = records(session, entity_id=c.id)
    assert [(r.trigger, r.reason) for r in rows] == [("pause", "first")]


def test_conflicting_session_can_reload_and_retry(session, union):
    c = make_campaign(session, union.director, [union.b1], state="active")
    session.commit()
    s1, s2 = db.factory(), db.factory()
    try:
        a, b = s1.get(Campaign, c.id), s2.get(Campaign, c.id)
        fire(s1, a, "pause")
        s1.commit()
        with pytest.raises(ConflictError):
            fire(s2, b, "pause")
        s2.rollback()
        b = s2.get(Campaign, c.id)
        with pytest.raises(InvalidTransition, match="it is paused"):
            fire(s2, b, "pause")
        fire(s2, b, "resume")
        s2.commit()
    finally:
        s1.close()
        s2.close()
    session.expire_all()
    assert session.get(Campaign, c.id).version == 3
    assert [r.trigger for r in records(session, entity_id=c.id)] == ["pause", "resume"]


# -- bulk ---------------------------------------------------------------------------------------


def test_bulk_fire_moves_only_rows_whose_state_allows_it(session, union):
    active = [make_campaign(session, union.director, [union.b1], state="active") for _ in range(3)]
    paused = [make_campaign(session, union.director, [union.b1], state="paused") for _ in range(2)]
    draft = make_campaign(session, union.director, [union.b1], state="draft")
    closed = make_campaign(session, union.director, [union.b1], state="closed")
    outside = make_campaign(session, union.director, [union.b2], state="active")
    session.commit()
    ids = [c.id for c in active + paused] + [draft.id, closed.id]

    moved = bulk_fire(
        session, Campaign, "close", Campaign.id.in_(ids), actor_id=union.director.id, reason="year end"
    )
    session.commit()
    assert moved == 5
    states = dict(session.execute(select(Campaign.id, Campaign.state)).all())
    versions = dict(session.execute(select(Campaign.id, Campaign.version)).all())
    for c in active + paused:
        assert states[c.id] == "closed" and versions[c.id] == 2
    assert states[draft.id] == "draft" and states[closed.id] == "closed" and states[outside.id] == "active"
    assert versions[draft.id] == versions[closed.id] == versions[outside.id] == 1

    rows = records(session)
    assert len(rows) == 5
    from_state = {r.entity_id: r.from_state for r in rows}
    assert from_state == {**{c.id: "active" for c in active}, **{c.id: "paused" for c in paused}}
    assert {(r.to_state, r.trigger, r.actor_id, r.reason) for r in rows} == {
        ("closed", "close", union.director.id, "year end")
    }

    # idempotent: the same call again moves nothing and writes nothing
    assert (
        bulk_fire(session, Campaign, "close", Campaign.id.in_(ids), actor_id=union.director.id, reason="x")
        == 0
    )
    session.commit()
    assert len(records(session)) == 5


def test_bulk_fire_respects_sql_guards(session, union):
    due = make_campaign(session, union.director, [union.b1], state="scheduled", start_date=TODAY)
    past = make_campaign(session, union.director, [union.b1], state="scheduled", start_date=TODAY - 3 * DAY)
    future = make_campaign(session, union.director, [union.b1], state="scheduled", start_date=TODAY + DAY)
    session.commit()
    # the 'start' guard (start date reached) is applied in SQL even though `where` matches all
    moved = bulk_fire(session, Campaign, "start", Campaign.id.in_([due.id, past.id, future.id]))
    session.commit()
    assert moved == 2
    states = dict(session.execute(select(Campaign.id, Campaign.state)).all())
    assert states == {due.id: "active", past.id: "active", future.id: "scheduled"}
    assert sorted(r.entity_id for r in records(session)) == sorted([due.id, past.id])


def test_bulk_fire_over_many_sources_records_each_rows_from_state(session, union):
    c = make_campaign(session, union.director, [union.b1], state="closed")
    session.commit()
    tasks = {
        state: [make_task(session, c, union.m1, state, n) for n in range(3)]
        for state in ("open", "in_progress", "snoozed", "done", "failed")
    }
    session.commit()
    moved = bulk_fire(session, Task, "expire", Task.campaign_id == c.id, reason="campaign closed")
    session.commit()
    assert moved == 9
    rows = records(session, "task")
    assert len(rows) == 9
    expected = {t.id: state for state in ("open", "in_progress", "snoozed") for t in tasks[state]}
    assert {r.entity_id: r.from_state for r in rows} == expected
    final = dict(session.execute(select(Task.id, Task.state)).all())
    assert all(final[t.id] == "expired" for state in ("open", "in_progress", "snoozed") for t in tasks[state])
    assert all(final[t.id] == s for s in ("done", "failed") for t in tasks[s])


def test_bulk_fire_leaves_loaded_objects_fresh(session, union):
    c = make_campaign(session, union.director, [union.b1], state="active")
    session.commit()
    assert c.state == "active"
    bulk_fire(session, Campaign, "pause", Campaign.id == c.id)
    assert c.state == "paused" and c.version == 2  # expired and reloaded, not stale
    # and the ORM path keeps working on the reloaded version
    fire(session, c, "resume")
    session.commit()
    assert session.get(Campaign, c.id).version == 3


# -- the daily schedule -------------------------------------------------------------------------


def test_run_schedule_starts_due_and_closes_ended_campaigns(session, union):
    due = make_campaign(session, union.director, [union.b1], state="scheduled", start_date=TODAY - DAY)
    not_yet = make_campaign(
        session, union.director, [union.b1], state="scheduled", start_date=TODAY + 2 * DAY
    )
    ended = make_campaign(
        session, union.director, [union.b1], state="active", start_date=TODAY - 30 * DAY, end_date=TODAY - DAY
    )
    ended_paused = make_campaign(
        session,
        union.director,
        [union.b1],
        state="paused",
        start_date=TODAY - 30 * DAY,
        end_date=TODAY - 2 * DAY,
    )
    running = make_campaign(session, union.director, [union.b1], state="active", start_date=TODAY - 5 * DAY)
    draft_old = make_campaign(
        session, union.director, [union.b1], state="draft", start_date=TODAY - 30 * DAY, end_date=TODAY - DAY
    )
    session.commit()
    open_tasks = [
        make_task(session, ended, union.m1, s, n) for n, s in enumerate(["open", "in_progress", "snoozed"])
    ]
    done_task = make_task(session, ended, union.m1, "done", 9)
    paused_task = make_task(session, ended_paused, union.m2, "open", 10)
    running_task = make_task(session, running, union.m1, "open", 11)
    session.commit()

    result = services.run_schedule(session)
    session.commit()
    assert result == {"started": 1, "closed": 2}
    states = dict(session.execute(select(Campaign.id, Campaign.state)).all())
    assert states == {
        due.id: "active",
        not_yet.id: "scheduled",
        ended.id: "closed",
        ended_paused.id: "closed",
        running.id: "active",
        draft_old.id: "draft",
    }
    task_states = dict(session.execute(select(Task.id, Task.state)).all())
    for t in [*open_tasks, paused_task]:
        assert task_states[t.id] == "expired"
    assert task_states[done_task.id] == "done" and task_states[running_task.id] == "open"
    finished = dict(session.execute(select(Task.id, Task.finished_at)).all())
    assert all(finished[t.id] is not None for t in open_tasks)

    task_history = records(session, "task")
    assert {r.entity_id: r.from_state for r in task_history} == {
        open_tasks[0].id: "open",
        open_tasks[1].id: "in_progress",
        open_tasks[2].id: "snoozed",
        paused_task.id: "open",
    }
    assert {(r.trigger, r.to_state, r.actor_id) for r in task_history} == {("expire", "expired", None)}
    campaign_history = {(r.entity_id, r.trigger, r.from_state) for r in records(session)}
    assert campaign_history == {
        (due.id, "start", "scheduled"),
        (ended.id, "close", "active"),
        (ended_paused.id, "close", "paused"),
    }

    # a second run the same day changes nothing
    assert services.run_schedule(session) == {"started": 0, "closed": 0}
    session.commit()
    assert len(records(session)) == 3 and len(records(session, "task")) == 4


def test_run_schedule_on_a_given_day(session, union):
    later = make_campaign(session, union.director, [union.b1], state="scheduled", start_date=TODAY + 5 * DAY)
    session.commit()
    assert services.run_schedule(session, TODAY + 4 * DAY) == {"started": 0, "closed": 0}
    # the 'start' guard reads the real clock in SQL too, so a future 'today' argument cannot start it early
    assert services.run_schedule(session, TODAY + 5 * DAY)["started"] == 0
    session.commit()
    assert session.get(Campaign, later.id).state == "scheduled"


# -- launch through the service (eager job) -----------------------------------------------------


def test_launch_commits_then_generates_assignments(session, union):
    for _ in range(4):
        make_customer(session, union.b1, union.m1)
    c = make_campaign(session, union.director_b1, [union.b1])
    session.commit()
    progress = services.launch(session, c, union.director_b1.id)
    # nothing generated before commit (the job is sent after commit)
    assert session.scalar(select(func.count(Assignment.id))) == 0
    session.commit()
    session.expire_all()
    assert session.get(Campaign, c.id).state == "active"
    assert session.scalar(select(func.count(Assignment.id)).where(Assignment.campaign_id == c.id)) == 4
    assert session.get(JobProgress, progress.id).state == "done"
    assert [r.trigger for r in records(session, entity_id=c.id)] == ["launch", "start"]


def test_rolled_back_launch_sends_no_job(session, union):
    make_customer(session, union.b1, union.m1)
    c = make_campaign(session, union.director_b1, [union.b1])
    session.commit()
    services.launch(session, c, union.director_b1.id)
    session.rollback()
    session.commit()
    assert session.get(Campaign, c.id).state == "draft"
    assert session.scalar(select(func.count(Assignment.id))) == 0
    assert session.scalar(select(func.count(JobProgress.id))) == 0
