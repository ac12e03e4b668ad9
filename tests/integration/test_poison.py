"""A job that keeps killing its worker is run three times, then parked and the admins told
(RELIABILITY JOB-04); a job that finishes leaves nothing behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from config.celery import make_celery
from config.settings import PROJECT_ROOT, Settings
from tasks.models import Notification
from tests.integration.test_run_worker_kill import _env, _kill, _wait
from workflow import poison
from workflow.models import JobAttempt


def test_three_unfinished_deliveries_then_parked(session, union):
    assert [poison.begin("t-1", "appraisal.run_month", {"args": ["2026-10"]}) for _ in range(4)] == [
        True,
        True,
        True,
        False,
    ]
    assert poison.begin("t-1", "appraisal.run_month") is False  # stays parked
    session.expire_all()
    row = session.get(JobAttempt, "t-1")
    assert (row.state, row.attempts, row.args) == ("parked", 4, {"args": ["2026-10"]})
    told = session.scalars(select(Notification).where(Notification.kind == "job")).all()
    assert [n.staff_id for n in told] == [union.admin.id] and "appraisal.run_month" in told[0].text
    poison.finish("t-1")  # a parked row is kept for the admin to look at
    assert session.get(JobAttempt, "t-1") is not None
    # a job that finishes leaves nothing
    assert poison.begin("t-2", "tasks.morning") is True
    poison.finish("t-2")
    session.expire_all()
    assert session.get(JobAttempt, "t-2") is None


@pytest.mark.worker
def test_a_real_worker_stops_redelivering_a_job_that_kills_it(
    session, union, settings, tmp_path: Path
) -> None:
    env = dict(os.environ)
    env.update(_env(settings))
    env.pop("CAMPAIGNFLOW_CELERY_EAGER", None)
    log = tmp_path / "worker.log"
    cmd = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "tests.poison_app",
        "worker",
        "-P",
        "prefork",
        "-c",
        "1",
        "-l",
        "INFO",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
    ]
    worker = subprocess.Popen(
        cmd,
        cwd=PROJECT_ROOT,
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        sender = make_celery(Settings.from_env({**_env(settings), "CAMPAIGNFLOW_CELERY_EAGER": "0"}))
        result = sender.send_task("tests.kill_my_worker")

        def parked() -> bool:
            session.commit()
            session.expire_all()
            row = session.get(JobAttempt, result.id)
            return row is not None and row.state == "parked"

        _wait(parked, 120, "the job to be parked", log)
        row = session.get(JobAttempt, result.id)
        assert row.attempts == poison.MAX_ATTEMPTS + 1 and row.name == "tests.kill_my_worker"
        assert worker.poll() is None  # the worker itself is still there, serving other jobs
    finally:
        _kill(worker)
