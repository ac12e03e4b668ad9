"""Personal notes are not kept for ever (RELIABILITY PII-08).

After the retention period (``CAMPAIGNFLOW_RETENTION_DAYS``, default 3 years, at least 180 days)
the free text people wrote about customers is replaced by a marker, in set-based statements:
follow-up records' content, next step and failure reason; appointments' purpose; failed tasks'
reasons; and the follow-up plans (likely reactions) of assignments in campaigns that ended before
the cut-off. The records themselves stay — who contacted whom, when, by which channel and with
what reaction — because statements and their drill-down refer to them; the audit log is never
touched. The ``tasks.purge_expired_notes`` job runs on the 1st of each month at 03:00;
``campaignflow tasks purge-notes [--dry-run]`` runs it by hand.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import String, cast, func, null, select, update
from sqlalchemy.orm import Session

from campaigns.models import Assignment, Campaign
from tasks.models import Appointment, FollowUp, Task

REMOVED = "（已过保留期限，内容已删除 / removed after the retention period）"


def cutoff(today: dt.date, days: int) -> dt.datetime:
    return dt.datetime.combine(today - dt.timedelta(days=days), dt.time.min)


def _statements(before: dt.datetime) -> dict[str, tuple[Any, ...]]:
    """Per kind of note: (the rows it would change, the UPDATE)."""
    ended = select(Campaign.id).where(Campaign.end_date < before.date())
    return {
        "follow_ups": (
            FollowUp.at < before,
            FollowUp.content != REMOVED,
        ),
        "appointments": (Appointment.at < before, Appointment.purpose != REMOVED),
        "failed_tasks": (
            Task.finished_at < before,
            Task.failed_reason.is_not(None),
            Task.failed_reason != REMOVED,
        ),
        # a JSON column holds SQL NULL or a JSON null: neither is a plan
        "plans": (
            Assignment.campaign_id.in_(ended),
            Assignment.plan.is_not(None),
            cast(Assignment.plan, String) != "null",
        ),
    }


def purge(session: Session, before: dt.datetime, *, dry_run: bool = False) -> dict[str, int]:
    """Replace the notes written before ``before``; returns how many rows each kind touched."""
    conds = _statements(before)
    models = {"follow_ups": FollowUp, "appointments": Appointment, "failed_tasks": Task, "plans": Assignment}
    counts = {
        kind: int(session.scalar(select(func.count()).select_from(models[kind]).where(*conds[kind])) or 0)
        for kind in models
    }
    if dry_run:
        return counts
    session.execute(
        update(FollowUp)
        .where(*conds["follow_ups"])
        .values(content=REMOVED, next_step=None, failure_reason=None)
        .execution_options(synchronize_session=False)
    )
    # versioned rows: the version moves too, so a form opened before the purge cannot write back
    session.execute(
        update(Appointment)
        .where(*conds["appointments"])
        .values(purpose=REMOVED, version=Appointment.version + 1)
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(Task)
        .where(*conds["failed_tasks"])
        .values(failed_reason=REMOVED, version=Task.version + 1)
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(Assignment)
        .where(*conds["plans"])
        .values(plan=null(), version=Assignment.version + 1)
        .execution_options(synchronize_session=False)
    )
    return counts
