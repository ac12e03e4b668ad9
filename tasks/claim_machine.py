"""The claim state machine (PRODUCT.md §5): submitted → verified | rejected; verified → reversed.

The checker is never the claimant: a guard here, and a CHECK constraint on ``claim`` in the
database (``verifier_id <> staff_id``) so no path around the guard can store it either.
"""

from __future__ import annotations

import datetime as dt

from config import clock
from tasks.models import Claim, ClaimState
from workflow.engine import FireContext, Guard, Transition, Workflow

S = ClaimState


def _not_claimant(ctx: FireContext) -> str | None:
    if ctx.actor_id is not None and ctx.actor_id == ctx.obj.staff_id:
        return "the checker is never the claimant: another checker must verify this claim"
    return None


def _reviewed_by_person(ctx: FireContext) -> str | None:
    if ctx.obj.needs_review and ctx.actor_id is None:
        return "it is flagged (" + ", ".join(ctx.obj.flags or []) + "): a person must review it"
    return None


def _within_reversal_window(ctx: FireContext) -> str | None:
    days = int(ctx.payload.get("window_days", 0) or 0)
    verified = ctx.obj.verified_at
    if days and verified is not None and clock.now() > verified + dt.timedelta(days=days):
        return f"the reversal window of {days} days after verification ({verified:%Y-%m-%d}) has passed"
    return None


def _verified(ctx: FireContext) -> None:
    ctx.obj.verifier_id = ctx.actor_id
    ctx.obj.verified_at = clock.now()
    ctx.obj.auto_verified = ctx.actor_id is None


def _rejected(ctx: FireContext) -> None:
    ctx.obj.verifier_id = ctx.actor_id
    ctx.obj.verified_at = clock.now()
    ctx.obj.reason = ctx.reason


def _reversed(ctx: FireContext) -> None:
    ctx.obj.reason = ctx.reason


claim_workflow = Workflow(
    "claim",
    Claim,
    list(S),
    [
        Transition.of(
            "verify",
            S.submitted,
            S.verified,
            guards=[Guard("not_claimant", _not_claimant), Guard("reviewed_by_person", _reviewed_by_person)],
            after=[_verified],
        ),
        Transition.of(
            "reject",
            S.submitted,
            S.rejected,
            reason_required=True,
            guards=[Guard("not_claimant", _not_claimant)],
            after=[_rejected],
        ),
        Transition.of(
            "reverse",
            S.verified,
            S.reversed,
            reason_required=True,
            guards=[Guard("not_claimant", _not_claimant), Guard("within_window", _within_reversal_window)],
            after=[_reversed],
        ),
    ],
    initial=S.submitted,
)
