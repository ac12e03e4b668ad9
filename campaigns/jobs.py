"""Celery jobs of campaigns: thin adapters that load, call one service and commit."""

from __future__ import annotations

from celery import shared_task

from campaigns import assignment, services
from campaigns.models import Campaign
from config.database import db
from workflow.progress import track


@shared_task(name="campaigns.generate_assignments", ignore_result=True, acks_late=True)
def generate_assignments(campaign_id: int, progress_id: int) -> None:
    """Create a launched campaign's assignments and first tasks (idempotent; safe to retry)."""
    result: dict[str, int] = {}
    with track(progress_id) as report:
        for done, (name, phase) in enumerate(assignment.PHASES):
            report(done, len(assignment.PHASES), name)
            with db.transaction() as session:  # one commit per phase: progress shows between
                campaign = session.get(Campaign, campaign_id)
                if campaign is None:
                    raise LookupError(f"campaign {campaign_id} is gone")
                result[name] = phase(session, campaign)
        report.result = result


@shared_task(name="campaigns.run_schedule", ignore_result=True)
def run_schedule() -> dict[str, int]:
    """Start campaigns whose start date has come; close those whose end date has passed."""
    with db.transaction() as session:
        return services.run_schedule(session)
