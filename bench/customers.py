"""Benchmark of the customer base (issue 3 item 9; PERFORMANCE.md P4/P5).

    python bench/customers.py [--customers N] [--months 12] [--keep]

1. Generates ``customers.csv`` (N rows, valid resident IDs, tags) and ``snapshots.csv``
   (N × months rows) in a temporary folder.
2. Baseline: the bare database loads the same files into the same tables —
   PostgreSQL ``COPY`` into a temporary table then one ``INSERT … SELECT`` mapping branch codes /
   customer numbers to ids; SQLite ``executemany`` in one transaction with the mapping done in a
   dict. Then the tables are emptied.
3. :func:`customers.imports.import_file` imports both files (validation, staging, checks,
   upserts) in a child process, whose peak RSS is the ``peak_mb`` figure (the parent holds the
   generator; the child only the import).
4. Contribution/tier recompute: :func:`customers.contribution.recompute` against the same single
   SQL statement executed bare on the driver connection.

Database: ``CAMPAIGNFLOW_DATABASE_URL`` (PostgreSQL: a scratch database is created and dropped)
or, when unset, a temporary SQLite file. The last line is JSON::

    {"bench": "customers", "import_ratio": …, "peak_mb": …, "recompute_ratio": …}
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import multiprocessing
import os
import random
import sqlite3
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# bench/ holds scripts named like standard modules (queue.py): keep it off the import path
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

BRANCHES = ["B01", "B02", "B03", "B04", "B05"]
TAGS = ["returning_migrant_worker", "self_employed", "civil_servant", "farmer", "institution_employee"]
SURNAMES = "王李张刘陈杨黄赵周吴徐孙胡朱高林何郭马罗"
GIVEN = "晓燕国强丽华建军秀英志明春梅德华玉兰文杰海燕俊峰"


# ---------------------------------------------------------------------------------------------
# Data


def month_ends(months: int, last: dt.date = dt.date(2026, 10, 31)) -> list[dt.date]:
    out = []
    year, month = last.year, last.month
    for _ in range(months):
        first_next = dt.date(year + (month == 12), month % 12 + 1, 1)
        out.append(first_next - dt.timedelta(days=1))
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return sorted(out)


def generate(folder: Path, customers: int, months: int) -> tuple[Path, Path]:
    from customers.identity import id_check_char

    rng = random.Random(20261130)
    cpath, spath = folder / "customers.csv", folder / "snapshots.csv"
    dates = month_ends(months)
    with (
        open(cpath, "w", encoding="utf-8", newline="") as cf,
        open(spath, "w", encoding="utf-8", newline="") as sf,
    ):
        cw, sw = csv.writer(cf), csv.writer(sf)
        cw.writerow(
            [
                "customer_no",
                "type",
                "name",
                "id_number",
                "phone",
                "gender",
                "birth_date",
                "area",
                "tags",
                "branch_code",
            ]
        )
        sw.writerow(
            ["customer_no", "as_of", "deposit_demand", "deposit_time", "loan", "wealth", "risk_status"]
        )
        for n in range(1, customers + 1):
            no = f"C{n:08d}"
            birth = dt.date(1950, 1, 1) + dt.timedelta(days=rng.randrange(0, 365 * 55))
            seq = f"{rng.randrange(0, 1000):03d}"
            first = "510722" + birth.strftime("%Y%m%d") + seq
            id_number = first + id_check_char(first)
            gender = "M" if int(seq[2]) % 2 else "F"
            tags = ";".join(rng.sample(TAGS, rng.randrange(0, 3)))
            cw.writerow(
                [
                    no,
                    "individual",
                    rng.choice(SURNAMES) + rng.choice(GIVEN) + rng.choice(GIVEN),
                    id_number,
                    f"13{rng.randrange(0, 10**9):09d}",
                    gender,
                    birth.isoformat(),
                    rng.choice(("urban", "rural")),
                    tags,
                    rng.choice(BRANCHES),
                ]
            )
            base = rng.randrange(0, 500_000)
            for day in dates:
                demand = max(base + rng.randrange(-20_000, 20_000), 0)
                sw.writerow(
                    [
                        no,
                        day.isoformat(),
                        f"{demand}.{rng.randrange(100):02d}",
                        f"{base * 2}.00",
                        f"{rng.choice((0, 0, 0, 50_000))}.00",
                        "0",
                        "normal",
                    ]
                )
    return cpath, spath


# ---------------------------------------------------------------------------------------------
# Database


def prepare(url: str) -> None:
    from sqlalchemy import text

    from config.database import db, import_models
    from config.migrate import upgrade

    import_models()
    upgrade(url)
    engine = db.configure(url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO branch (code, name, parent_id) VALUES ('U00', '县联社', NULL)"))
        for code in BRANCHES:
            conn.execute(
                text(
                    "INSERT INTO branch (code, name, parent_id) SELECT :c, :n, id FROM branch WHERE code = 'U00'"
                ),
                {"c": code, "n": f"{code} 信用社"},
            )


def clear(url: str) -> None:
    from sqlalchemy import text

    from config.database import db

    with db.configure(url).begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("TRUNCATE customer RESTART IDENTITY CASCADE"))
            return
        for table in ("snapshot", "customer_tag", "holding", "alert", "customer"):
            conn.execute(text(f"DELETE FROM {table}"))  # noqa: S608 - constant names


def baseline_pg(url: str, cpath: Path, spath: Path) -> float:
    """COPY the files into temp tables, then one INSERT … SELECT per target table."""
    from config.database import db

    engine = db.configure(url)
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        start = time.perf_counter()
        cur.execute(
            "CREATE TEMP TABLE bc (customer_no text, type text, name text, id_number text, phone text,"
            " gender text, birth_date date, area text, tags text, branch_code text)"
        )
        with open(cpath, encoding="utf-8") as f:
            cur.copy_expert("COPY bc FROM STDIN WITH (FORMAT csv, HEADER true)", f)
        cur.execute(
            "INSERT INTO customer (customer_no, type, name, id_number, phone, gender, birth_date, area, tags,"
            " branch_id, do_not_contact, marketing_consent, lifecycle, is_key, created_at, updated_at)"
            " SELECT bc.customer_no, bc.type, bc.name, bc.id_number, bc.phone, bc.gender, bc.birth_date, bc.area,"
            " COALESCE(to_json(string_to_array(NULLIF(bc.tags, ''), ';')), '[]'::json), b.id, false, true, 'active', false, now(), now()"
            " FROM bc JOIN branch b ON b.code = bc.branch_code"
        )
        cur.execute(
            "CREATE TEMP TABLE bs (customer_no text, as_of date, deposit_demand numeric, deposit_time numeric,"
            " loan numeric, wealth numeric, risk_status text)"
        )
        with open(spath, encoding="utf-8") as f:
            cur.copy_expert("COPY bs FROM STDIN WITH (FORMAT csv, HEADER true)", f)
        cur.execute(
            "INSERT INTO snapshot (customer_id, as_of, deposit_demand, deposit_time, loan, wealth, risk_status)"
            " SELECT c.id, bs.as_of, bs.deposit_demand, bs.deposit_time, bs.loan, bs.wealth, bs.risk_status"
            " FROM bs JOIN customer c ON c.customer_no = bs.customer_no"
        )
        raw.commit()
        return time.perf_counter() - start
    finally:
        raw.close()


def baseline_sqlite(path: str, cpath: Path, spath: Path) -> float:
    """sqlite3 ``executemany`` in one transaction (PERFORMANCE.md P5), ids mapped in dicts."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        start = time.perf_counter()
        conn.execute("BEGIN")
        branches = dict(conn.execute("SELECT code, id FROM branch"))
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None).isoformat(sep=" ")
        with open(cpath, encoding="utf-8", newline="") as f:
            reader = csv.reader(f)
            next(reader)
            conn.executemany(
                "INSERT INTO customer (customer_no, type, name, id_number, phone, gender, birth_date, area, tags,"
                " branch_id, do_not_contact, marketing_consent, lifecycle, is_key, created_at, updated_at)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,0,1,'active',0,?,?)",
                (
                    (*r[:8], json.dumps([t for t in r[8].split(";") if t]), branches[r[9]], now, now)
                    for r in reader
                ),
            )
        ids = dict(conn.execute("SELECT customer_no, id FROM customer"))
        with open(spath, encoding="utf-8", newline="") as f:
            reader = csv.reader(f)
            next(reader)
            conn.executemany(
                "INSERT INTO snapshot (customer_id, as_of, deposit_demand, deposit_time, loan, wealth, risk_status)"
                " VALUES (?,?,?,?,?,?,?)",
                ((ids[r[0]], *r[1:]) for r in reader),
            )
        conn.execute("COMMIT")
        return time.perf_counter() - start
    finally:
        conn.close()


def _import_child(url: str, cpath: str, spath: str, queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    """Child process: import both files; report elapsed seconds, counts and peak RSS (MB)."""
    import resource

    sys.path.insert(0, str(ROOT))
    import customers.imports as imports
    from config.database import db, import_models
    from customers.imports import import_file

    # the recompute job is measured on its own below, not inside the import
    imports._after_snapshots = lambda *args: None  # type: ignore[assignment]
    import_models()
    db.configure(url)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    results = []
    for kind, path in (("customers", cpath), ("snapshots", spath)):
        with db.transaction() as session:
            result = import_file(session, kind, path, Path(path).name)
        results.append(result.summary())
    elapsed = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put({"seconds": elapsed, "results": results, "peak_mb": peak, "start_mb": before})


def run_import(url: str, cpath: Path, spath: Path) -> dict:
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    child = ctx.Process(target=_import_child, args=(url, str(cpath), str(spath), queue))
    child.start()
    out = queue.get()
    child.join()
    return out


def recompute_ratio(url: str) -> tuple[float | None, float | None, float | None, str]:
    try:
        from customers import contribution
    except ImportError:
        return None, None, None, "customers.contribution is not there: no recompute figure"
    if not hasattr(contribution, "recompute"):
        return None, None, None, "customers.contribution.recompute is not there: no recompute figure"
    import math

    from sqlalchemy import func, select

    from config.database import db
    from customers.models import Customer, Snapshot

    db.configure(url)
    with db.transaction() as session:
        as_of = session.scalar(select(func.max(Snapshot.as_of)))
        n = session.scalar(select(func.count()).select_from(Customer)) or 0
    sql = contribution.recompute_sql("value")
    params = {
        "start": contribution.window_start(as_of).isoformat(),
        "end": as_of.isoformat(),
        "s_dd": 0.015,
        "s_dt": 0.008,
        "s_loan": 0.025,
        "s_wealth": 0.004,
        "key_share": 0.8,
        "n_key": math.ceil(n * 0.8),
        "n_vip": math.ceil(n * 0.05),
        "n_high": math.ceil(n * 0.2),
    }
    engine = db.engine
    assert engine is not None
    if engine.dialect.name == "postgresql":
        import re

        sql = re.sub(r":(\w+)", r"%(\1)s", sql)

    def run_ours() -> float:
        with db.transaction() as session:
            start = time.perf_counter()
            contribution.recompute(session)
        return time.perf_counter() - start

    def run_bare() -> float:
        raw = engine.raw_connection()
        try:
            cur = raw.cursor()
            start = time.perf_counter()
            cur.execute(sql, params)
            raw.commit()
            return time.perf_counter() - start
        finally:
            raw.close()

    # interleaved, best of three each: the first run of either pays for cold caches
    times: dict[str, list[float]] = {"ours": [], "bare": []}
    for _ in range(3):
        times["bare"].append(run_bare())
        times["ours"].append(run_ours())
    ours, bare = min(times["ours"]), min(times["bare"])
    return ours / bare, ours, bare, "recompute() vs the same single UPDATE run bare on the driver"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--customers", type=int, default=20_000, help="customers (snapshots = customers × months)"
    )
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--keep", action="store_true", help="keep the generated files and SQLite database")
    args = parser.parse_args()

    import config.database  # noqa: F401 - registers the psycopg2 driver for bare postgresql:// URLs

    env_url = os.environ.get("CAMPAIGNFLOW_DATABASE_URL", "")
    folder = Path(tempfile.mkdtemp(prefix="cf-bench-customers-"))
    admin = None
    if env_url.startswith("postgres"):
        from sqlalchemy import create_engine, text
        from sqlalchemy.engine import make_url

        name = f"cf_bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(make_url(env_url).set(database="postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(env_url).set(database=name).render_as_string(hide_password=False)
        database = "postgresql"
    else:
        url = f"sqlite:///{folder / 'bench.sqlite'}"
        database = "sqlite"
    try:
        print(
            f"database: {database}; customers: {args.customers:,}; snapshots: {args.customers * args.months:,}"
        )
        t = time.perf_counter()
        cpath, spath = generate(folder, args.customers, args.months)
        print(
            f"generated files in {time.perf_counter() - t:.1f}s ({spath.stat().st_size / 2**20:.0f} MB snapshots)"
        )
        prepare(url)
        if database == "postgresql":
            base = baseline_pg(url, cpath, spath)
            label = "COPY + INSERT … SELECT"
        else:
            base = baseline_sqlite(url.removeprefix("sqlite:///"), cpath, spath)
            label = "sqlite3 executemany, one transaction"
        print(f"baseline ({label}): {base:.2f}s")
        clear(url)
        imported = run_import(url, cpath, spath)
        ours = imported["seconds"]
        for r in imported["results"]:
            print(f"  {r['kind']}: {r['rows']:,} rows, {r['applied']:,} applied, {r['rejected']} rejected")
        print(
            f"import_file: {ours:.2f}s  ratio {ours / base:.2f}×  peak RSS {imported['peak_mb']:.0f} MB"
            f" (interpreter + libraries before the import: {imported['start_mb']:.0f} MB)"
        )
        ratio, rec_ours, rec_bare, note = recompute_ratio(url)
        if ratio is None:
            print(f"recompute: {note}")
        else:
            print(f"recompute: {rec_ours:.2f}s vs bare {rec_bare:.2f}s  ratio {ratio:.2f}× ({note})")
        summary = {
            "bench": "customers",
            "import_ratio": round(ours / base, 2),
            "peak_mb": round(imported["peak_mb"], 1),
            "recompute_ratio": None if ratio is None else round(ratio, 2),
            "database": database,
            "customers": args.customers,
            "snapshots": args.customers * args.months,
            "import_s": round(ours, 2),
            "baseline_s": round(base, 2),
        }
        print(json.dumps(summary))
    finally:
        from config.database import db

        if db.engine is not None:
            db.engine.dispose()
        if admin is not None:
            from sqlalchemy import text

            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
        if not args.keep:
            import shutil

            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
