"""A REAL Celery worker process runs the jobs: the daily schedule and a campaign launch.

The worker is ``python -m celery -A make_celery worker -P solo`` started from the project
directory on the test's own database (committed data), with the broker of the run: Redis when
``CAMPAIGNFLOW_BROKER_URL`` is set (the CI's second pass), else the embedded SQLAlchemy transport
over a SQLite file. Each test uses its own queue, so a shared Redis carries no one else's jobs
into it. Jobs are sent exactly as production sends them: by name, or by ``delay`` after commit.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from celery import Celery
from sqlalchemy import func, select

from campaigns import services
from campaigns.models import Assignment, Campaign
from config import clock
from config.celery import make_celery
from config.database import make_engine
from config.settings import PROJECT_ROOT, Settings
from tasks.models import Task
from tests.factories import make_campaign, make_customer
from workflow.models import JobProgress

pytestmark = pytest.mark.worker

TODAY = clock.today()
DAY = dt.timedelta(days=1)
WAIT_SECONDS = 60


class Worker:
    """A worker subprocess plus a Celery app that sends to the same broker and queue."""

    def __init__(self, env: dict[str, str], queue: str, log: Path) -> None:
        self.env, self.queue, self.log = env, queue, log
        self.sender: Celery = make_celery(Settings.from_env(env))  # becomes the default app: delay() uses it
        self.sender.conf.task_default_queue = queue
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
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
            "-Q",
            self.queue,
        ]
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                cmd, cwd=PROJECT_ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT
            )

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""


@pytest.fixture
def worker(database_url: str, tmp_path: Path) -> Iterator[Worker]:
    instance = tmp_path / "worker-instance"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAMPAIGNFLOW_")}
    env.update(
        CAMPAIGNFLOW_DATABASE_URL=database_url,
        CAMPAIGNFLOW_INSTANCE_DIR=str(instance),
        CAMPAIGNFLOW_BROKER_URL=os.environ.get("CAMPAIGNFLOW_BROKER_URL")
        or f"sqla+sqlite:///{tmp_path / 'broker.sqlite'}",
        CAMPAIGNFLOW_CELERY_EAGER="0",
        CAMPAIGNFLOW_SECRET_KEY="worker-test-secret-0123456789",
        CAMPAIGNFLOW_DEFAULT_LOCALE="en",
        PYTHONUNBUFFERED="1",
    )
    w = Worker(env, f"test-{uuid.uuid4().hex[:10]}", tmp_path / "worker.log")
    w.start()
    try:
        yield w
    finally:
        w.stop()
        w.sender.close()


def wait_for(database_url: str, check: Callable[[object], bool], worker: Worker, what: str) -> None:
    """Poll the database (fresh connection each time, so no stale snapshot) until ``check`` holds."""
    engine = make_engine(database_url)
    try:
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                if check(conn):
                    return
            assert worker.proc is not None and worker.proc.poll() is None, f"worker died:\n{worker.output()}"
            time.sleep(0.5)
    finally:
        engine.dispose()
    pytest.fail(f"{what} did not happen within {WAIT_SECONDS} s; worker log:\n{worker.output()}")


def test_worker_runs_the_schedule(worker: Worker, session, union, database_url: str) -> None:
    due = make_campaign(session, union.director, [union.b1], state="scheduled", start_date=TODAY - DAY)
    ended = make_campaign(
        session, union.director, [union.b1], state="active", start_date=TODAY - 20 * DAY, end_date=TODAY - DAY
    )
    running = make_campaign(session, union.director, [union.b1], state="active")
    session.flush()
    task = Task(
        kind="contact",
        title="call",
        campaign_id=ended.id,
        branch_id=union.b1.id,
        staff_id=union.m1.id,
        due_on=TODAY - 2 * DAY,
        state="open",
    )
    session.add(task)
    session.commit()  # the worker sees only committed data
    ids = (due.id, ended.id, running.id, task.id)

    worker.sender.send_task("campaigns.run_schedule", queue=worker.queue)

    def done(conn) -> bool:  # noqa: ANN001
        states = dict(conn.execute(select(Campaign.id, Campaign.state)).all())
        task_state = conn.execute(select(Task.state).where(Task.id == ids[3])).scalar_one()
        return states[ids[0]] == "active" and states[ids[1]] == "closed" and task_state == "expired"

    wait_for(database_url, done, worker, "the scheduled job's effect")
    session.rollback()
    session.expire_all()
    assert session.get(Campaign, running.id).state == "active"
    from workflow.engine import history

    assert [(h.trigger, h.actor_id) for h in history(session, "campaign", due.id)] == [("start", None)]
    assert [h.trigger for h in history(session, "campaign", ended.id)] == ["close"]
    assert [(h.from_state, h.to_state) for h in history(session, "task", task.id)] == [("open", "expired")]


def test_launch_with_a_running_worker(worker: Worker, session, union, database_url: str) -> None:
    for _ in range(6):
        make_customer(session, union.b1, union.m1)
    make_customer(session, union.b1, None)  # no relationship manager
    campaign = make_campaign(session, union.director_b1, [union.b1])
    session.commit()

    assert not worker.sender.conf.task_always_eager
    progress = services.launch(session, campaign, union.director_b1.id)
    session.commit()  # the generation job is sent now, to the worker
    progress_id, campaign_id = progress.id, campaign.id

    def done(conn) -> bool:  # noqa: ANN001
        state = conn.execute(select(JobProgress.state).where(JobProgress.id == progress_id)).scalar_one()
        assert state != "failed", f"the job failed:\n{worker.output()}"
        return state == "done"

    wait_for(database_url, done, worker, "the launch job")
    session.rollback()
    session.expire_all()
    assert session.get(Campaign, campaign_id).state == "active"
    n = session.scalar(select(func.count(Assignment.id)).where(Assignment.campaign_id == campaign_id))
    assert n == 7
    reasons = session.scalars(select(Assignment.reason).where(Assignment.campaign_id == campaign_id)).all()
    assert all(reasons)  # each says why it went where it went
    row = session.get(JobProgress, progress_id)
    assert row.result is not None and row.percent == 100
