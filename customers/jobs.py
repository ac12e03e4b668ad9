"""Celery jobs of the customer base: thin adapters (ids in, one transaction, commit)."""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

from celery import shared_task
from sqlalchemy import func, select

from config.database import db
from customers import alerts, contribution
from customers.models import Snapshot


def _thresholds() -> dict[str, Any]:
    """Alert thresholds: module defaults, overridden by ``CAMPAIGNFLOW_ALERT_*`` variables."""
    return alerts.thresholds_from_settings(os.environ)


@shared_task(name="customers.after_snapshot_import", ignore_result=True, acks_late=True)
def after_snapshot_import(as_of: str | None = None) -> dict[str, Any]:
    """Recompute contribution, key customers and tiers, then detect the period's alerts.

    ``as_of`` (ISO date) is the newest imported snapshot date; default: the newest in the base.
    Idempotent: running it twice changes nothing more.
    """
    with db.transaction() as session:
        day = dt.date.fromisoformat(as_of) if as_of else session.scalar(select(func.max(Snapshot.as_of)))
        if day is None:
            return {"skipped": "no snapshots"}
        summary = contribution.recompute(session, as_of=day)
    with db.transaction() as session:
        counts = alerts.detect(session, alerts.period_of(day), thresholds=_thresholds())
    return {"as_of": day.isoformat(), "key_customers": summary["key_customers"], **counts}
