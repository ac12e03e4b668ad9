"""Cost of keeping ``ledger_total`` (migration 0004) on a COPY of events, and the totals' read.

    python bench/ledger_totals.py [--events 1000000] [--chunk 200000] [--repeat 3]

PostgreSQL only (``CAMPAIGNFLOW_DATABASE_URL``; a scratch database is created and dropped beside
it). The union of bench/incentives.py (1 000 staff, 20 campaigns) is seeded, then ``--events``
events are COPYed in ``--chunk``-row statements (as bench/incentives.py seeds), each round into a
month of its own: with the statement trigger, and with it disabled (``ALTER TABLE … DISABLE
TRIGGER``), interleaved, ``--repeat`` times each. Also timed: the month's GROUP BY
(staff, campaign, measure) over the events against the same figures read from ``ledger_total``.

The last line is JSON: {"bench": "ledger_totals", "copy_s", "copy_no_trigger_s", "overhead", …}.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import io
import json
import os
import random
import statistics
import sys
import time
import uuid
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

_spec = importlib.util.spec_from_file_location("bench_incentives", _HERE / "incentives.py")
assert _spec is not None and _spec.loader is not None
incentives = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(incentives)


def copy_events(raw, month: str, n: int, chunk: int, staff: list[int], camps: list[int], tag: str) -> float:  # noqa: ANN001
    """COPY n events of ``month`` in chunks (one statement and commit each); seconds taken."""
    rng = random.Random(7)
    first = dt.date.fromisoformat(f"{month}-01")
    stamp = dt.datetime.now().isoformat(sep=" ")
    buffers = []
    for start in range(0, n, chunk):
        lines = []
        for k in range(start, min(start + chunk, n)):
            measure = incentives.MEASURES[rng.randrange(4)]
            amount = f"{rng.randrange(1000, 500000) / 100:.2f}" if measure == "payroll_volume" else "0.00"
            day = first + dt.timedelta(days=rng.randrange(28))
            cid = camps[rng.randrange(len(camps))] if rng.random() < 0.9 else r"\N"
            lines.append(
                f"{tag}{k:09d}\t{day}\t{month}\t{staff[rng.randrange(len(staff))]}\t{cid}\t{measure}\t"
                f"{0 if measure == 'payroll_volume' else 1}\t{amount}\timport\t{stamp}\n"
            )
        buffers.append("".join(lines))
    cur = raw.cursor()
    t0 = time.perf_counter()
    for buf in buffers:
        cur.copy_expert(
            "COPY ledger_event (event_id, occurred_on, month, staff_id, campaign_id, measure, quantity, amount, "
            "source, created_at) FROM STDIN",
            io.StringIO(buf),
        )
        raw.commit()
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--chunk", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--fillfactor", type=int, default=None, help="experiment: ledger_total's fillfactor")
    args = parser.parse_args()

    from config.database import db, import_models
    from config.migrate import upgrade

    import_models()
    base_url = os.environ.get("CAMPAIGNFLOW_DATABASE_URL", "")
    if not base_url.startswith("postgres"):
        sys.exit("bench/ledger_totals.py needs CAMPAIGNFLOW_DATABASE_URL=postgresql://…")
    name = f"bench_totals_{uuid.uuid4().hex[:8]}"
    admin = create_engine(make_url(base_url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(base_url).set(database=name).render_as_string(hide_password=False)
    try:
        upgrade(url)
        incentives.seed(url, 0, 1000, 20, "2020-01")
        engine = db.engine
        with engine.connect() as conn:
            staff = [r[0] for r in conn.execute(text("SELECT id FROM staff ORDER BY id"))]
            camps = [r[0] for r in conn.execute(text("SELECT id FROM campaign ORDER BY id"))]
        raw = engine.raw_connection()
        with_t, without_t = [], []
        try:
            cur = raw.cursor()
            if args.fillfactor:
                cur.execute(f"ALTER TABLE ledger_total SET (fillfactor = {int(args.fillfactor)})")
                raw.commit()
            for i in range(args.repeat):
                for trigger in (True, False):
                    month = f"{2001 + i:04d}-{1 if trigger else 2:02d}"
                    cur.execute(
                        f"ALTER TABLE ledger_event {'ENABLE' if trigger else 'DISABLE'} TRIGGER ledger_event_totals"
                    )
                    raw.commit()
                    took = copy_events(
                        raw, month, args.events, args.chunk, staff, camps, f"{'T' if trigger else 'N'}{i}-"
                    )
                    (with_t if trigger else without_t).append(took)
                    print(
                        f"COPY {args.events:,} events {'with' if trigger else 'without'} trigger: {took:.2f}s",
                        file=sys.stderr,
                    )
            cur.execute("ALTER TABLE ledger_event ENABLE TRIGGER ledger_event_totals")
            cur.execute("ANALYZE")
            raw.commit()
            month = "2001-01"
            group_sql = (
                "SELECT staff_id, campaign_id, measure, sum(quantity), sum(amount), count(customer_id) "
                "FROM ledger_event WHERE month = %s GROUP BY staff_id, campaign_id, measure"
            )
            totals_sql = (
                "SELECT staff_id, campaign_id, measure, quantity, amount, customer_events "
                "FROM ledger_total WHERE month = %s"
            )
            times: dict[str, list[float]] = {"events": [], "totals": []}
            for _ in range(args.repeat):
                for label, sql in (("events", group_sql), ("totals", totals_sql)):
                    t0 = time.perf_counter()
                    cur.execute(sql, (month,))
                    rows = cur.fetchall()
                    times[label].append(time.perf_counter() - t0)
                raw.commit()
            print(f"{len(rows):,} total rows in the month", file=sys.stderr)
            time.sleep(1)  # let the statistics collector catch up
            cur.execute(
                "SELECT n_tup_upd, n_tup_hot_upd, pg_total_relation_size('ledger_total') "
                "FROM pg_stat_user_tables WHERE relname = 'ledger_total'"
            )
            upd, hot, size = cur.fetchone()
            raw.commit()
        finally:
            raw.close()
        from appraisal.ledger import check_totals

        with db.transaction() as session:
            t0 = time.perf_counter()
            assert check_totals(session, month) == []
            check_s = time.perf_counter() - t0
        c, n = statistics.median(with_t), statistics.median(without_t)
        ge, gt = statistics.median(times["events"]), statistics.median(times["totals"])
        print(
            f"COPY {args.events:,} events: {c:.2f}s with the trigger, {n:.2f}s without (overhead {c / n - 1:+.0%}); "
            f"month read: GROUP BY events {ge:.3f}s, ledger_total {gt:.3f}s; check_totals of the month {check_s:.2f}s; "
            f"ledger_total: {upd:,} updates, {hot / max(upd, 1):.0%} HOT, {size / 1e6:.1f} MB",
            file=sys.stderr,
        )
        print(
            json.dumps(
                {
                    "bench": "ledger_totals",
                    "events": args.events,
                    "chunk": args.chunk,
                    "copy_s": round(c, 2),
                    "copy_no_trigger_s": round(n, 2),
                    "overhead": round(c / n - 1, 3),
                    "group_by_events_s": round(ge, 3),
                    "read_totals_s": round(gt, 3),
                    "check_month_s": round(check_s, 2),
                    "hot_update_share": round(hot / max(upd, 1), 3),
                    "fillfactor": args.fillfactor,
                }
            )
        )
    finally:
        db.session.remove()
        if db.engine is not None:
            db.engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main()
