"""Jobs sent through a transactional outbox (RELIABILITY JOB-05).

``send_after_commit(session, job, *args)`` writes an ``outbox_message`` row in the caller's
transaction and sends the job once that transaction commits (a rollback drops both). If the
process dies between the commit and the send, the row is still there: the ``workflow.outbox_sweep``
job (every minute) sends every message left unsent for more than a minute. A message may thus be
sent twice in a crash; the jobs are idempotent by their business keys (JOB-02), so the second
delivery changes nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from celery import current_app as celery_app
from celery import shared_task
from celery.schedules import crontab
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from config.database import db, now_local, run_after_commit
from workflow.models import OutboxMessage

log = logging.getLogger(__name__)
#: unsent for this long: the sweep sends it
GRACE = dt.timedelta(minutes=1)
#: sent messages are kept this long (for inspection), then deleted by the sweep
KEEP = dt.timedelta(days=7)


def send_after_commit(session: Session, job: Any, *args: Any) -> int:
    """Record ``job(*args)`` in this transaction; send it after the commit. Returns the row id."""
    msg = OutboxMessage(job=job.name, args=list(args))
    session.add(msg)
    session.flush()
    mid = msg.id
    run_after_commit(session, lambda: _deliver(job, mid, list(args)))
    return mid


def _deliver(job: Any, mid: int, args: list[Any]) -> None:
    job.apply_async(args=args)  # eager mode runs it here; otherwise it goes to the broker
    with db.transaction() as session:
        session.execute(update(OutboxMessage).where(OutboxMessage.id == mid).values(sent_at=now_local()))


def sweep(session: Session, limit: int = 200) -> int:
    """Send what a crash left unsent; forget what was sent long ago. Returns how many it sent.

    Reads the list and commits first, then sends each message and marks it in its own short
    transaction (as right after a commit), so a job that runs in-process (eager mode) never
    waits for the sweep's own transaction."""
    now = now_local()
    pending = session.execute(
        select(OutboxMessage.id, OutboxMessage.job, OutboxMessage.args)
        .where(OutboxMessage.sent_at.is_(None), OutboxMessage.created_at < now - GRACE)
        .order_by(OutboxMessage.id)
        .limit(limit)
    ).all()
    session.execute(delete(OutboxMessage).where(OutboxMessage.sent_at < now - KEEP))
    session.commit()
    sent = 0
    for mid, job, args in pending:
        task = celery_app.tasks.get(job)
        if task is None:
            log.error("outbox message %s names an unknown job %s", mid, job)
            continue
        _deliver(task, mid, list(args or []))
        sent += 1
    return sent


@shared_task(name="workflow.outbox_sweep", ignore_result=True)
def outbox_sweep() -> int:
    with db.transaction() as session:
        return sweep(session)


SCHEDULE = {"workflow-outbox-sweep": {"task": "workflow.outbox_sweep", "schedule": crontab(minute="*")}}
