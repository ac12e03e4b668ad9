"""Verbs on campaigns: launch, pause, resume, close, cancel, and the daily schedule.

Services flush; the entrypoint (request, job, CLI) commits once. Jobs are sent after commit.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns.machine import campaign_workflow  # noqa: F401 - declares the machine before any fire()
from campaigns.models import Campaign, CampaignState
from config import clock
from org.scope import Forbidden, NotFound, Scope
from tasks.models import Task
from workflow.engine import bulk_fire, fire
from workflow.models import JobProgress, TransitionRecord
from workflow.outbox import send_after_commit

C = CampaignState


def get_campaign(session: Session, scope: Scope, campaign_id: int) -> Campaign:
    """The campaign if the caller may see it, else :class:`NotFound` (also for wrong ids)."""
    campaign = session.get(Campaign, campaign_id)
    if campaign is None or not can_see(session, scope, campaign):
        raise NotFound(f"No campaign {campaign_id}")
    return campaign


def visible_branches(scope: Scope) -> frozenset[int] | None:
    """Branches whose campaigns the caller may see; None means every campaign.

    A manager's role row is not branch-scoped (it would read as union-wide): managers see the
    campaigns of their own branch.
    """
    branches = scope.branches_for("admin", "director", "checker")
    if branches is None:
        return None
    if scope.has("manager") and scope.branch_id is not None:
        branches = branches | {scope.branch_id}
    return branches


def can_see(session: Session, scope: Scope, campaign: Campaign) -> bool:
    branches = visible_branches(scope)
    if branches is None:
        return True
    return campaign.all_branches or any(b.id in branches for b in campaign.branches)


def require_director_of(scope: Scope, campaign: Campaign) -> None:
    """Only a director whose scope covers every branch of the campaign may steer it."""
    if not scope.has("director"):
        raise Forbidden("Only a director may steer a campaign")
    branches = scope.branches_for("director")
    if branches is None:
        return
    if campaign.all_branches or any(b.id not in branches for b in campaign.branches):
        raise Forbidden("This campaign reaches beyond your branches")


def launch(session: Session, campaign: Campaign, actor_id: int | None) -> JobProgress:
    """Launch: draft → scheduled (→ active when the start date has come), then generate
    assignments and first tasks as a background job, sent after commit. Returns its progress row."""
    fire(session, campaign, "launch", actor_id=actor_id)
    if campaign.start_date <= clock.today():
        fire(session, campaign, "start", actor_id=actor_id, reason="launched on or after its start date")
    progress = JobProgress(kind="launch", subject=f"campaign:{campaign.code}", owner_id=actor_id)
    session.add(progress)
    session.flush()
    from campaigns import jobs

    send_after_commit(session, jobs.generate_assignments, campaign.id, progress.id)
    return progress


def pause(session: Session, campaign: Campaign, actor_id: int | None, reason: str | None = None) -> None:
    """Pause: its tasks disappear from queues until resumed."""
    fire(session, campaign, "pause", actor_id=actor_id, reason=reason)


def resume(session: Session, campaign: Campaign, actor_id: int | None, reason: str | None = None) -> None:
    fire(session, campaign, "resume", actor_id=actor_id, reason=reason)


def close(session: Session, campaign: Campaign, actor_id: int | None, reason: str | None = None) -> int:
    """Close (early or at its end date): every open task of the campaign expires. Returns how many."""
    fire(session, campaign, "close", actor_id=actor_id, reason=reason)
    return _finish_tasks(session, [campaign.id], "expire", actor_id, reason or "campaign closed")


def cancel(session: Session, campaign: Campaign, actor_id: int | None, reason: str) -> int:
    """Cancel with a reason: open tasks are cancelled and the campaign pays nothing."""
    fire(session, campaign, "cancel", actor_id=actor_id, reason=reason)
    return _finish_tasks(session, [campaign.id], "cancel", actor_id, reason)


def _finish_tasks(session: Session, campaign_ids: list[int], trigger: str, actor_id: int | None, reason: str) -> int:
    if not campaign_ids:
        return 0
    return bulk_fire(
        session,
        Task,
        trigger,
        Task.campaign_id.in_(campaign_ids),
        actor_id=actor_id,
        reason=reason,
        values={"finished_at": clock.now()},
    )


def run_schedule(session: Session, today: dt.date | None = None) -> dict[str, int]:
    """The scheduler's daily work: start campaigns whose start date has come, close those whose
    end date has passed (expiring their open tasks). Set-based; safe to run any number of times."""
    today = today or clock.today()
    started = bulk_fire(
        session,
        Campaign,
        "start",
        Campaign.start_date <= today,
        reason="start date reached",
    )
    ending = list(
        session.scalars(
            select(Campaign.id).where(
                Campaign.end_date < today, Campaign.state.in_([C.active, C.paused])
            )
        )
    )
    closed = 0
    if ending:
        closed = bulk_fire(session, Campaign, "close", Campaign.id.in_(ending), reason="end date passed")
        _finish_tasks(session, ending, "expire", None, "campaign closed")
    return {"started": started, "closed": closed}


def campaign_history(session: Session, campaign: Campaign) -> list[TransitionRecord]:
    from workflow.engine import history

    return history(session, "campaign", campaign.id)
