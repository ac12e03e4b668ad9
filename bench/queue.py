"""Benchmark of the task queue (issue 5 item 9; PERFORMANCE.md).

    python bench/queue.py [--tasks N] [--staff S] [--queries Q] [--completions C] [--concurrency K]

1. A scratch database (``CAMPAIGNFLOW_DATABASE_URL`` PostgreSQL: a database created and dropped;
   unset: a temporary SQLite file), migrated; S staff in 5 branches, 20 customers per staff, one
   active campaign, N tasks spread over 21 due dates (30 % open), set-based (INSERT … SELECT over
   a recursive CTE).
2. The my-queue query: :func:`tasks.queue.my_queue` (4 sections + the counts, without the
   contact suggestion) for random staff, p50/p99 in ms; and the "today" section as the product
   runs it (:func:`tasks.queue.section_select` executed through the session, rows turned into
   cards by :func:`tasks.queue.cards`) against the very same SQL text executed bare on the driver
   connection (all rows fetched): ``query_ratio`` = product p50 / bare p50.
3. Task completions per second through the JSON API (``POST /api/v1/queue/tasks/<id>/complete``
   with a follow-up) from K client threads against the app served by werkzeug on loopback.

Last line JSON: ``{"bench": "queue", "p50_ms": …, "p99_ms": …, "query_ratio": …, "completions_per_s": …}``
"""

from __future__ import annotations

import sys
from pathlib import Path

# this file is named queue.py: keep its folder off sys.path so the standard library's ``queue`` wins
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse  # noqa: E402
import datetime as dt  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def scratch_database() -> tuple[str, object]:
    """A URL of a fresh database and a cleanup function."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    url = os.environ.get("CAMPAIGNFLOW_DATABASE_URL", "")
    if url.startswith("postgres"):
        name = f"bench_queue_{uuid.uuid4().hex[:8]}"
        admin = create_engine(make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        scratch = make_url(url).set(database=name).render_as_string(hide_password=False)

        def drop() -> None:
            from config.database import db

            db.session.remove()
            if db.engine is not None:
                db.engine.dispose()
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

        return scratch, drop
    folder = tempfile.mkdtemp(prefix="bench-queue-")
    return f"sqlite:///{folder}/bench.sqlite", lambda: None


def populate(url: str, n_tasks: int, n_staff: int) -> dict[str, object]:
    from sqlalchemy import text

    from config import clock
    from config.database import db, now_local
    from config.migrate import upgrade

    upgrade(url)
    engine = db.configure(url)
    today = clock.today()
    now = now_local()
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO branch (id, code, name) VALUES (1, 'U00', 'union')"))
        for b in range(2, 7):
            conn.execute(
                text("INSERT INTO branch (id, code, name, parent_id) VALUES (:i, :c, :n, 1)"),
                {"i": b, "c": f"B0{b - 1}", "n": f"branch {b}"},
            )
        staff_rows = [
            {"i": i, "no": f"M{i:05d}", "n": f"经理{i}", "b": 2 + i % 5, "c": now}
            for i in range(1, n_staff + 1)
        ]
        conn.execute(
            text(
                "INSERT INTO staff (id, staff_no, name, branch_id, status, senior, capacity, failed_logins, session_epoch, created_at) "
                "VALUES (:i, :no, :n, :b, 'active', false, 400, 0, 0, :c)"
            ),
            staff_rows,
        )
        conn.execute(
            text("INSERT INTO staff_role (staff_id, role) SELECT id, 'manager' FROM staff"),
        )
        n_customers = n_staff * 20
        tiers = ("vip", "high", "mass", "mass", "mass")
        conn.execute(
            text(
                "INSERT INTO customer (id, customer_no, type, name, tags, branch_id, manager_id, do_not_contact, "
                "marketing_consent, lifecycle, is_key, tier, created_at, updated_at) "
                "VALUES (:i, :no, 'individual', :n, '[]', :b, :m, false, true, 'active', false, :t, :c, :c)"
            ),
            [
                {
                    "i": i,
                    "no": f"C{i:09d}",
                    "n": f"客户{i}",
                    "b": 2 + ((i % n_staff) + 1) % 5,
                    "m": (i % n_staff) + 1,
                    "t": tiers[i % 5],
                    "c": now,
                }
                for i in range(1, n_customers + 1)
            ],
        )
        conn.execute(
            text(
                "INSERT INTO campaign (id, code, name, kind, owner_id, all_branches, start_date, end_date, population, "
                "task_templates, rules, rules_none, priority, state, created_at, version) VALUES "
                "(1, 'BENCH', 'bench', 'deposit_drive', 1, true, :s, :e, '{}', '[]', '[]', true, 5, 'active', :c, 1)"
            ),
            {"s": today - dt.timedelta(days=30), "e": today + dt.timedelta(days=60), "c": now},
        )
        per_day = max(1, n_tasks // 21)
        for offset in range(-10, 11):
            conn.execute(
                text(
                    "WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < :per) "
                    "INSERT INTO task (kind, title, campaign_id, customer_id, branch_id, staff_id, due_on, priority, state, "
                    "source, version, created_at) "
                    "SELECT 'contact', 'bench task', 1, ((n * 7 + :off) % :nc) + 1, 2 + (((n * 7 + :off) % :ns) + 1) % 5, "
                    "((n * 7 + :off) % :ns) + 1, :due, n % 3, CASE WHEN (n / :ns) % 10 < 7 THEN 'done' ELSE 'open' END, "
                    "'template', 1, :c FROM seq"
                ),
                {
                    "per": per_day,
                    "off": offset + 10,
                    "nc": n_customers,
                    "ns": n_staff,
                    "due": today + dt.timedelta(days=offset),
                    "c": now,
                },
            )
        if engine.dialect.name == "sqlite":
            conn.execute(text("ANALYZE"))
    if engine.dialect.name == "postgresql":
        # what autovacuum does to a table after a bulk load: statistics and the visibility map
        # (index-only scans of the queue index need it)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
    return {"engine": engine, "today": today}


def measure_queries(n_staff: int, n_queries: int, today: dt.date) -> dict[str, float]:
    from config.database import db
    from tasks import queue

    rng = random.Random(5)
    full, orm, bare = [], [], []
    session = db.session()
    raw = db.engine.connect()
    dialect = raw.dialect.name
    for i in range(n_queries + 20):
        sid = rng.randint(1, n_staff)
        t0 = time.perf_counter()
        queue.my_queue(session, sid, today, limit=50, suggest=False)
        queue.counts(session, sid, today)
        t1 = time.perf_counter()
        # the baseline: the very same statement, compiled once, executed bare on the driver
        bare_sql = str(
            queue.section_select(sid, "today", today, 50, dialect).compile(
                dialect=raw.dialect, compile_kwargs={"literal_binds": True}
            )
        )
        t2 = time.perf_counter()
        queue.cards(
            session.execute(queue.section_select(sid, "today", today, 50, dialect)), sid, today, suggest=False
        )
        t3 = time.perf_counter()
        raw.exec_driver_sql(bare_sql).all()
        t4 = time.perf_counter()
        session.expunge_all()
        if i >= 20:  # warm-up excluded
            full.append((t1 - t0) * 1000)
            orm.append((t3 - t2) * 1000)
            bare.append((t4 - t3) * 1000)
    raw.close()
    session.close()
    return {
        "p50_ms": round(statistics.median(full), 2),
        "p99_ms": round(_pct(full, 99), 2),
        "orm_p50_ms": round(statistics.median(orm), 3),
        "bare_p50_ms": round(statistics.median(bare), 3),
        "query_ratio": round(statistics.median(orm) / statistics.median(bare), 2),
    }


def measure_completions(url: str, n_staff: int, completions: int, concurrency: int, today: dt.date) -> float:
    import logging
    import urllib.error
    import urllib.request

    logging.getLogger("werkzeug").setLevel(logging.ERROR)

    from sqlalchemy import select
    from werkzeug.serving import make_server

    from config.database import db
    from config.settings import Settings
    from org.services import issue_token
    from tasks.models import Task
    from web import create_app

    instance = tempfile.mkdtemp(prefix="bench-queue-instance-")
    settings = Settings.from_env(
        {
            "CAMPAIGNFLOW_DATABASE_URL": url,
            "CAMPAIGNFLOW_INSTANCE_DIR": instance,
            "CAMPAIGNFLOW_SECRET_KEY": "bench-secret-key-0123456789",
            "CAMPAIGNFLOW_CELERY_EAGER": "1",
            "CAMPAIGNFLOW_NOTIFIERS": "inapp",
        }
    )
    app = create_app({"RATELIMIT_ENABLED": False}, settings=settings)
    session = db.session()
    staff_ids = list(range(1, min(n_staff, concurrency * 4) + 1))
    tokens = {
        sid: issue_token(session, session.get(__import__("org.models", fromlist=["Staff"]).Staff, sid))
        for sid in staff_ids
    }
    work: list[tuple[str, int]] = []
    for sid in staff_ids:
        ids = session.scalars(
            select(Task.id)
            .where(Task.staff_id == sid, Task.state == "open")
            .limit(completions // len(staff_ids) + 1)
        ).all()
        work += [(tokens[sid], tid) for tid in ids]
    session.commit()
    db.session.remove()
    work = work[:completions]
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_port}"
    body = json.dumps({"channel": "phone", "content": "bench follow-up", "reaction": "neutral"}).encode()
    lock = threading.Lock()
    done = [0]
    errors: list[str] = []

    retries = [0]

    def post(token: str, tid: int) -> bool:
        """One completion; a 409 (a concurrent writer, e.g. SQLite's single write lock) is retried
        as a mobile client would, up to 5 times."""
        for attempt in range(6):
            req = urllib.request.Request(
                f"{base}/api/v1/queue/tasks/{tid}/complete",
                data=body,
                method="POST",
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            )
            try:
                with urllib.request.urlopen(req, timeout=30) as resp:
                    return bool(resp.status == 200)
            except urllib.error.HTTPError as exc:
                if exc.code != 409 or attempt == 5:
                    raise
                with lock:
                    retries[0] += 1
                time.sleep(0.005 * (attempt + 1))
        return False

    def worker(items: list[tuple[str, int]]) -> None:
        for token, tid in items:
            try:
                ok = post(token, tid)
            except urllib.error.HTTPError as exc:
                ok = False
                errors.append(f"{exc.code} {exc.read()[:300]!r}")
            except OSError as exc:
                ok = False
                errors.append(str(exc))
            if ok:
                with lock:
                    done[0] += 1

    chunks = [work[i::concurrency] for i in range(concurrency)]
    threads = [threading.Thread(target=worker, args=(c,)) for c in chunks]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    server.shutdown()
    if errors:
        print(f"  {len(errors)} completion errors, first: {errors[0]}", file=sys.stderr)
    print(f"  {done[0]} completions, {retries[0]} retries after 409 (concurrent writers)")
    return round(done[0] / elapsed, 1) if elapsed else 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=200_000)
    parser.add_argument("--staff", type=int, default=200)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--completions", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args(argv)
    os.environ.setdefault("CAMPAIGNFLOW_NOTIFIERS", "inapp")
    from config.database import import_models

    import_models()
    url, cleanup = scratch_database()
    dialect = url.split(":")[0]
    try:
        t0 = time.perf_counter()
        state = populate(url, args.tasks, args.staff)
        print(
            f"populated {args.tasks} tasks / {args.staff} staff on {dialect} in {time.perf_counter() - t0:.1f} s"
        )
        q = measure_queries(args.staff, args.queries, state["today"])  # type: ignore[arg-type]
        print(
            f"my queue (4 sections + counts): p50 {q['p50_ms']} ms, p99 {q['p99_ms']} ms; "
            f"'today' section (product path) p50 {q['orm_p50_ms']} ms vs bare SQL {q['bare_p50_ms']} ms: ratio {q['query_ratio']}"
        )
        cps = measure_completions(url, args.staff, args.completions, args.concurrency, state["today"])  # type: ignore[arg-type]
        print(f"API completions with a follow-up: {cps}/s with {args.concurrency} clients on loopback")
    finally:
        cleanup()  # type: ignore[operator]
    print(
        json.dumps(
            {
                "bench": "queue",
                "p50_ms": q["p50_ms"],
                "p99_ms": q["p99_ms"],
                "query_ratio": q["query_ratio"],
                "completions_per_s": cps,
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
