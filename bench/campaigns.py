"""Benchmark of launching a campaign (issue 4 item 10; PRODUCT.md §9).

    python bench/campaigns.py [--customers N] [--branches B] [--managers M]

Builds a union of B branches with M managers each (capacities such that some customers overflow
into the pool), N customers (60 % with a relationship manager, 5 % key customers without one,
a few whose manager is on leave), then measures on the same database:

* **baseline** — the bare database producing the same rows: one ``INSERT … SELECT`` of N
  assignment rows straight from ``customer`` and one ``INSERT … SELECT`` of their N first tasks
  (no choice of owner at all);
* **launch** — :data:`campaigns.assignment.PHASES` as the launch job runs them (one commit per
  phase): relationship manager, key customer → senior, load balancing within capacity with a
  seeded draw (ranked by ``row_number()`` and joined onto per-staff bands), pool and alert, first
  tasks.

Database: ``CAMPAIGNFLOW_DATABASE_URL`` (PostgreSQL: a scratch database is created and dropped)
or, when unset, a temporary SQLite file. The last line is JSON::

    {"bench": "campaigns", "launch_ratio": …}
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _database(url: str | None) -> tuple[str, callable]:  # type: ignore[valid-type]
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    if url and url.startswith("postgres"):
        name = f"campaignflow_bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        bench_url = make_url(url).set(database=name).render_as_string(hide_password=False)

        def drop() -> None:
            from config.database import db

            if db.engine is not None:
                db.engine.dispose()
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()

        return bench_url, drop
    tmp = tempfile.mkdtemp(prefix="campaignflow-bench-")
    return f"sqlite:///{os.path.join(tmp, 'bench.sqlite')}", lambda: None


def build(session, customers: int, branches: int, managers: int, rounds: int, seed: int = 7) -> dict:  # noqa: ANN001
    from sqlalchemy import insert

    from campaigns.models import Campaign, CampaignBranch
    from config import clock
    from customers.models import Customer
    from org.models import Branch, Staff, StaffRole

    rng = random.Random(seed)
    root = Branch(code="U00", name="县联社")
    session.add(root)
    session.flush()
    branch_rows = [
        Branch(code=f"B{i:02d}", name=f"信用社{i}", parent_id=root.id) for i in range(1, branches + 1)
    ]
    session.add_all(branch_rows)
    session.flush()
    director = Staff(staff_no="D0001", name="主任", branch_id=root.id)
    session.add(director)
    per_branch = customers // branches
    staff_by_branch: dict[int, list[int]] = {}
    for b in branch_rows:
        people = []
        for j in range(managers):
            status = "on_leave" if j == managers - 1 else "active"
            s = Staff(
                staff_no=f"M{b.id:03d}{j:03d}",
                name=f"经理{b.id}-{j}",
                branch_id=b.id,
                status=status,
                senior=j < 2,
                # total capacity a bit below the branch's customers: some overflow stays in the pool
                capacity=int(per_branch * 0.97 / managers) + 1,
            )
            session.add(s)
            people.append(s)
        session.flush()
        session.add_all(StaffRole(staff_id=s.id, role="manager", branch_id=None) for s in people)
        staff_by_branch[b.id] = [s.id for s in people]
    session.flush()
    rows = []
    for i in range(customers):
        b = branch_rows[i % branches]
        r = rng.random()
        manager = rng.choice(staff_by_branch[b.id]) if r < 0.6 else None
        rows.append(
            {
                "customer_no": f"C{i:09d}",
                "type": "individual",
                "name": f"客户{i}",
                "branch_id": b.id,
                "manager_id": manager,
                "is_key": 0.6 <= r < 0.65,
                "tags": [],
                "do_not_contact": False,
                "marketing_consent": True,
                "lifecycle": "active",
            }
        )
    for start in range(0, len(rows), 5000):
        session.execute(insert(Customer), rows[start : start + 5000])
    today = clock.today()

    def campaign(code: str) -> Campaign:
        c = Campaign(
            code=code,
            name=code,
            kind="deposit_drive",
            owner_id=director.id,
            start_date=today,
            end_date=today + dt.timedelta(days=60),
            population={"customers": {}},
            rules_none=True,
            state="active",
        )
        session.add(c)
        session.flush()
        session.add_all(CampaignBranch(campaign_id=c.id, branch_id=b.id) for b in branch_rows)
        session.flush()
        return c

    ids = {"baseline": [campaign(f"BENCH-BASE-{i}").id for i in range(rounds)]}
    ids["launch"] = [campaign(f"BENCH-LAUNCH-{i}").id for i in range(rounds)]
    session.commit()
    return ids


def baseline(session, campaign_id: int) -> float:  # noqa: ANN001
    from sqlalchemy import text

    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    due = dt.date.today() + dt.timedelta(days=7)
    t0 = time.perf_counter()
    session.execute(
        text(
            "INSERT INTO assignment (campaign_id, customer_id, branch_id, staff_id, state, reason, version, created_at) "
            "SELECT :cid, id, branch_id, manager_id, 'assigned', 'relationship manager', 1, :now FROM customer"
        ),
        {"cid": campaign_id, "now": now},
    )
    session.commit()
    session.execute(
        text(
            "INSERT INTO task (kind, title, campaign_id, assignment_id, customer_id, branch_id, staff_id, due_on, "
            "priority, state, source, source_key, version, created_at) "
            "SELECT 'contact', 'contact', :cid, id, customer_id, branch_id, staff_id, :due, 0, 'open', 'template', "
            "'base:' || CAST(id AS VARCHAR(20)), 1, :now FROM assignment WHERE campaign_id = :cid"
        ),
        {"cid": campaign_id, "now": now, "due": due},
    )
    session.commit()
    return time.perf_counter() - t0


def launch(factory, campaign_id: int) -> tuple[float, dict[str, int]]:  # noqa: ANN001
    from campaigns import assignment
    from campaigns.models import Campaign

    counts: dict[str, int] = {}
    t0 = time.perf_counter()
    for name, phase in assignment.PHASES:
        session = factory()
        t1 = time.perf_counter()
        try:
            counts[name] = phase(session, session.get(Campaign, campaign_id))
            session.commit()
        finally:
            session.close()
        PHASE_TIMES[name] = time.perf_counter() - t1
    return time.perf_counter() - t0, counts


PHASE_TIMES: dict[str, float] = {}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", "--rows", type=int, default=20_000)
    parser.add_argument("--branches", type=int, default=20)
    parser.add_argument("--managers", type=int, default=12, help="managers per branch")
    parser.add_argument(
        "--rounds", type=int, default=3, help="alternating rounds; the best of each side counts"
    )
    args = parser.parse_args(argv)

    from config.database import db, import_models
    from config.migrate import upgrade

    import_models()
    url, drop = _database(os.environ.get("CAMPAIGNFLOW_DATABASE_URL"))
    try:
        upgrade(url)
        db.configure(url)
        with db.transaction() as session:
            ids = build(session, args.customers, args.branches, args.managers, args.rounds)
        if url.startswith("postgres"):  # statistics as a live database has them
            from sqlalchemy import text

            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("ANALYZE"))
        base_times, launch_times, phase_times = [], [], []
        for i in range(args.rounds):  # alternate the order; keep each side's best round
            steps = ["baseline", "launch"] if i % 2 == 0 else ["launch", "baseline"]
            for step in steps:
                if step == "baseline":
                    session = db.factory()
                    base_times.append(baseline(session, ids["baseline"][i]))
                    session.close()
                else:
                    t, counts = launch(db.factory, ids["launch"][i])
                    launch_times.append(t)
                    phase_times.append(dict(PHASE_TIMES))
        t_base, t_launch = min(base_times), min(launch_times)
        best_phases = phase_times[launch_times.index(t_launch)]
        from sqlalchemy import func, select

        from campaigns.models import Assignment

        session = db.factory()
        reasons = dict(
            session.execute(
                select(Assignment.reason, func.count())
                .where(Assignment.campaign_id == ids["launch"][0])
                .group_by(Assignment.reason)
            ).all()
        )
        session.close()
        _, again = launch(db.factory, ids["launch"][0])  # a retry creates nothing
    finally:
        drop()
    ratio = t_launch / t_base if t_base else float("inf")
    dialect = "postgresql" if url.startswith("postgres") else "sqlite"
    print(
        f"database: {dialect}; customers: {args.customers}; branches: {args.branches}; managers/branch: {args.managers}"
    )
    print(
        f"baseline (bare INSERT … SELECT of the same assignments and tasks): best {t_base:.3f} s of {[round(t, 3) for t in base_times]}"
    )
    print(
        f"launch (every phase, one commit each): best {t_launch:.3f} s of {[round(t, 3) for t in launch_times]}  {counts}"
    )
    print("phase seconds (best launch): " + ", ".join(f"{k} {v:.3f}" for k, v in best_phases.items()))
    print(
        "reasons: "
        + ", ".join(
            f"{k.split(' (')[0] if k else k}" for k in sorted({(r or "").split(" (")[0] for r in reasons})
        )
    )
    print(f"a retry created: assignments {again['assignments']}, tasks {again['tasks']}")
    print(f"launch / baseline = {ratio:.2f}")
    print(
        json.dumps(
            {
                "bench": "campaigns",
                "launch_ratio": round(ratio, 3),
                "customers": args.customers,
                "database": dialect,
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
