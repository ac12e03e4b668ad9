"""Benchmark of writing a run's statement lines with and without row-by-row foreign-key checks (issue 6).

    [CAMPAIGNFLOW_DATABASE_URL=postgresql://…] python bench/line_checks.py [--events N] [--repeat 5]

Database: PostgreSQL (a scratch database is created and dropped beside the URL's) or, with the
variable unset, a temporary SQLite file. It is seeded as ``bench/incentives.py`` seeds (1 000
staff, 20 campaigns; 1 000 000 events on PostgreSQL give about 100 000 lines, 200 000 on SQLite
about 92 000), the run is computed once, and then the write phase of a recompute — ``DELETE`` of
the run's lines and the insert of the new ones as the run writes them (``COPY`` on PostgreSQL,
one ``executemany`` on SQLite; the lines the run computed, read back once, so that only the
database's work is timed, not the formatting), in one transaction — is timed:

* before — the schema of the revision before 0005 (five foreign keys: ``statement_line``'s run,
  staff, branch and campaign, and ``dispute.line_id``);
* after — head (0005: statement-level triggers on PostgreSQL, row triggers on SQLite);
* PostgreSQL only, a breakdown on the "before" schema in transactions rolled back: the same write
  with one foreign key dropped at a time, and with every trigger of the table disabled (what the
  checks cost in all); and on "after", with the run_id foreign key added back (what keeping it
  would cost).

Before and after are interleaved (the schema is migrated back and forth); on PostgreSQL the table is
vacuumed before every sample, so that none pays for the dead rows of the one before. The last line is JSON.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

from sqlalchemy import create_engine, delete, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

FOREIGN_KEYS = {
    "run_id": ("statement_line", "fk_statement_line_run_id_incentive_run"),
    "staff_id": ("statement_line", "fk_statement_line_staff_id_staff"),
    "branch_id": ("statement_line", "fk_statement_line_branch_id_branch"),
    "campaign_id": ("statement_line", "fk_statement_line_campaign_id_campaign"),
    "dispute.line_id": ("dispute", "fk_dispute_line_id_statement_line"),
}


def _incentives_bench():  # noqa: ANN202 - the sibling bench module, loaded by path
    spec = importlib.util.spec_from_file_location("bench_incentives", _HERE / "incentives.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=None)
    parser.add_argument("--staff", type=int, default=1000)
    parser.add_argument("--campaigns", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    from alembic.script import ScriptDirectory

    from appraisal import ledger, runs
    from appraisal.models import StatementLine
    from config import clock
    from config.database import db, import_models
    from config.migrate import alembic_config, downgrade, upgrade

    import_models()
    base_url = os.environ.get("CAMPAIGNFLOW_DATABASE_URL", "")
    pg = base_url.startswith("postgres")
    name = f"bench_line_checks_{uuid.uuid4().hex[:8]}"
    admin = None
    tmp = None
    if pg:
        admin = create_engine(make_url(base_url).set(database="postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(base_url).set(database=name).render_as_string(hide_password=False)
    else:
        tmp = tempfile.TemporaryDirectory()
        url = f"sqlite:///{tmp.name}/bench.sqlite"
    events = args.events or (1_000_000 if pg else 200_000)
    before = ScriptDirectory.from_config(alembic_config(url)).get_revision("0005").down_revision
    assert isinstance(before, str)
    month = ledger.previous_month(ledger.month_of(clock.today()))
    try:
        upgrade(url)
        t0 = time.perf_counter()
        _incentives_bench().seed(url, events, args.staff, args.campaigns, month)
        with db.transaction() as session:
            run_id = runs.compute_run(session, month).id
        columns = ", ".join(c.name for c in StatementLine.__table__.columns if c.name != "id")
        assert db.engine is not None
        raw = db.engine.raw_connection()
        try:
            cur = raw.cursor()
            if pg:  # the lines as COPY text, exactly what COPY FROM takes back
                buffer = io.StringIO()
                query = f"COPY (SELECT {columns} FROM statement_line ORDER BY id) TO STDOUT"  # noqa: S608
                cur.copy_expert(query, buffer)
                copy_text = buffer.getvalue()
                count = copy_text.count("\n")
            else:
                cur.execute(f"SELECT {columns} FROM statement_line ORDER BY id")  # noqa: S608 - model columns
                tuples = cur.fetchall()
                count = len(tuples)
        finally:
            raw.close()
        print(f"seeded and computed {count:,} lines in {time.perf_counter() - t0:.1f}s", file=sys.stderr)

        def insert_lines(session: Any) -> None:
            connection = session.connection()
            if pg:
                with connection.connection.driver_connection.cursor() as cur:
                    cur.copy_expert(f"COPY statement_line ({columns}) FROM STDIN", io.StringIO(copy_text))
            else:
                marks = ", ".join("?" for _ in columns.split(", "))
                connection.exec_driver_sql(f"INSERT INTO statement_line ({columns}) VALUES ({marks})", tuples)  # noqa: S608

        def vacuum() -> None:
            assert db.engine is not None
            if pg:  # SQLite reuses the freed pages of the previous sample by itself
                with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                    conn.execute(text("VACUUM statement_line"))

        def write(setup: Callable[[object], None] | None = None, commit: bool = True) -> tuple[float, float]:
            """(DELETE seconds, COPY seconds) of one rewrite of the run's lines, on a vacuumed table."""
            vacuum()  # every sample starts from the same table: no dead rows of the previous one
            session = db.session()
            try:
                if setup is not None:
                    setup(session)
                t0 = time.perf_counter()
                session.execute(delete(StatementLine).where(StatementLine.run_id == run_id))
                t1 = time.perf_counter()
                insert_lines(session)
                t2 = time.perf_counter()
                if commit:
                    session.commit()
                else:
                    session.rollback()
                return t1 - t0, t2 - t1
            finally:
                session.rollback()
                db.session.remove()

        def median(samples: list[tuple[float, float]]) -> dict[str, float]:
            d = statistics.median(s[0] for s in samples)
            c = statistics.median(s[1] for s in samples)
            return {"delete_s": round(d, 3), "copy_s": round(c, 3), "total_s": round(d + c, 3)}

        samples: dict[str, list[tuple[float, float]]] = {"before": [], "after": []}
        for _ in range(args.repeat):  # interleaved, one warm-up write each time the schema changes
            db.engine.dispose()
            downgrade(url, before)
            write()
            samples["before"].append(write())
            db.engine.dispose()
            upgrade(url)
            write()
            samples["after"].append(write())

        def measure_breakdown(breakdown: dict[str, list[tuple[float, float]]]) -> None:  # PostgreSQL only
            assert db.engine is not None
            db.engine.dispose()
            downgrade(url, before)
            for label, (table, fk) in FOREIGN_KEYS.items():
                ddl = text(f"ALTER TABLE {table} DROP CONSTRAINT {fk}")
                breakdown[f"before without {label}"] = [
                    write(lambda s, ddl=ddl: s.execute(ddl), commit=False) for _ in range(args.repeat)
                ]
            no_triggers = text("ALTER TABLE statement_line DISABLE TRIGGER ALL")
            breakdown["no checks at all"] = [
                write(lambda s: s.execute(no_triggers), commit=False) for _ in range(args.repeat)
            ]
            db.engine.dispose()
            upgrade(url)
            run_fk = text(
                "ALTER TABLE statement_line ADD CONSTRAINT fk_statement_line_run_id_incentive_run "
                "FOREIGN KEY (run_id) REFERENCES incentive_run (id) ON DELETE CASCADE NOT VALID"
            )
            breakdown["after with the run_id foreign key kept"] = [
                write(lambda s: s.execute(run_fk), commit=False) for _ in range(args.repeat)
            ]

        breakdown: dict[str, list[tuple[float, float]]] = {}
        if pg:
            measure_breakdown(breakdown)

        result = {k: median(v) for k, v in samples.items()}
        result.update({k: median(v) for k, v in breakdown.items()})
        for label, figures in result.items():
            print(
                f"{label:42s} DELETE {figures['delete_s']:.3f}s  insert {figures['copy_s']:.3f}s  "
                f"total {figures['total_s']:.3f}s",
                file=sys.stderr,
            )
        database = "postgresql" if pg else "sqlite"
        print(
            json.dumps(
                {"bench": "line_checks", "database": database, "lines": count, "events": events, **result}
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
