"""Benchmark of the monthly incentive run (PERFORMANCE.md P1, P2, P12–P14; issue 6 item 9).

    python bench/incentives.py [--events N] [--staff 1000] [--campaigns 20] [--repeat 5]

Database: ``CAMPAIGNFLOW_DATABASE_URL`` (PostgreSQL: a scratch database is created and dropped
beside it) or, unset, a temporary SQLite file. Default size: 1 000 000 events on PostgreSQL,
200 000 on SQLite (the issue's 10 000 000 is ``--events 10000000``).

Measured, each the median of ``--repeat`` runs, baseline and candidate interleaved:

* baseline — one bare ``SELECT staff_id, measure, count(*), sum(quantity), sum(amount) …
  WHERE month = ? GROUP BY staff_id, measure`` fetched to the client;
* candidate — :func:`appraisal.runs.compute_run` end to end (aggregate, rules, budget, one
  insert of every line, commit); each is a recompute (the warm-up computes the month first), so
  it also deletes the previous computation's lines; ``statement_line`` is vacuumed (untimed)
  before each, as autovacuum would between two recomputes made minutes apart;
* statements — SQL statements one run issues (``before_cursor_execute``);
* pandas — ``read_sql`` of the month's events and a ``groupby``, if pandas is installed (it is
  not a dependency of the project: reported as null otherwise);
* peak_mb — peak Python memory allocated during one run (tracemalloc), which is what grows if
  the run ever loads events instead of aggregates.

The last line is JSON: {"bench": "incentives", "sql_ratio", "statements", "pandas_ratio", "peak_mb"}.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import random
import statistics
import sys
import tempfile
import time
import tracemalloc
import uuid
from decimal import Decimal
from pathlib import Path

# bench/ itself must not be importable by name (bench/transitions.py would shadow the library)
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

from sqlalchemy import create_engine, event, insert, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

MEASURES = ("accounts_opened", "payroll_accounts", "digital_activations", "payroll_volume")


def rules_for(i: int) -> list[dict[str, object]]:
    return [
        {"id": "acc", "kind": "piece_rate", "measure": "accounts_opened", "rate": "20", "cap": "3000"},
        {"id": "pay", "kind": "piece_rate", "measure": "payroll_accounts", "rate": "15"},
        {
            "id": "dig",
            "kind": "tiered",
            "mode": "whole",
            "measure": "digital_activations",
            "brackets": [{"from": 0, "to": 20, "rate": "2"}, {"from": 20, "rate": "3"}],
        },
        {
            "id": "vol",
            "kind": "tiered",
            "mode": "marginal",
            "measure": "payroll_volume",
            "brackets": [{"from": 0, "to": 100000, "rate": "0.001"}, {"from": 100000, "rate": "0.002"}],
        },
        {
            "id": "bonus",
            "kind": "attainment_bonus",
            "measure": "accounts_opened",
            "thresholds": [{"at": "1.0", "amount": "300"}, {"at": "1.2", "amount": "500"}],
        },
        {"id": "late", "kind": "penalty", "measure": "tasks_overdue", "rate": "20", "floor": "100"},
    ]


def seed(url: str, n_events: int, n_staff: int, n_campaigns: int, month: str) -> None:
    from appraisal.ledger import month_bounds
    from campaigns.models import Campaign, Target
    from config.database import db
    from org.models import Branch, Staff, StaffRole

    rng = random.Random(20261130)
    first, last = month_bounds(month)
    engine = db.configure(url)
    with db.transaction() as s:
        root = Branch(code="U00", name="联社")
        s.add(root)
        s.flush()
        branches = [Branch(code=f"B{i:02d}", name=f"信用社{i}", parent_id=root.id) for i in range(1, 21)]
        s.add_all(branches)
        s.flush()
        s.execute(
            insert(Staff),
            [
                {"staff_no": f"M{i:05d}", "name": f"经理{i}", "branch_id": branches[i % len(branches)].id}
                for i in range(n_staff)
            ],
        )
        staff_ids = [sid for (sid,) in s.execute(text("SELECT id FROM staff ORDER BY id"))]
        s.execute(insert(StaffRole), [{"staff_id": sid, "role": "manager"} for sid in staff_ids])
        director = Staff(staff_no="D0001", name="主任", branch_id=root.id)
        s.add(director)
        s.flush()
        camp_ids = []
        for i in range(n_campaigns):
            c = Campaign(
                code=f"C{i:03d}",
                name=f"活动{i}",
                kind="deposit_drive",
                owner_id=director.id,
                all_branches=True,
                start_date=first,
                end_date=last + dt.timedelta(days=60),
                rules=rules_for(i),
                state="active",
                budget=Decimal(400000) if i % 4 == 0 else None,
            )
            s.add(c)
            s.flush()
            camp_ids.append(c.id)
            for b in branches:
                s.add(
                    Target(
                        campaign_id=c.id,
                        measure="accounts_opened",
                        branch_id=b.id,
                        value=Decimal(5 * 50),
                        split="by_headcount",
                    )
                )
    days = (last - first).days + 1
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        chunk = 200_000
        for start in range(0, n_events, chunk):
            rows = []
            for k in range(start, min(start + chunk, n_events)):
                measure = MEASURES[rng.randrange(4)]
                amount = f"{rng.randrange(1000, 500000) / 100:.2f}" if measure == "payroll_volume" else "0.00"
                qty = 0 if measure == "payroll_volume" else 1
                day = first + dt.timedelta(days=rng.randrange(days))
                rows.append(
                    (
                        f"E{k:09d}",
                        day.isoformat(),
                        month,
                        staff_ids[rng.randrange(len(staff_ids))],
                        camp_ids[rng.randrange(len(camp_ids))],
                        measure,
                        qty,
                        amount,
                        "import",
                    )
                )
            if engine.dialect.name == "postgresql":
                stamp = dt.datetime.now().isoformat(sep=" ")
                buf = io.StringIO("".join("\t".join(map(str, (*r, stamp))) + "\n" for r in rows))
                cur.copy_expert(
                    "COPY ledger_event (event_id, occurred_on, month, staff_id, campaign_id, measure, quantity, amount, source, created_at) FROM STDIN",
                    buf,
                )
            else:
                cur.executemany(
                    "INSERT INTO ledger_event (event_id, occurred_on, month, staff_id, campaign_id, measure, quantity, amount, source, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, CURRENT_TIMESTAMP)",
                    rows,
                )
            raw.commit()
        if engine.dialect.name == "postgresql":
            cur.execute("ANALYZE")
        else:
            cur.execute("ANALYZE")
        raw.commit()
    finally:
        raw.close()


def median_time(fn, repeat: int) -> float:  # noqa: ANN001
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=None)
    parser.add_argument("--staff", type=int, default=1000)
    parser.add_argument("--campaigns", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    from appraisal import ledger, runs
    from config import clock
    from config.database import db, import_models
    from config.migrate import upgrade

    import_models()
    base_url = os.environ.get("CAMPAIGNFLOW_DATABASE_URL", "")
    tmp = None
    admin = None
    if base_url.startswith("postgres"):
        name = f"bench_incentives_{uuid.uuid4().hex[:8]}"
        admin = create_engine(make_url(base_url).set(database="postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(base_url).set(database=name).render_as_string(hide_password=False)
        default_events = 1_000_000
    else:
        tmp = tempfile.TemporaryDirectory()
        url = f"sqlite:///{tmp.name}/bench.sqlite"
        default_events = 200_000
    n_events = args.events or default_events
    month = ledger.previous_month(ledger.month_of(clock.today()))
    try:
        upgrade(url)
        t0 = time.perf_counter()
        seed(url, n_events, args.staff, args.campaigns, month)
        print(
            f"seeded {n_events:,} events, {args.staff} staff, {args.campaigns} campaigns in {time.perf_counter() - t0:.1f}s "
            f"on {db.engine.dialect.name}",
            file=sys.stderr,
        )
        baseline_sql = text(
            "SELECT staff_id, measure, count(*), sum(quantity), sum(amount) FROM ledger_event "
            "WHERE month = :m GROUP BY staff_id, measure"
        )

        def baseline() -> None:
            with db.engine.connect() as conn:
                conn.execute(baseline_sql, {"m": month}).fetchall()

        def candidate() -> None:
            with db.transaction() as session:
                runs.compute_run(session, month)

        def vacuum_lines() -> None:
            """What autovacuum does between two recomputes of a month (minutes apart, not seconds):
            without it each back-to-back recompute deletes its predecessor's lines through the dead
            rows of all earlier ones. Not timed."""
            if db.engine.dialect.name == "postgresql":
                with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                    conn.execute(text("VACUUM statement_line"))

        candidate()  # warm up (and create the run row)
        baseline()
        base_times, cand_times = [], []
        for _ in range(args.repeat):  # interleaved
            base_times.append(median_time(baseline, 1))
            vacuum_lines()
            cand_times.append(median_time(candidate, 1))
        b, c = statistics.median(base_times), statistics.median(cand_times)

        count = [0]

        def counter(*_a: object, **_k: object) -> None:
            count[0] += 1

        event.listen(db.engine, "before_cursor_execute", counter)
        candidate()
        event.remove(db.engine, "before_cursor_execute", counter)

        tracemalloc.start()
        candidate()
        peak_mb = tracemalloc.get_traced_memory()[1] / 1e6
        tracemalloc.stop()

        with db.transaction() as session:
            run = runs.get_run(session, month)
            lines, total = run.line_count, run.total
        pandas_ratio = None
        try:
            import pandas as pd  # not a project dependency
        except ImportError:
            print("pandas is not installed: pandas_ratio is null", file=sys.stderr)
        else:

            def with_pandas() -> None:
                with db.engine.connect() as conn:
                    frame = pd.read_sql(
                        text("SELECT staff_id, measure, quantity, amount FROM ledger_event WHERE month = :m"),
                        conn,
                        params={"m": month},
                    )
                frame.groupby(["staff_id", "measure"]).agg({"quantity": "sum", "amount": "sum"})

            pandas_ratio = round(median_time(with_pandas, args.repeat) / c, 2)
        print(
            f"baseline GROUP BY {b:.3f}s · incentive run {c:.3f}s ({lines:,} lines, total {total}) · "
            f"ratio {c / b:.2f} · {count[0]} statements · peak {peak_mb:.1f} MB",
            file=sys.stderr,
        )
        print(
            json.dumps(
                {
                    "bench": "incentives",
                    "sql_ratio": round(c / b, 2),
                    "statements": count[0],
                    "pandas_ratio": pandas_ratio,
                    "peak_mb": round(peak_mb, 1),
                    "events": n_events,
                    "staff": args.staff,
                    "campaigns": args.campaigns,
                    "database": db.engine.dialect.name,
                }
            )
        )
    finally:
        db.session.remove()
        if db.engine is not None:
            db.engine.dispose()
        if admin is not None:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
        if tmp is not None:
            tmp.cleanup()


if __name__ == "__main__":
    main()
