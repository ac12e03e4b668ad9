"""Celery jobs of appraisal: the monthly incentive run with progress; the nightly ledger totals check.

A run is one task per scope (union or branch) — never per staff member. It computes in ONE
transaction (:func:`appraisal.runs.compute_run`), so a worker killed at any point leaves the run
as it was (``computing`` with no lines, or its previous complete version); the redelivered or
restarted job computes it again from scratch and gives the same figures.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task
from celery.schedules import crontab
from sqlalchemy.orm import Session

from appraisal.runs import begin_run, prepare_run, run_delay, write_run
from config.database import db
from workflow.models import JobProgress
from workflow.outbox import send_after_commit
from workflow.progress import track


@shared_task(name="appraisal.run_month", ignore_result=True, acks_late=True)
def run_month(
    month: str, scope: str | None = None, progress_id: int | None = None, actor_id: int | None = None
) -> None:
    """Compute the incentive run of ``month`` for ``scope`` (a branch code, or None for the union)."""
    with track(progress_id) as report:
        # read phase with progress (its own transaction), then every write in one transaction
        with db.transaction() as session:
            prepared = prepare_run(session, month, scope, progress=report, delay=run_delay())
        with db.transaction() as session:
            run = write_run(session, prepared, actor_id)
            result: dict[str, Any] = {
                "run": run.id,
                "lines": run.line_count,
                "staff": run.staff_count,
                "total": f"{run.total:.2f}",
            }
        report.result = result


def start_run(
    session: Session, month: str, scope: str | None, actor_id: int | None
) -> tuple[Any, JobProgress]:
    """Show the run as computing and queue its job after the caller commits. Returns (run, progress)."""
    run = begin_run(session, month, scope, actor_id)
    progress = JobProgress(
        kind="incentive_run", subject=f"run:{run.month}:{run.scope_key}", owner_id=actor_id, total=4
    )
    session.add(progress)
    session.flush()
    args = (run.month, scope or None, progress.id, actor_id)
    send_after_commit(session, run_month, *args)
    return run, progress


# ---------------------------------------------------------------------------------------------
# Nightly: the ledger's totals (kept by the database's trigger) against its events


def check_ledger_totals(month: str | None = None) -> bool:
    """Compare ``ledger_total`` with the events; on a difference log it and tell every admin (once per month)."""
    from appraisal.ledger import check_totals
    from tasks.notify import notify_admins

    with db.transaction() as session:
        differences = check_totals(session, month)
    if not differences:
        return True
    months = sorted({d.month for d in differences})
    logging.getLogger(__name__).error(
        "ledger totals differ from the events: %d row(s) in %s; first: %s",
        len(differences),
        ", ".join(months),
        differences[0].describe(),
    )
    with db.transaction() as session:
        notify_admins(
            session,
            "ledger",
            f"Ledger totals differ from the events in {', '.join(months)} ({len(differences)} row(s)); "
            f"first: {differences[0].describe()}. Run `campaignflow ledger check-totals --rebuild`.",
            key=f"ledger-totals:{months[0]}..{months[-1]}:{len(differences)}",
        )
    return False


@shared_task(name="appraisal.ledger_totals_check", ignore_result=True)
def ledger_totals_check() -> bool:
    return check_ledger_totals()


SCHEDULE = {
    "appraisal-ledger-totals-check": {
        "task": "appraisal.ledger_totals_check",
        "schedule": crontab(minute=45, hour=2),
    }
}
