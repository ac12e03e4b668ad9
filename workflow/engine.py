"""Declarative state machines on `transitions`, one per model class, never one per row.

A :class:`Workflow` is declared once, as data: its states, its :class:`Transition` table, the
guards that refuse with a reason a person can read, and the after-effects. It builds one shared
``transitions.Machine(model=None, auto_transitions=False, send_event=True)`` and a compiled table
``(source, trigger) -> Transition`` used to validate, list allowed triggers and generate
set-based SQL for bulk transitions.

Every change goes through :func:`fire` (one row) or :func:`bulk_fire` (a query). Both write a
:class:`~workflow.models.TransitionRecord` per moved row in the caller's transaction; they write
(a flush, or for one loaded row plain Core statements) but never commit. Rows carry a version column (:class:`Versioned`), so of two concurrent
transitions of one row exactly one succeeds and the other raises :class:`ConflictError`.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from sqlalchemy import Integer, Table, bindparam, insert, literal, select, update
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.exc import NoInspectionAvailable, OperationalError
from sqlalchemy.orm import Mapped, Mapper, Session, declared_attr, make_transient_to_detached, mapped_column
from sqlalchemy.orm.exc import StaleDataError
from sqlalchemy.sql.dml import Update
from sqlalchemy.sql.elements import ClauseElement, ColumnElement
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
    #: :meth:`fire` writes a loaded row with Core statements when it may (see ``_write_direct``);
    #: False forces the general path (one ORM flush) — tests compare the two.
    fast_path: ClassVar[bool] = True

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
        self._writer: _RowWriter | None | object = _UNBUILT
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
        if self.fast_path and isinstance(session, Session) and self._write_direct(session, obj, record):
            return record
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

    def _write_direct(self, session: Session, obj: Any, record: TransitionRecord) -> bool:
        """Write a loaded row's transition with Core statements instead of a flush.

        The SQL the unit of work would emit — ``UPDATE … SET <changed columns>, version = :next
        WHERE id = :id AND version = :seen`` and the history ``INSERT`` — without its bookkeeping,
        which was most of an interactive transition's cost (docs/benchmarks.md). On PostgreSQL
        both go in one statement, ``WITH moved AS (UPDATE … RETURNING id) INSERT … SELECT … FROM
        moved RETURNING id``: no row updated (someone else moved it first), no history row, and
        :class:`ConflictError` as from the flush.

        Taken only when the flush would write exactly that: ``obj`` is persistent in ``session``,
        only plain columns of its own table changed (the state and what after-effects set),
        nothing else in the session is pending and no flush or persistence event listens. Then
        the row is marked saved, so the commit has nothing left to flush, and ``record`` becomes
        a persistent object of the session. Returns False, having written nothing, when the
        general path (one flush) must do it.
        """
        writer = self._row_writer()
        if writer is None:
            return False
        state = sa_inspect(obj)
        if state.key is None or state.session_id != session.hash_key or state.mapper is not writer.mapper:
            return False
        if session.new or session.deleted:
            return False
        dirty = session.dirty
        if dirty and (len(dirty) > 1 or obj not in dirty):
            return False
        if writer.has_listeners(session):
            return False
        dict_ = state.dict
        changed = frozenset(state.committed_state)
        params: dict[str, Any] = {}
        if changed:
            if not changed <= writer.writable or writer.version_key not in dict_:
                return False
            for key in changed:
                value = dict_.get(key, _MISSING)
                if (
                    value is _MISSING
                    or isinstance(value, ClauseElement)
                    or hasattr(value, "__clause_element__")
                ):
                    return False
                params["v_" + key] = value
        obj_id = state.key[1][0]
        record.at = now_local()
        for key in _HISTORY_KEYS:
            params["h_" + key] = getattr(record, key)
        conn = session.connection(bind_arguments={"mapper": writer.mapper})
        try:
            if changed:
                seen = dict_[writer.version_key]
                version = writer.next_version(seen)
                params.update(pk_=obj_id, seen_=seen, next_=version)
                if conn.dialect.name == "postgresql":
                    record_id = conn.execute(writer.update_with_history(changed), params).scalar()
                    if record_id is None:
                        raise ConflictError(self.name, obj_id)
                else:
                    if _rowcount(conn.execute(writer.update_for(changed), params)) != 1:
                        raise ConflictError(self.name, obj_id)
                    record_id = conn.execute(_HISTORY_INSERT, params).inserted_primary_key[0]  # type: ignore[index]
            else:  # nothing of the row left to write (an after-effect's query flushed it)
                record_id = conn.execute(_HISTORY_INSERT, params).inserted_primary_key[0]  # type: ignore[index]
        except OperationalError as exc:
            if _is_sqlite_busy(exc):  # as in the flush path: SQLITE_BUSY_SNAPSHOT is a conflict
                raise ConflictError(self.name, obj_id) from exc
            raise
        record.id = record_id
        if changed:
            # what the flush does after its UPDATE: the new version and every written value
            # become the committed state; the row is no longer dirty.
            dict_[writer.version_key] = version
            state._commit_all(dict_, session.identity_map)
        make_transient_to_detached(record)
        session.add(record)  # persistent: in the identity map, nothing left to write
        return True

    def _row_writer(self) -> _RowWriter | None:
        writer = self._writer
        if writer is _UNBUILT:
            writer = self._writer = _RowWriter.build(self.model)
        return writer  # type: ignore[return-value]

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


_UNBUILT = object()
_MISSING = object()


class _RowWriter:
    """The Core statements :meth:`Workflow._write_direct` uses for one model, built once.

    Only for a model the unit of work would save as one versioned UPDATE of one table: a single
    table and primary key, a Python-side version counter (:class:`Versioned`), and no column
    computed on update (``onupdate``/``server_onupdate``), which the flush would fill in."""

    def __init__(self, mapper: Mapper[Any]) -> None:
        self.mapper = mapper
        self.table: Table = mapper.local_table  # type: ignore[assignment]
        self.pk: ColumnElement[Any] = mapper.primary_key[0]
        self.version_col: ColumnElement[Any] = mapper.version_id_col  # type: ignore[assignment]
        self.version_key = mapper.get_property_by_column(self.version_col).key
        self.next_version: Callable[[Any], Any] = mapper.version_id_generator  # type: ignore[assignment]
        pk_key = mapper.get_property_by_column(self.pk).key
        self.columns: dict[str, ColumnElement[Any]] = {
            prop.key: prop.columns[0]  # type: ignore[misc]
            for prop in mapper.column_attrs
            if len(prop.columns) == 1 and prop.columns[0].table is self.table
        }
        #: attributes the direct write may set (never the key or the version)
        self.writable = frozenset(self.columns) - {pk_key, self.version_key}
        self._updates: dict[frozenset[str], Update] = {}
        self._with_history: dict[frozenset[str], Any] = {}

    @classmethod
    def build(cls, model: type) -> _RowWriter | None:
        try:
            mapper: Any = sa_inspect(model)
        except NoInspectionAvailable:
            return None
        if not isinstance(mapper, Mapper):
            return None
        table = mapper.local_table
        if (
            not isinstance(table, Table)
            or mapper.inherits is not None
            or mapper.polymorphic_on is not None
            or len(mapper.primary_key) != 1
            or mapper.version_id_col is None
            or not callable(mapper.version_id_generator)
            or any(c.onupdate is not None or c.server_onupdate is not None for c in table.c)
        ):
            return None
        return cls(mapper)

    def has_listeners(self, session: Session) -> bool:
        """Whether a flush of this row would run event hooks the direct write would skip."""
        sd, md, hd = session.dispatch, self.mapper.dispatch, TransitionRecord.__mapper__.dispatch
        return bool(
            sd.before_flush
            or sd.after_flush
            or sd.after_flush_postexec
            or md.before_update
            or md.after_update
            or hd.before_insert
            or hd.after_insert
        )

    def update_for(self, keys: frozenset[str]) -> Update:
        """``UPDATE … SET <keys>, version = :next_ WHERE pk = :pk_ AND version = :seen_``, cached
        per set of changed attributes."""
        stmt = self._updates.get(keys)
        if stmt is None:
            values: dict[Any, Any] = {self.columns[k]: bindparam("v_" + k) for k in sorted(keys)}
            values[self.version_col] = bindparam("next_")
            stmt = (
                update(self.table)
                .where(self.pk == bindparam("pk_"), self.version_col == bindparam("seen_"))
                .values(values)
            )
            self._updates[keys] = stmt
        return stmt

    def update_with_history(self, keys: frozenset[str]) -> Any:
        """PostgreSQL: the UPDATE of :meth:`update_for` and the history INSERT in one statement,
        ``WITH moved AS (UPDATE … RETURNING id) INSERT INTO transition_record … SELECT …, moved.id,
        … FROM moved RETURNING id`` (no row moved: no history row, no id)."""
        stmt = self._with_history.get(keys)
        if stmt is None:
            moved = self.update_for(keys).returning(self.pk).cte("moved")
            hist = _HISTORY_TABLE
            columns = [
                moved.c[0] if k == "entity_id" else bindparam("h_" + k, type_=hist.c[k].type)
                for k in _HISTORY_KEYS
            ]
            stmt = (
                insert(hist)
                .from_select(list(_HISTORY_KEYS), select(*columns).select_from(moved))
                .returning(hist.c.id)
            )
            self._with_history[keys] = stmt
        return stmt


_HISTORY_TABLE: Table = TransitionRecord.__table__  # type: ignore[assignment]
_HISTORY_KEYS = (
    "entity",
    "entity_id",
    "from_state",
    "to_state",
    "trigger",
    "actor_id",
    "at",
    "reason",
    "payload",
)
#: the history row's INSERT from ``h_<column>`` parameters (its id: ``inserted_primary_key``)
_HISTORY_INSERT = insert(_HISTORY_TABLE).values(
    {_HISTORY_TABLE.c[k]: bindparam("h_" + k, type_=_HISTORY_TABLE.c[k].type) for k in _HISTORY_KEYS}
)


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
