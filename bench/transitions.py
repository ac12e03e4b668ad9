"""Benchmark of the workflow engine against bare SQL (issue 2 item 9; PERFORMANCE.md §4 P6–P11).

    python bench/transitions.py [--rows 100000] [--runs 5] [--interactive 300]

Runs on SQLite always (a scratch file) and on PostgreSQL when ``CAMPAIGNFLOW_DATABASE_URL`` points
at one (a scratch database created next to it and dropped afterwards). In each, a bench table
(id, batch, state, version) driven by a small machine declared with :class:`workflow.engine.Workflow`,
and the real ``transition_record`` history table. Engine and baseline interleave, each the median
of ``--runs`` runs:

(a) one interactive transition per transaction: engine = load the ORM row, ``Workflow.fire``,
    commit; baseline = raw DBAPI ``SELECT … (FOR UPDATE on PG)``, ``UPDATE``, history ``INSERT``,
    ``COMMIT``. → ``per_row_ratio``
(b) a bulk transition of ``--rows`` rows: ``Workflow.bulk_fire`` vs a hand-written
    ``INSERT … SELECT`` of the history plus ``UPDATE … WHERE state IN (…)``. → ``bulk_ratio``
(c) µs/row of the engine's bulk path at ``--rows`` vs ``--rows``/10. → ``linearity`` (for reference,
    the same ratio of the hand-written SQL of (b): ``raw_linearity`` in the per-database results)
(d) bytes of engine state per loaded row (tracemalloc): load N ORM rows and fire on each vs load
    N rows and set the state by hand. → ``bytes_per_row``

The last line is JSON: {"bench": "transitions", "per_row_ratio", "bulk_ratio", "linearity",
"bytes_per_row", ...}; the top-level figures are PostgreSQL's when it ran, else SQLite's.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

# this script is named like the `transitions` library: take its own folder off the path
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import sqlalchemy  # noqa: E402
import transitions  # noqa: E402
from sqlalchemy import Index, String, create_engine, select, text  # noqa: E402
from sqlalchemy.engine import Engine, make_url  # noqa: E402
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker  # noqa: E402

from config.database import Base, BigId, import_models, make_engine, now_local  # noqa: E402
from workflow.engine import Transition, Versioned, Workflow  # noqa: E402

ENTITY = "bench_item"


class BenchBase(DeclarativeBase):
    pass


class BenchItem(Versioned, BenchBase):
    """A row with a state, like a task; batch separates the engine's rows from the baseline's."""

    __tablename__ = "bench_item"
    __table_args__ = (Index("ix_bench_item_batch_state", "batch", "state"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    batch: Mapped[int] = mapped_column()
    state: Mapped[str] = mapped_column(String(12))


bench_workflow = Workflow(
    ENTITY,
    BenchItem,
    ["open", "verified", "done"],
    [
        Transition.of("verify", "open", "verified"),
        Transition.of("reopen", "verified", "open"),
        Transition.of("finish", ["open", "verified"], "done"),
    ],
    initial="open",
)

# batches of rows
INTERACTIVE_ENGINE, INTERACTIVE_RAW, BULK_ENGINE, BULK_RAW, BULK_SMALL, MEMORY, INTERACTIVE_ORM = (
    1,
    2,
    3,
    4,
    5,
    6,
    7,
)
BULK_RAW_SMALL = 8  # reference for (c): the hand-written SQL's own µs/row at rows/10


class NullSession:
    """For (d): fire() flushes and adds the history row; here both are dropped on the floor."""

    def add(self, obj: Any) -> None:
        pass

    def flush(self) -> None:
        pass


# -- set-up ---------------------------------------------------------------------------------------


def scratch_postgres(url: str) -> tuple[str, Callable[[], None]]:
    name = f"bench_transitions_{uuid.uuid4().hex[:8]}"
    admin = create_engine(make_url(url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    scratch = make_url(url).set(database=name).render_as_string(hide_password=False)

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return scratch, drop


def fill(engine: Engine, batch: int, n: int, state: str = "open", extra_done: float = 0.1) -> None:
    """``n`` rows in ``state`` plus 10 % rows in 'done' (which the triggers must leave alone)."""
    done = int(n * extra_done)
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO bench_item (batch, state, version) "
                    "SELECT :b, CASE WHEN g <= :n THEN :s ELSE 'done' END, 1 FROM generate_series(1, :t) g"
                ),
                {"b": batch, "n": n, "s": state, "t": n + done},
            )
            conn.execute(text("ANALYZE bench_item"))
    else:
        rows = [{"batch": batch, "state": state if i < n else "done", "version": 1} for i in range(n + done)]
        with engine.begin() as conn:
            conn.execute(BenchItem.__table__.insert(), rows)


def ids_of(engine: Engine, batch: int, limit: int) -> list[int]:
    with engine.connect() as conn:
        return list(
            conn.scalars(
                select(BenchItem.id).where(BenchItem.batch == batch, BenchItem.state != "done").limit(limit)
            )
        )


# -- (a) interactive ------------------------------------------------------------------------------


def engine_interactive(factory: sessionmaker[Session], ids: list[int], trigger: str) -> float:
    start = time.perf_counter()
    for item_id in ids:
        session = factory()
        try:
            obj = session.get(BenchItem, item_id)
            bench_workflow.fire(session, obj, trigger, actor_id=None, reason="bench")
            session.commit()
        finally:
            session.close()
    return time.perf_counter() - start


def orm_interactive(factory: sessionmaker[Session], ids: list[int], trigger: str) -> float:
    """Reference: the same ORM work without the engine (load, set the state, add the history row
    by hand, commit with the version check). Separates the engine's cost from the ORM's."""
    from workflow.models import TransitionRecord

    src, dest = ("open", "verified") if trigger == "verify" else ("verified", "open")
    start = time.perf_counter()
    for item_id in ids:
        session = factory()
        try:
            obj = session.get(BenchItem, item_id)
            assert obj is not None and obj.state == src
            obj.state = dest
            session.add(
                TransitionRecord(
                    entity=ENTITY,
                    entity_id=item_id,
                    from_state=src,
                    to_state=dest,
                    trigger=trigger,
                    reason="bench",
                )
            )
            session.commit()
        finally:
            session.close()
    return time.perf_counter() - start


def raw_interactive(engine: Engine, ids: list[int], trigger: str) -> float:
    src, dest = ("open", "verified") if trigger == "verify" else ("verified", "open")
    pg = engine.dialect.name == "postgresql"
    raw = engine.raw_connection()
    try:
        dbapi = raw.driver_connection
        cur = dbapi.cursor()
        select_sql = "SELECT state, version FROM bench_item WHERE id = ?"
        if pg:  # lock the row, as an interactive transition on PostgreSQL would
            select_sql = "SELECT state, version FROM bench_item WHERE id = ? FOR UPDATE"
        update_sql = "UPDATE bench_item SET state = ?, version = version + 1 WHERE id = ? AND version = ?"
        insert_sql = (
            "INSERT INTO transition_record (entity, entity_id, from_state, to_state, trigger, actor_id, at, "
            "reason, payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
        )
        if pg:  # psycopg2's paramstyle
            select_sql, update_sql, insert_sql = (
                q.replace("?", "%s") for q in (select_sql, update_sql, insert_sql)
            )
        start = time.perf_counter()
        for item_id in ids:
            if not pg:
                cur.execute("BEGIN")
            cur.execute(select_sql, (item_id,))
            state, version = cur.fetchone()
            if state != src:
                raise RuntimeError(f"row {item_id} is {state}, not {src}")
            cur.execute(update_sql, (dest, item_id, version))
            cur.execute(insert_sql, (ENTITY, item_id, src, dest, trigger, None, now_local(), "bench", None))
            dbapi.commit() if pg else cur.execute("COMMIT")
        elapsed = time.perf_counter() - start
        cur.close()
        return elapsed
    finally:
        raw.close()


# -- (b)/(c) bulk ---------------------------------------------------------------------------------


def engine_bulk(factory: sessionmaker[Session], batch: int, trigger: str) -> tuple[float, int]:
    session = factory()
    try:
        start = time.perf_counter()
        moved = bench_workflow.bulk_fire(session, trigger, BenchItem.batch == batch, reason="bench")
        session.commit()
        return time.perf_counter() - start, moved
    finally:
        session.close()


def raw_bulk(engine: Engine, batch: int, trigger: str) -> tuple[float, int]:
    src, dest = ("open", "verified") if trigger == "verify" else ("verified", "open")
    pg = engine.dialect.name == "postgresql"
    raw = engine.raw_connection()
    try:
        dbapi = raw.driver_connection
        cur = dbapi.cursor()
        history_sql = (
            "INSERT INTO transition_record (entity, entity_id, from_state, to_state, trigger, actor_id, at, "
            "reason, payload) SELECT ?, id, state, ?, ?, NULL, ?, ?, NULL FROM bench_item "
            "WHERE batch = ? AND state IN (?)"
        )
        update_sql = "UPDATE bench_item SET state = ?, version = version + 1 WHERE batch = ? AND state IN (?)"
        if pg:
            history_sql, update_sql = history_sql.replace("?", "%s"), update_sql.replace("?", "%s")
        start = time.perf_counter()
        if not pg:
            cur.execute("BEGIN")
        cur.execute(history_sql, (ENTITY, dest, trigger, now_local(), "bench", batch, src))
        cur.execute(update_sql, (dest, batch, src))
        moved = cur.rowcount
        dbapi.commit() if pg else cur.execute("COMMIT")
        elapsed = time.perf_counter() - start
        cur.close()
        return elapsed, moved
    finally:
        raw.close()


# -- (d) memory -----------------------------------------------------------------------------------


def retained_bytes(factory: sessionmaker[Session], n: int, with_engine: bool) -> int:
    """Bytes still allocated after firing (or plainly setting) the state of ``n`` loaded rows,
    over what the loaded rows took before."""
    session = factory()
    try:
        rows = list(session.scalars(select(BenchItem).where(BenchItem.batch == MEMORY).limit(n)))
        assert len(rows) == n
        null = NullSession()
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        for obj in rows:
            if with_engine:
                bench_workflow.fire(null, obj, "verify")  # type: ignore[arg-type]
            else:
                obj.state = "verified"
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        assert all(r.state == "verified" for r in rows)
        return after - before
    finally:
        session.rollback()
        session.close()


def per_object_machine_bytes(n: int = 1000) -> float:
    """Reference only: what one ``transitions.Machine`` per row would cost (what the engine avoids)."""

    class Plain:
        state = "open"

    objs = [Plain() for _ in range(n)]
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    machines = [
        transitions.Machine(
            model=o,
            states=bench_workflow.states,
            transitions=[
                {"trigger": t.trigger, "source": list(t.source), "dest": t.dest}
                for t in bench_workflow.transitions
            ],
            initial="open",
            auto_transitions=False,
        )
        for o in objs
    ]
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del machines
    return (after - before) / n


# -- one database ---------------------------------------------------------------------------------


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def run_database(
    label: str, url: str, rows: int, runs: int, interactive: int, mem_rows: int
) -> dict[str, Any]:
    # no pre-ping on checkout: the raw baseline does not health-check its connection either
    engine = (
        make_engine(url, pool_size=5, pool_pre_ping=False)
        if url.startswith("postgresql")
        else make_engine(url)
    )
    BenchBase.metadata.create_all(engine)
    Base.metadata.create_all(engine)  # transition_record (and what its foreign keys need)
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    small = max(rows // 10, 1)
    t0 = time.perf_counter()
    fill(engine, INTERACTIVE_ENGINE, interactive, extra_done=0)
    fill(engine, INTERACTIVE_RAW, interactive, extra_done=0)
    fill(engine, INTERACTIVE_ORM, interactive, extra_done=0)
    fill(engine, BULK_ENGINE, rows)
    fill(engine, BULK_RAW, rows)
    fill(engine, BULK_SMALL, small)
    fill(engine, BULK_RAW_SMALL, small)
    fill(engine, MEMORY, mem_rows, extra_done=0)
    print(
        f"[{label}] filled {3 * interactive + 2.2 * rows + 2.2 * small + mem_rows:,.0f} rows in {time.perf_counter() - t0:.1f} s"
    )

    # (a) interactive: engine and baseline interleaved, alternating who goes first
    eng_ids = ids_of(engine, INTERACTIVE_ENGINE, interactive)
    raw_ids = ids_of(engine, INTERACTIVE_RAW, interactive)
    engine_interactive(factory, eng_ids[:20], "verify")  # warm up (compile caches, connections)
    engine_interactive(factory, eng_ids[:20], "reopen")
    raw_interactive(engine, raw_ids[:20], "verify")
    raw_interactive(engine, raw_ids[:20], "reopen")
    orm_ids = ids_of(engine, INTERACTIVE_ORM, interactive)
    orm_interactive(factory, orm_ids[:20], "verify")
    orm_interactive(factory, orm_ids[:20], "reopen")
    e_ms: list[float] = []
    r_ms: list[float] = []
    o_ms: list[float] = []
    for run in range(runs):
        trigger = "verify" if run % 2 == 0 else "reopen"
        variants = [
            lambda trigger=trigger: e_ms.append(
                engine_interactive(factory, eng_ids, trigger) * 1000 / len(eng_ids)
            ),
            lambda trigger=trigger: r_ms.append(
                raw_interactive(engine, raw_ids, trigger) * 1000 / len(raw_ids)
            ),
            lambda trigger=trigger: o_ms.append(
                orm_interactive(factory, orm_ids, trigger) * 1000 / len(orm_ids)
            ),
        ]
        for i in range(3):  # rotate who goes first
            variants[(run + i) % 3]()
    per_row_ratio = median(e_ms) / median(r_ms)
    print(
        f"[{label}] (a) interactive, {len(eng_ids)} transitions × {runs} runs: engine {median(e_ms):.3f} ms, "
        f"raw SQL {median(r_ms):.3f} ms per transition → ×{per_row_ratio:.2f} "
        f"(plain ORM without the engine: {median(o_ms):.3f} ms, engine/ORM ×{median(e_ms) / median(o_ms):.2f})"
    )

    # (b) bulk, and (c) the small bulk for linearity, interleaved
    e_bulk: list[float] = []
    r_bulk: list[float] = []
    e_small: list[float] = []
    r_small: list[float] = []
    for run in range(runs):
        trigger = "verify" if run % 2 == 0 else "reopen"
        order = [0, 1, 2, 3] if run % 2 == 0 else [1, 0, 3, 2]
        for step in order:
            if step == 0:
                secs, moved = engine_bulk(factory, BULK_ENGINE, trigger)
                assert moved == rows, (moved, rows)
                e_bulk.append(secs)
            elif step == 1:
                secs, moved = raw_bulk(engine, BULK_RAW, trigger)
                assert moved == rows, (moved, rows)
                r_bulk.append(secs)
            elif step == 2:
                secs, moved = engine_bulk(factory, BULK_SMALL, trigger)
                assert moved == small, (moved, small)
                e_small.append(secs)
            else:  # reference only: the baseline SQL at the small size
                secs, moved = raw_bulk(engine, BULK_RAW_SMALL, trigger)
                assert moved == small, (moved, small)
                r_small.append(secs)
    bulk_ratio = median(e_bulk) / median(r_bulk)
    us_big = median(e_bulk) * 1e6 / rows
    us_small = median(e_small) * 1e6 / small
    linearity = us_big / us_small
    raw_linearity = (median(r_bulk) / rows) / (median(r_small) / small)
    print(
        f"[{label}] (b) bulk of {rows:,} rows × {runs} runs: engine {median(e_bulk):.3f} s, "
        f"hand-written SQL {median(r_bulk):.3f} s → ×{bulk_ratio:.2f}"
    )
    print(
        f"[{label}] (c) engine bulk µs/row: {us_big:.2f} at {rows:,} vs {us_small:.2f} at {small:,} "
        f"→ linearity {linearity:.2f} (hand-written SQL: {median(r_bulk) * 1e6 / rows:.2f} vs "
        f"{median(r_small) * 1e6 / small:.2f} → {raw_linearity:.2f})"
    )

    # every moved row has exactly one history row
    with engine.connect() as conn:
        hist = conn.scalar(text("SELECT count(*) FROM transition_record WHERE entity = :e"), {"e": ENTITY})
    expected = (2 * 20 + runs * len(eng_ids)) * 3 + runs * (2 * rows + 2 * small)
    assert hist == expected, (hist, expected)

    # (d) memory per loaded row
    with_engine = retained_bytes(factory, mem_rows, True)
    plain = retained_bytes(factory, mem_rows, False)
    bytes_per_row = max(0.0, (with_engine - plain) / mem_rows)
    print(
        f"[{label}] (d) {mem_rows:,} loaded rows: retained after firing {with_engine / mem_rows:.1f} B/row, "
        f"after a plain state change {plain / mem_rows:.1f} B/row → engine state {bytes_per_row:.1f} B/row; "
        f"Machine instances: 1 per workflow, models bound: {len(bench_workflow.machine.models)}"
    )
    engine.dispose()
    return {
        "per_row_ratio": round(per_row_ratio, 3),
        "bulk_ratio": round(bulk_ratio, 3),
        "linearity": round(linearity, 3),
        "bytes_per_row": round(bytes_per_row, 1),
        "interactive_ms": {
            "engine": round(median(e_ms), 4),
            "raw": round(median(r_ms), 4),
            "orm_without_engine": round(median(o_ms), 4),
        },
        "bulk_s": {"engine": round(median(e_bulk), 4), "raw": round(median(r_bulk), 4)},
        "bulk_us_per_row": {str(rows): round(us_big, 3), str(small): round(us_small, 3)},
        "raw_linearity": round(raw_linearity, 3),
        "raw_bulk_us_per_row": {
            str(rows): round(median(r_bulk) * 1e6 / rows, 3),
            str(small): round(median(r_small) * 1e6 / small, 3),
        },
        "runs_interactive_ms": {"engine": [round(x, 3) for x in e_ms], "raw": [round(x, 3) for x in r_ms]},
        "runs_bulk_s": {
            "engine": [round(x, 3) for x in e_bulk],
            "engine_small": [round(x, 4) for x in e_small],
        },
    }


def machine_info() -> dict[str, Any]:
    mem_kb = 0
    try:
        with open("/proc/meminfo") as fh:
            mem_kb = int(fh.readline().split()[1])
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "ram_gb": round(mem_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "sqlalchemy": sqlalchemy.__version__,
        "transitions": transitions.__version__,
        "sqlite": __import__("sqlite3").sqlite_version,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--rows", type=int, default=100_000, help="rows of the bulk transition (linearity uses rows/10)"
    )
    ap.add_argument("--runs", type=int, default=5, help="runs per variant; the median is reported (≥5)")
    ap.add_argument("--interactive", type=int, default=300, help="transitions per interactive run")
    ap.add_argument("--memory-rows", type=int, default=10_000, help="loaded rows for the memory measure")
    args = ap.parse_args(argv)
    if args.rows < 10 or args.runs < 1 or args.interactive < 1:
        ap.error("--rows must be ≥ 10, --runs and --interactive ≥ 1")
    import_models()
    info = machine_info()
    print("machine:", json.dumps(info))
    results: dict[str, dict[str, Any]] = {}
    mem_rows = min(args.memory_rows, args.rows)

    with tempfile.TemporaryDirectory() as tmp:
        results["sqlite"] = run_database(
            "sqlite", f"sqlite:///{tmp}/bench.sqlite", args.rows, args.runs, args.interactive, mem_rows
        )

    pg_url = os.environ.get("CAMPAIGNFLOW_DATABASE_URL", "")
    if pg_url.startswith("postgres"):
        scratch, drop = scratch_postgres(pg_url.replace("postgres://", "postgresql://", 1))
        try:
            eng = make_engine(scratch)
            with eng.connect() as conn:
                info["postgresql"] = conn.scalar(text("SHOW server_version"))
            eng.dispose()
            results["postgresql"] = run_database(
                "postgresql", scratch, args.rows, args.runs, args.interactive, mem_rows
            )
        finally:
            drop()

    reference = per_object_machine_bytes()
    print(
        f"reference: one transitions.Machine per row would cost {reference:,.0f} B/row (the engine builds none)"
    )
    main_db = "postgresql" if "postgresql" in results else "sqlite"
    top = results[main_db]
    out = {
        "bench": "transitions",
        "per_row_ratio": top["per_row_ratio"],
        "bulk_ratio": top["bulk_ratio"],
        "linearity": top["linearity"],
        "bytes_per_row": top["bytes_per_row"],
        "database": main_db,
        "rows": args.rows,
        "runs": args.runs,
        "results": results,
        "machine": info,
        "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    print(json.dumps(out, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
