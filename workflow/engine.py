"""Declarative state machines on `transitions`, one per model class, never one per row.

A :class:`Workflow` is declared once, as data: its states, its :class:`Transition` table, the
guards that refuse with a reason a person can read, and the after-effects. It builds one shared
``transitions.Machine(model=None, auto_transitions=False, send_event=True)`` and a compiled table
``(source, trigger) -> Transition`` used to validate, list allowed triggers and generate
set-based SQL for bulk transitions.

Every change goes through :func:`fire` (one row) or :func:`bulk_fire` (a query). Both write a
:class:`~workflow.models.TransitionRecord` per moved row in the caller's transaction; they flush
but never commit. Rows carry a version column (:class:`Versioned`), so of two concurrent
transitions of one row exactly one succeeds and the other raises :class:`ConflictError`.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from sqlalchemy import Integer, Table, insert, literal, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Mapped, Session, declared_attr, mapped_column
from sqlalchemy.orm.exc import StaleDataError
from sqlalchemy.sql.elements import ColumnElement
from transitions import Machine

from config.database import now_local
from workflow.errors import ConflictError, GuardRefused, InvalidTransition, ReasonRequired
from workflow.models import TransitionRecord

# transitions logs every callback at INFO; in a worker that is noise and measurable cost
logging.getLogger("transitions").setLevel(logging.WARNING)


class Versioned:
    """Mixin: an integer ``version`` column used by SQLAlchemy as the optimistic-lock counter."""

    version: Mapped[int] = mapped_column(Integer, default=1, nullable=False, comment="optimistic lock")

    @declared_attr.directive
    def __mapper_args__(cls) -> dict[str, Any]:  # noqa: N805
        return {"version_id_col": cls.__table__.c.version}  # type: ignore[attr-defined]


@dataclass
class FireContext:
    """What guards and after-effects receive: the session, the row, who acts and why."""

    session: Session
    obj: Any
    trigger: str
    actor_id: int | None
    reason: str | None
    payload: dict[str, Any]
    refusals: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Guard:
    """A named precondition. ``check`` returns ``None`` when satisfied, else the reason it refuses.

    ``sql`` (optional) expresses the same condition over the table for bulk transitions; it
    receives the table and the bulk call's payload (e.g. ``{"today": date}``).
    """

    name: str
    check: Callable[[FireContext], str | None]
    sql: Callable[[Table, dict[str, Any]], ColumnElement[bool]] | None = None


@dataclass(frozen=True)
class Transition:
    """One arrow of the machine: ``trigger`` moves ``source`` states to ``dest``."""

    trigger: str
    source: tuple[str, ...]
    dest: str
    guards: tuple[Guard, ...] = ()
    after: tuple[Callable[[FireContext], None], ...] = ()
    reason_required: bool = False

    @classmethod
    def of(
        cls,
        trigger: str,
        source: str | Iterable[str],
        dest: str,
        *,
        guards: Iterable[Guard] = (),
        after: Iterable[Callable[[FireContext], None]] = (),
        reason_required: bool = False,
    ) -> Transition:
        sources = (source,) if isinstance(source, str) else tuple(source)
        return cls(trigger, sources, dest, tuple(guards), tuple(after), reason_required)


class Workflow:
    """A state machine declared once for one model class."""

    registry: ClassVar[dict[type, Workflow]] = {}

    def __init__(
        self,
        name: str,
        model: type,
        states: Sequence[str],
        transitions: Sequence[Transition],
        *,
        initial: str,
        state_attr: str = "state",
    ) -> None:
        self.name = name
        self.model = model
        self.states = [str(s) for s in states]
        self.initial = str(initial)
        self.transitions = list(transitions)
        self.state_attr = state_attr
        self.table: dict[tuple[str, str], Transition] = {}
        for t in self.transitions:
            for src in t.source:
                if src not in self.states or t.dest not in self.states:
                    raise ValueError(f"{name}: transition {t.trigger} uses an unknown state")
                if (src, t.trigger) in self.table:
                    raise ValueError(f"{name}: {t.trigger} from {src} is declared twice")
                self.table[(src, t.trigger)] = t
        self.machine = Machine(
            model=None,
            states=self.states,
            transitions=[self._machine_transition(t) for t in self.transitions],
            initial=None,
            auto_transitions=False,
            send_event=True,
            model_attribute=state_attr,
        )
        Workflow.registry[model] = self

    # -- declaration helpers -------------------------------------------------------------------
    def _machine_transition(self, t: Transition) -> dict[str, Any]:
        def all_guards(event: Any) -> bool:
            ctx: FireContext = event.kwargs["ctx"]
            for guard in t.guards:
                refusal = guard.check(ctx)
                if refusal:
                    ctx.refusals.append(refusal)
            return not ctx.refusals

        def after_effects(event: Any) -> None:
            for effect in t.after:
                effect(event.kwargs["ctx"])

        return {
            "trigger": t.trigger,
            "source": list(t.source),
            "dest": t.dest,
            "conditions": [all_guards],
            "after": [after_effects],
        }

    @classmethod
    def for_object(cls, obj: Any) -> Workflow:
        for klass in type(obj).__mro__:
            if klass in cls.registry:
                return cls.registry[klass]
        raise LookupError(f"No workflow is declared for {type(obj).__name__}")

    # -- reading -------------------------------------------------------------------------------
    def triggers_from(self, state: str) -> list[str]:
        """Triggers allowed from ``state``, in declaration order."""
        return [t.trigger for t in self.transitions if state in t.source]

    def sources_of(self, trigger: str) -> list[str]:
        return [src for (src, trig) in self.table if trig == trigger]

    def edges(self) -> list[tuple[str, str, str]]:
        """(source, trigger, dest) for every arrow; what diagrams are drawn from."""
        return [(src, t.trigger, t.dest) for t in self.transitions for src in t.source]

    # -- changing one row ----------------------------------------------------------------------
    def fire(
        self,
        session: Session,
        obj: Any,
        trigger: str,
        *,
        actor_id: int | None = None,
        reason: str | None = None,
        payload: dict[str, Any] | None = None,
    ) -> TransitionRecord:
        current = str(getattr(obj, self.state_attr))
        obj_id = getattr(obj, "id", None)
        t = self.table.get((current, trigger))
        if t is None:
            raise InvalidTransition(self.name, obj_id, current, trigger, self.triggers_from(current))
        reason = (reason or "").strip() or None
        if t.reason_required and not reason:
            raise ReasonRequired(self.name, trigger)
        ctx = FireContext(session, obj, trigger, actor_id, reason, dict(payload or {}))
        moved = self.machine.events[trigger].trigger(obj, ctx=ctx)
        if not moved:
            raise GuardRefused(self.name, obj_id, trigger, ctx.refusals or ["a condition was not met"])
        record = TransitionRecord(
            entity=self.name,
            entity_id=obj_id,
            from_state=current,
            to_state=t.dest,
            trigger=trigger,
            actor_id=actor_id,
            reason=reason,
            payload=ctx.payload or None,
        )
        try:
            if obj_id is None:  # a row not yet inserted: its id comes from the flush
                session.flush()
                record.entity_id = obj.id
            session.add(record)
            session.flush()  # one unit of work: the row's UPDATE … WHERE version = :seen, the history INSERT
        except StaleDataError as exc:
            raise ConflictError(self.name, obj_id) from exc
        except OperationalError as exc:
            # SQLite: a transaction that read the row before another one committed its change
            # cannot write any more (SQLITE_BUSY_SNAPSHOT, "database is locked"): the same
            # conflict as a stale version, so the same answer.
            if _is_sqlite_busy(exc):
                raise ConflictError(self.name, obj_id) from exc
            raise
        return record

    # -- changing many rows --------------------------------------------------------------------
    def bulk_fire(
        self,
        session: Session,
        trigger: str,
        where: ColumnElement[bool],
        *,
        actor_id: int | None = None,
        reason: str | None = None,
        payload: dict[str, Any] | None = None,
        values: dict[str, Any] | None = None,
    ) -> int:
        """Fire ``trigger`` on every row matching ``where`` whose state allows it, set-based.

        One UPDATE plus one INSERT … SELECT of history per destination; guards must carry SQL.
        Rows whose state does not allow the trigger are left alone. Returns how many moved.
        """
        table: Table = self.model.__table__  # type: ignore[attr-defined]
        by_dest: dict[str, list[tuple[str, Transition]]] = {}
        for (src, trig), t in self.table.items():
            if trig == trigger:
                by_dest.setdefault(t.dest, []).append((src, t))
        if not by_dest:
            raise InvalidTransition(self.name, "(bulk)", "any", trigger, [])
        moved = 0
        now = now_local()
        for dest, pairs in by_dest.items():
            sources = [src for src, _ in pairs]
            t = pairs[0][1]
            if t.reason_required and not (reason or "").strip():
                raise ReasonRequired(self.name, trigger)
            conds = [where]
            for guard in t.guards:
                if guard.sql is None:
                    raise TypeError(f"{self.name}.{trigger}: guard {guard.name} has no SQL form for bulk use")
                conds.append(guard.sql(table, payload or {}))
            moved += self._bulk_move(
                session, table, trigger, sources, dest, conds, actor_id, reason, payload, values, now
            )
        session.expire_all()
        return moved

    def _bulk_move(
        self,
        session: Session,
        table: Table,
        trigger: str,
        sources: list[str],
        dest: str,
        conds: list[ColumnElement[bool]],
        actor_id: int | None,
        reason: str | None,
        payload: dict[str, Any] | None,
        values: dict[str, Any] | None,
        now: dt.datetime,
    ) -> int:
        state_col = table.c[self.state_attr]
        new_values = {self.state_attr: dest, "version": table.c.version + 1, **(values or {})}
        hist: Table = TransitionRecord.__table__  # type: ignore[assignment]
        hist_cols = [
            "entity",
            "entity_id",
            "from_state",
            "to_state",
            "trigger",
            "actor_id",
            "at",
            "reason",
            "payload",
        ]
        bind = session.get_bind()
        payload_value = payload or None

        def history_select(id_col: Any, from_col: Any) -> Any:
            return select(
                literal(self.name),
                id_col,
                from_col,
                literal(dest),
                literal(trigger),
                literal(actor_id, type_=Integer),
                literal(now),
                literal(reason),
                literal(payload_value, type_=hist.c.payload.type),
            )

        if bind.dialect.name == "postgresql":
            # One statement per source state: WITH moved AS (UPDATE … WHERE … AND state = :src
            # RETURNING id) INSERT INTO transition_record … SELECT … FROM moved. The UPDATE locks
            # the rows itself and re-checks `state = :src` on the latest row version, so the
            # literal from_state is exact under concurrency; no separate locking pass, no self-join.
            total = 0
            for src in sources:
                moved = (
                    update(table)
                    .values(new_values)
                    .where(*conds, state_col == src)
                    .returning(table.c.id)
                    .cte("moved")
                )
                stmt = insert(hist).from_select(hist_cols, history_select(moved.c.id, literal(src)))
                total += _rowcount(session.execute(stmt))
            return total
        # SQLite (one writer at a time): history first, from the same predicate, then the update.
        conds = [*conds, state_col.in_(sources)]
        session.execute(
            insert(hist).from_select(hist_cols, history_select(table.c.id, state_col).where(*conds))
        )
        return _rowcount(session.execute(update(table).where(*conds).values(new_values)))


def _rowcount(result: Any) -> int:
    """Rows matched by an INSERT/UPDATE (a CursorResult's rowcount)."""
    return int(getattr(result, "rowcount", 0) or 0)


def _is_sqlite_busy(exc: OperationalError) -> bool:
    orig = exc.orig
    name = str(getattr(orig, "sqlite_errorname", ""))
    return name.startswith("SQLITE_BUSY") or "database is locked" in str(orig)


def fire(
    session: Session,
    obj: Any,
    trigger: str,
    *,
    actor_id: int | None = None,
    reason: str | None = None,
    payload: dict[str, Any] | None = None,
) -> TransitionRecord:
    """Fire ``trigger`` on ``obj`` through its declared workflow; see :meth:`Workflow.fire`."""
    return Workflow.for_object(obj).fire(
        session, obj, trigger, actor_id=actor_id, reason=reason, payload=payload
    )


def bulk_fire(session: Session, model: type, trigger: str, where: ColumnElement[bool], **kw: Any) -> int:
    """Fire ``trigger`` on every row of ``model`` matching ``where``; see :meth:`Workflow.bulk_fire`."""
    return Workflow.registry[model].bulk_fire(session, trigger, where, **kw)


def available_triggers(obj: Any) -> list[str]:
    """Triggers allowed from ``obj``'s current state (what the page offers as buttons)."""
    wf = Workflow.for_object(obj)
    return wf.triggers_from(str(getattr(obj, wf.state_attr)))


def history(session: Session, entity: str, entity_id: int) -> list[TransitionRecord]:
    """The transition history of one row, oldest first."""
    return list(
        session.scalars(
            select(TransitionRecord)
            .where(TransitionRecord.entity == entity, TransitionRecord.entity_id == entity_id)
            .order_by(TransitionRecord.id)
        )
    )
