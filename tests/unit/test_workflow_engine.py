"""The workflow engine without a database: declaration checks, guards, after-effects, and the
rule that one shared ``transitions.Machine`` serves every row (PERFORMANCE.md §2.1, §5.1)."""

from __future__ import annotations

from typing import Any

import pytest
import transitions

from campaigns.machine import assignment_workflow, campaign_workflow
from campaigns.models import Campaign
from tasks.machine import task_workflow
from workflow.engine import FireContext, Guard, Transition, Workflow, available_triggers, fire
from workflow.errors import ConflictError, GuardRefused, InvalidTransition, ReasonRequired


@pytest.fixture(autouse=True)
def _restore_workflow_registry():  # noqa: ANN202
    """Workflows declared by a test leave the process-wide registry afterwards (the state-machine
    document and the diagrams page list every registered workflow)."""
    saved = dict(Workflow.registry)
    yield
    Workflow.registry.clear()
    Workflow.registry.update(saved)


class FakeSession:
    def __init__(self) -> None:
        self.added: list[Any] = []

    def add(self, obj: Any) -> None:
        self.added.append(obj)

    def flush(self) -> None:
        pass


class Door:
    """A plain (non-ORM) model: the engine needs only a state attribute and an id."""

    def __init__(self, id: int, state: str = "closed") -> None:  # noqa: A002
        self.id = id
        self.state = state
        self.effects: list[str] = []


def door_workflow(model: type = Door, **kw: Any) -> Workflow:
    def not_locked(ctx: FireContext) -> str | None:
        return "it is locked" if ctx.payload.get("locked") else None

    def creaks(ctx: FireContext) -> None:
        ctx.obj.effects.append(f"creak by {ctx.actor_id}")

    return Workflow(
        "door",
        model,
        ["closed", "open", "broken"],
        [
            Transition.of("open", "closed", "open", guards=[Guard("not_locked", not_locked)], after=[creaks]),
            Transition.of("close", "open", "closed"),
            Transition.of("smash", ["closed", "open"], "broken", reason_required=True),
        ],
        initial="closed",
        **kw,
    )


def new_model() -> type:
    return type("Door", (Door,), {})


# -- declaration --------------------------------------------------------------------------------


def test_unknown_destination_state_is_rejected() -> None:
    with pytest.raises(ValueError, match="open_wide.*unknown state|unknown state"):
        Workflow("d", new_model(), ["a", "b"], [Transition.of("open_wide", "a", "c")], initial="a")


def test_unknown_source_state_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown state"):
        Workflow("d", new_model(), ["a", "b"], [Transition.of("go", ["a", "zzz"], "b")], initial="a")


def test_duplicate_declaration_is_rejected() -> None:
    with pytest.raises(ValueError, match="go from a is declared twice"):
        Workflow(
            "d",
            new_model(),
            ["a", "b", "c"],
            [Transition.of("go", "a", "b"), Transition.of("go", ["c", "a"], "c")],
            initial="a",
        )


def test_same_trigger_from_different_sources_is_fine() -> None:
    wf = Workflow(
        "d",
        new_model(),
        ["a", "b", "c"],
        [Transition.of("go", "a", "b"), Transition.of("go", "b", "c")],
        initial="a",
    )
    assert wf.sources_of("go") == ["a", "b"]
    assert wf.edges() == [("a", "go", "b"), ("b", "go", "c")]


def test_workflow_for_an_undeclared_class_is_a_lookup_error() -> None:
    with pytest.raises(LookupError, match="No workflow is declared for Stranger"):
        fire(FakeSession(), type("Stranger", (), {"state": "a", "id": 1})(), "go")  # type: ignore[arg-type]


def test_subclass_finds_its_parents_workflow() -> None:
    model = new_model()
    wf = door_workflow(model)
    sub = type("SubDoor", (model,), {})
    assert Workflow.for_object(sub(1)) is wf


def test_custom_state_attribute() -> None:
    class Gate:
        def __init__(self) -> None:
            self.id, self.status = 1, "closed"

    Workflow(
        "gate",
        Gate,
        ["closed", "open"],
        [Transition.of("open", "closed", "open")],
        initial="closed",
        state_attr="status",
    )
    g = Gate()
    fire(FakeSession(), g, "open")  # type: ignore[arg-type]
    assert g.status == "open" and not hasattr(g, "state")


# -- firing -------------------------------------------------------------------------------------


def test_guard_refuses_with_its_reason_and_nothing_changes() -> None:
    door_workflow(model := new_model())
    d = model(5)
    session = FakeSession()
    with pytest.raises(GuardRefused) as err:
        fire(session, d, "open", payload={"locked": True})  # type: ignore[arg-type]
    assert err.value.reasons == ["it is locked"]
    assert "Cannot open door 5: it is locked" == str(err.value)
    assert d.state == "closed" and d.effects == [] and session.added == []


def test_after_effect_and_history_payload() -> None:
    door_workflow(model := new_model())
    d = model(5)
    record = fire(FakeSession(), d, "open", actor_id=9, payload={"by": "key"})  # type: ignore[arg-type]
    assert d.state == "open" and d.effects == ["creak by 9"]
    assert record.payload == {"by": "key"} and record.actor_id == 9 and record.reason is None


def test_invalid_trigger_names_state_and_allowed_triggers() -> None:
    door_workflow(model := new_model())
    d = model(5, "open")
    with pytest.raises(InvalidTransition) as err:
        fire(FakeSession(), d, "open")  # type: ignore[arg-type]
    assert str(err.value) == "Cannot open door 5: it is open; allowed from open: close, smash"
    with pytest.raises(InvalidTransition, match="allowed from broken: none"):
        fire(FakeSession(), model(6, "broken"), "close")  # type: ignore[arg-type]
    with pytest.raises(InvalidTransition, match="it is closed"):
        fire(FakeSession(), model(7), "fly")  # type: ignore[arg-type]


def test_reason_required() -> None:
    door_workflow(model := new_model())
    d = model(5)
    with pytest.raises(ReasonRequired, match="A reason is required to smash a door"):
        fire(FakeSession(), d, "smash", reason=" ")  # type: ignore[arg-type]
    assert d.state == "closed"
    fire(FakeSession(), d, "smash", reason="fire drill")  # type: ignore[arg-type]
    assert d.state == "broken"


def test_stale_flush_becomes_conflict_error() -> None:
    from sqlalchemy.orm.exc import StaleDataError

    class StaleSession(FakeSession):
        def flush(self) -> None:
            raise StaleDataError("UPDATE statement on table expected to update 1 row(s); 0 were matched.")

    door_workflow(model := new_model())
    with pytest.raises(ConflictError, match="door 5 was changed by someone else"):
        fire(StaleSession(), model(5), "open")  # type: ignore[arg-type]


# -- one shared machine, nothing bound per row --------------------------------------------------


def test_table_and_machine_come_from_one_definition() -> None:
    for wf in (campaign_workflow, assignment_workflow, task_workflow):
        machine = wf.machine
        assert isinstance(machine, transitions.Machine)
        assert set(machine.states) == set(wf.states)
        assert set(machine.events) == {t.trigger for t in wf.transitions}  # no auto to_<state>
        pairs = {
            (src, name): tr.dest
            for name, event in machine.events.items()
            for src, trs in event.transitions.items()
            for tr in trs
        }
        assert pairs == {k: t.dest for k, t in wf.table.items()}


def test_dispatch_uses_the_shared_machine_and_binds_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    created: list[Any] = []
    original_init = transitions.Machine.__init__

    def counting_init(self: Any, *a: Any, **kw: Any) -> None:
        created.append(self)
        original_init(self, *a, **kw)

    monkeypatch.setattr(transitions.Machine, "__init__", counting_init)
    wf = campaign_workflow
    before = set(vars(Campaign))
    rows = [Campaign(id=i, code=f"C{i}", state="active") for i in range(1000)]
    plain_attrs = set(vars(rows[0]))
    for c in rows:
        fire(FakeSession(), c, "pause", reason="holiday")  # type: ignore[arg-type]
        fire(FakeSession(), c, "resume")  # type: ignore[arg-type]
    assert all(c.state == "active" for c in rows)
    assert created == []  # no Machine built while firing
    assert len(wf.machine.models) == 0  # nothing was add_model'ed
    assert set(vars(Campaign)) == before  # nothing bound on the class either
    for c in rows[:50]:
        for name in ("trigger", "may_trigger", "pause", "may_pause", "is_active", "to_active", "machine"):
            assert not hasattr(c, name), name
        assert set(vars(c)) - plain_attrs <= {"state_reason"}  # only the after-effect's column


def test_one_machine_per_workflow() -> None:
    machines = [wf.machine for wf in Workflow.registry.values()]
    assert len({id(m) for m in machines}) == len(machines)
    assert Workflow.registry[Campaign] is campaign_workflow
    assert available_triggers(Campaign(state="paused")) == ["resume", "close", "cancel"]


# -- bulk declarations are checked before any SQL ------------------------------------------------


def test_bulk_fire_refuses_unknown_trigger_and_guards_without_sql() -> None:
    from sqlalchemy import true

    with pytest.raises(InvalidTransition):
        campaign_workflow.bulk_fire(FakeSession(), "fly", true())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="guard end_not_passed has no SQL form"):
        campaign_workflow.bulk_fire(FakeSession(), "launch", true())  # type: ignore[arg-type]
    with pytest.raises(ReasonRequired):
        campaign_workflow.bulk_fire(FakeSession(), "cancel", true())  # type: ignore[arg-type]
