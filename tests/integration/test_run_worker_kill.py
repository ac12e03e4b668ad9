"""A real Celery worker is SIGKILLed in the middle of an incentive run: nothing partial is visible,
and a rerun on a new worker completes with the same figures as a clean computation (PRODUCT.md §10)."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select

from appraisal import ledger
from appraisal.measures import gather
from appraisal.models import IncentiveRun, LedgerEvent, StatementLine
from appraisal.runs import decide
from config import clock
from config.celery import make_celery
from config.settings import PROJECT_ROOT, Settings
from workflow.models import JobProgress

pytestmark = pytest.mark.worker


def _worker(settings: Settings, delay: float, log: Path) -> subprocess.Popen:
    env = dict(os.environ)
    env.update(
        CAMPAIGNFLOW_DATABASE_URL=settings.database_url,
        CAMPAIGNFLOW_INSTANCE_DIR=str(settings.instance_dir),
        CAMPAIGNFLOW_BROKER_URL=settings.broker_url,
        CAMPAIGNFLOW_RESULT_BACKEND=settings.result_backend,
        CAMPAIGNFLOW_SECRET_KEY=settings.secret_key,
        CAMPAIGNFLOW_RUN_DELAY=str(delay),
    )
    env.pop("CAMPAIGNFLOW_CELERY_EAGER", None)
    cmd = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "make_celery",
        "worker",
        "-P",
        "solo",
        "-l",
        "INFO",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
    ]
    return subprocess.Popen(
        cmd,
        cwd=PROJECT_ROOT,
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _wait(predicate, timeout: float, what: str, log: Path) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(
        f"timed out waiting for {what}; worker log:\n{log.read_text(errors='replace')[-3000:]}"
    )


def _kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def test_worker_killed_mid_run_leaves_nothing_partial(session, union, factories, settings, tmp_path) -> None:  # noqa: ANN001
    month = ledger.previous_month(ledger.month_of(clock.today()))
    first, _ = ledger.month_bounds(month)
    camp = factories.campaign(
        session,
        union.director,
        [union.b1, union.b2],
        start_date=first,
        end_date=clock.today() + dt.timedelta(days=20),
        state="active",
        budget=Decimal("500"),
        rules=[{"id": "acc", "kind": "piece_rate", "measure": "accounts_opened", "rate": "20"}],
    )
    staff = [union.m1, union.m2, union.m3] + [factories.staff(session, union.b1) for _ in range(20)]
    for i in range(400):
        s = staff[i % len(staff)]
        session.add(
            LedgerEvent(
                event_id=f"K{i:05d}",
                occurred_on=first + dt.timedelta(days=i % 27),
                month=month,
                staff_id=s.id,
                campaign_id=camp.id,
                measure="accounts_opened",
                quantity=1 + i % 3,
            )
        )
    progress = JobProgress(kind="incentive_run", subject=f"run:{month}:union", total=4)
    session.add(progress)
    session.commit()
    from appraisal.runs import begin_run

    begin_run(session, month, None, union.checker.id)
    session.commit()

    sender = make_celery(Settings.from_env({**_env(settings), "CAMPAIGNFLOW_CELERY_EAGER": "0"}))
    log = tmp_path / "worker.log"
    worker = _worker(settings, delay=4.0, log=log)
    try:
        sender.send_task("appraisal.run_month", args=[month, None, progress.id, union.checker.id])

        def running() -> bool:
            session.commit()  # a fresh snapshot (SQLite WAL reads see their transaction's start)
            session.expire_all()
            p = session.get(JobProgress, progress.id)
            return p.state == "running" and p.done >= 1

        _wait(running, 90, "the run to start", log)
        _kill(worker)  # SIGKILL in the middle of the run
        session.commit()  # a fresh snapshot (SQLite WAL reads see their transaction's start)
        session.expire_all()
        run = session.scalar(select(IncentiveRun).where(IncentiveRun.month == month))
        assert run.state == "computing"  # never computed, nothing partial
        assert session.scalar(select(func.count()).select_from(StatementLine)) == 0

        # a new worker; the run is started again (a redelivery may also run it: same figures)
        worker = _worker(settings, delay=0.0, log=log)
        again = JobProgress(kind="incentive_run", subject=f"run:{month}:union", total=4)
        session.add(again)
        session.commit()
        sender.send_task("appraisal.run_month", args=[month, None, again.id, union.checker.id])

        def computed() -> bool:
            session.commit()  # a fresh snapshot (SQLite WAL reads see their transaction's start)
            session.expire_all()
            return session.scalar(select(IncentiveRun.state).where(IncentiveRun.month == month)) == "computed"

        _wait(computed, 90, "the rerun to complete", log)
    finally:
        _kill(worker)
    session.commit()  # a fresh snapshot (SQLite WAL reads see their transaction's start)
    session.expire_all()
    run = session.scalar(select(IncentiveRun).where(IncentiveRun.month == month))
    clean = decide(session, gather(session, month, None), run.id)
    assert run.result_hash == clean.result_hash
    assert (
        run.line_count == len(clean.rows) == session.scalar(select(func.count()).select_from(StatementLine))
    )
    assert run.total == clean.total == Decimal("500.00")  # scaled to the budget


def _env(settings: Settings) -> dict[str, str]:
    return {
        "CAMPAIGNFLOW_DATABASE_URL": settings.database_url,
        "CAMPAIGNFLOW_INSTANCE_DIR": str(settings.instance_dir),
        "CAMPAIGNFLOW_BROKER_URL": settings.broker_url,
        "CAMPAIGNFLOW_RESULT_BACKEND": settings.result_backend,
        "CAMPAIGNFLOW_SECRET_KEY": settings.secret_key,
    }
