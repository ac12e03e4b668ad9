"""The bounty state machine (PRODUCT.md §5), declared once as data.

open → taken (one manager, exclusive for N days; ``release`` puts it back to open) → won (a
verified claim of the taker) → paid (by the incentive run); open → withdrawn | expired.
"""

from __future__ import annotations

from campaigns.bounty_models import Bounty, BountyState
from config import clock
from workflow.engine import FireContext, Guard, Transition, Workflow

B = BountyState


def _before_deadline(ctx: FireContext) -> str | None:
    b: Bounty = ctx.obj
    if b.deadline < clock.today():
        return f"its deadline {b.deadline.isoformat()} has passed"
    return None


def _taker_wins(ctx: FireContext) -> str | None:
    b: Bounty = ctx.obj
    staff_id = ctx.payload.get("staff_id")
    if staff_id != b.taken_by:
        return "only the manager who took the bounty can win it"
    return None


def _record_winner(ctx: FireContext) -> None:
    ctx.obj.winner_id = ctx.payload.get("staff_id")


def _record_run(ctx: FireContext) -> None:
    ctx.obj.paid_in = ctx.payload.get("run")


bounty_workflow = Workflow(
    "bounty",
    Bounty,
    list(B),
    [
        Transition.of("take", B.open, B.taken, guards=[Guard("before_deadline", _before_deadline)]),
        Transition.of("release", B.taken, B.open),
        Transition.of(
            "win", B.taken, B.won, guards=[Guard("taker_wins", _taker_wins)], after=[_record_winner]
        ),
        Transition.of("pay", B.won, B.paid, after=[_record_run]),
        Transition.of("withdraw", B.open, B.withdrawn, reason_required=True),
        Transition.of("expire", B.open, B.expired),
    ],
    initial=B.open,
)
