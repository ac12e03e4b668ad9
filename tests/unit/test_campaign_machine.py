"""The campaign machine of PRODUCT.md §5, without a database: every state × every trigger, and
every guard refusing with a reason a director can read.

The expected table is written out here from the spec (not derived from the machine), so a
change to the machine that breaks the contract fails a test.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from campaigns.machine import campaign_workflow
from campaigns.models import Campaign, Target
from config import clock
from workflow.engine import fire
from workflow.errors import GuardRefused, InvalidTransition, ReasonRequired
from workflow.models import TransitionRecord

STATES = ["draft", "scheduled", "active", "paused", "closed", "settled", "cancelled"]
TRIGGERS = ["launch", "start", "pause", "resume", "close", "settle", "cancel"]

#: PRODUCT.md §5, campaign: (state, trigger) -> destination; anything else is refused.
ALLOWED = {
    ("draft", "launch"): "scheduled",
    ("draft", "cancel"): "cancelled",
    ("scheduled", "start"): "active",
    ("scheduled", "cancel"): "cancelled",
    ("active", "pause"): "paused",
    ("active", "close"): "closed",
    ("active", "cancel"): "cancelled",
    ("paused", "resume"): "active",
    ("paused", "close"): "closed",
    ("paused", "cancel"): "cancelled",
    ("closed", "settle"): "settled",
}
ALLOWED_FROM = {s: [t for t in TRIGGERS if (s, t) in ALLOWED] for s in STATES}
CELLS = [(s, t) for s in STATES for t in TRIGGERS]


class FakeSession:
    """Stands in for a Session: fire() only flushes and adds the history row."""

    def __init__(self) -> None:
        self.added: list[Any] = []
        self.flushes = 0

    def add(self, obj: Any) -> None:
        self.added.append(obj)

    def flush(self) -> None:
        self.flushes += 1


@pytest.fixture
def population(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """The launch guard asks campaigns.population.population_count; answer from this dict."""
    answer = {"count": 25}
    monkeypatch.setattr("campaigns.population.population_count", lambda session, campaign: answer["count"])
    return answer


def ready_campaign(state: str = "draft", **kw: Any) -> Campaign:
    """A transient campaign every guard accepts (targets, rules, dates around today)."""
    today = clock.today()
    kw.setdefault("start_date", today - dt.timedelta(days=1))
    kw.setdefault("end_date", today + dt.timedelta(days=30))
    kw.setdefault("rules", [{"id": "acc", "kind": "piece_rate", "measure": "accounts_opened", "rate": "20"}])
    kw.setdefault("rules_none", False)
    targets = kw.pop("targets", [Target(measure="accounts_opened", value=Decimal("10"))])
    c = Campaign(id=kw.pop("id", 7), code="C-1", name="test", kind="deposit_drive", state=state, **kw)
    c.targets = targets
    return c


def test_spec_table_covers_every_state_and_trigger() -> None:
    assert campaign_workflow.states == STATES
    assert sorted({t.trigger for t in campaign_workflow.transitions}) == sorted(TRIGGERS)
    assert campaign_workflow.initial == "draft"
    # the compiled table is exactly the spec's table
    assert {k: t.dest for k, t in campaign_workflow.table.items()} == ALLOWED


@pytest.mark.parametrize(("state", "trigger"), CELLS, ids=[f"{s}-{t}" for s, t in CELLS])
def test_every_state_and_trigger(state: str, trigger: str, population: dict[str, int]) -> None:
    session = FakeSession()
    c = ready_campaign(state)
    if (state, trigger) in ALLOWED:
        record = fire(session, c, trigger, actor_id=3, reason="because")  # type: ignore[arg-type]
        assert c.state == ALLOWED[(state, trigger)]
        assert isinstance(record, TransitionRecord)
        assert (record.entity, record.entity_id, record.from_state, record.to_state, record.trigger) == (
            "campaign",
            7,
            state,
            ALLOWED[(state, trigger)],
            trigger,
        )
        assert record.actor_id == 3 and record.reason == "because"
        assert session.added == [record]
    else:
        with pytest.raises(InvalidTransition) as err:
            fire(session, c, trigger, actor_id=3, reason="because")  # type: ignore[arg-type]
        assert c.state == state  # unchanged
        assert session.added == []
        e = err.value
        assert e.state == state and e.trigger == trigger
        assert e.allowed == ALLOWED_FROM[state]
        msg = str(e)
        assert f"it is {state}" in msg
        if ALLOWED_FROM[state]:
            assert all(t in msg for t in ALLOWED_FROM[state])
        else:
            assert "final state" in msg
        assert e.to_dict()["allowed"] == ALLOWED_FROM[state]
        assert e.http_status == 409


@pytest.mark.parametrize("state", STATES)
def test_available_triggers_follow_the_spec(state: str) -> None:
    from workflow.engine import available_triggers

    assert available_triggers(ready_campaign(state)) == ALLOWED_FROM[state]


# -- guards -------------------------------------------------------------------------------------


def refusal(c: Campaign, trigger: str = "launch") -> GuardRefused:
    with pytest.raises(GuardRefused) as err:
        fire(FakeSession(), c, trigger)  # type: ignore[arg-type]
    return err.value


def test_launch_refused_when_end_date_passed(population: dict[str, int]) -> None:
    end = clock.today() - dt.timedelta(days=1)
    c = ready_campaign(start_date=end - dt.timedelta(days=10), end_date=end)
    e = refusal(c)
    assert e.reasons == [f"its end date {end.isoformat()} has passed"]
    assert c.state == "draft" and c.launched_at is None
    assert "has passed" in str(e) and e.http_status == 409


def test_launch_refused_when_population_empty(population: dict[str, int]) -> None:
    population["count"] = 0
    e = refusal(ready_campaign())
    assert e.reasons == ["its population is empty: no customer matches"]


def test_launch_refused_without_targets(population: dict[str, int]) -> None:
    e = refusal(ready_campaign(targets=[]))
    assert e.reasons == ["no targets are set"]


def test_launch_refused_without_rules_unless_explicitly_none(population: dict[str, int]) -> None:
    e = refusal(ready_campaign(rules=[]))
    assert len(e.reasons) == 1 and "no reward rules are set" in e.reasons[0]
    c = ready_campaign(rules=[], rules_none=True)
    fire(FakeSession(), c, "launch")  # type: ignore[arg-type]
    assert c.state == "scheduled"


def test_launch_refused_for_a_point_in_time_deposit_target(population: dict[str, int]) -> None:
    target = Target(measure="deposits", value=Decimal("1000000"), basis="point_in_time")
    e = refusal(ready_campaign(targets=[target]))
    assert len(e.reasons) == 1
    assert "point-in-time" in e.reasons[0] and "daily averages" in e.reasons[0]


def test_every_failing_guard_is_reported_at_once(population: dict[str, int]) -> None:
    population["count"] = 0
    end = clock.today() - dt.timedelta(days=2)
    e = refusal(ready_campaign(start_date=end, end_date=end, targets=[], rules=[]))
    assert len(e.reasons) == 4
    text = str(e)
    for words in ("has passed", "population is empty", "no targets", "no reward rules"):
        assert words in text


def test_start_refused_before_the_start_date() -> None:
    start = clock.today() + dt.timedelta(days=3)
    e = refusal(ready_campaign("scheduled", start_date=start), "start")
    assert e.reasons == [f"its start date {start.isoformat()} has not come"]


def test_launch_marks_launched_at_and_pause_keeps_its_reason(population: dict[str, int]) -> None:
    c = ready_campaign()
    fire(FakeSession(), c, "launch")  # type: ignore[arg-type]
    assert c.launched_at is not None
    fire(FakeSession(), c, "start")  # type: ignore[arg-type]
    fire(FakeSession(), c, "pause", reason="  春节  ")  # type: ignore[arg-type]
    assert c.state == "paused" and c.state_reason == "春节"  # trimmed


@pytest.mark.parametrize("reason", [None, "", "   "])
@pytest.mark.parametrize("state", ["draft", "scheduled", "active", "paused"])
def test_cancel_requires_a_reason(state: str, reason: str | None) -> None:
    session = FakeSession()
    c = ready_campaign(state)
    with pytest.raises(ReasonRequired) as err:
        fire(session, c, "cancel", reason=reason)  # type: ignore[arg-type]
    assert c.state == state and session.added == []
    assert "reason is required" in str(err.value) and err.value.http_status == 422


def test_cancel_with_reason_keeps_it() -> None:
    c = ready_campaign("active")
    record = fire(FakeSession(), c, "cancel", reason="总行叫停")  # type: ignore[arg-type]
    assert c.state == "cancelled" and c.state_reason == "总行叫停" and record.reason == "总行叫停"
