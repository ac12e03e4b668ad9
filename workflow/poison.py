"""A cap on redeliveries of a job that keeps killing its worker (RELIABILITY JOB-04).

Jobs are acknowledged late and re-queued when the worker process dies under them
(``task_acks_late``, ``task_reject_on_worker_lost``): a crash in the middle of an incentive run
must not lose the run. The price, as Celery's documentation warns, is a message that kills every
worker that takes it — an endless loop. So before a job runs in a worker, :func:`begin` counts the
delivery in ``job_attempt`` (its own committed transaction); a job that finishes removes the row
(:func:`finish`). A message seen for the fourth time without finishing is *parked*: not run, the
row kept with the job's name and arguments, and every admin told. Eager runs (inside a request)
are not counted.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from config.database import db, now_local
from workflow.models import JobAttempt

MAX_ATTEMPTS = 3
log = logging.getLogger(__name__)


def _plain(args: Any) -> Any:
    import json

    try:
        return json.loads(json.dumps(args, default=str))
    except (TypeError, ValueError):
        return None


def begin(task_id: str, name: str, args: Any = None) -> bool:
    """Count this delivery; False when the job must not run (parked now or before)."""
    for _ in range(3):
        try:
            with db.transaction() as session:
                row = session.get(JobAttempt, task_id, with_for_update=True)
                now = now_local()
                if row is None:
                    session.add(
                        JobAttempt(task_id=task_id, name=name, args=_plain(args), first_at=now, last_at=now)
                    )
                    return True
                if row.state == "parked":
                    return False
                row.attempts += 1
                row.last_at = now
                if row.attempts <= MAX_ATTEMPTS:
                    return True
                row.state = "parked"
                _tell_admins(session, row)
                log.error(
                    "job %s (%s) parked after %d deliveries that never finished",
                    name,
                    task_id,
                    row.attempts - 1,
                )
                return False
        except IntegrityError:  # two deliveries at once: count again
            continue
    return True


def finish(task_id: str) -> None:
    """The job ran to its end (or raised): forget its deliveries."""
    with db.transaction() as session:
        session.execute(
            delete(JobAttempt).where(JobAttempt.task_id == task_id, JobAttempt.state == "running")
        )


def parked(session: Any) -> list[JobAttempt]:
    return list(
        session.scalars(select(JobAttempt).where(JobAttempt.state == "parked").order_by(JobAttempt.last_at))
    )


def _tell_admins(session: Any, row: JobAttempt) -> None:
    try:
        from tasks.notify import notify_admins
    except ImportError:  # pragma: no cover - it ships with the product
        return
    text = (
        f"Job {row.name} was stopped after {MAX_ATTEMPTS} runs that never finished (the worker died each "
        f"time); it will not run again by itself. Task id {row.task_id}."
    )
    notify_admins(session, "job", text, key=f"poison:{row.task_id}")
