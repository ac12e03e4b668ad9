"""The incentive-run and dispute state machines (PRODUCT.md §5), declared once as data.

incentive run: computing → computed (finish) → approved (approve) → locked (lock);
computed → computing (recompute) until approved. Approval needs a director who did not run it;
lock (the release to payroll) needs the close checklist (§11.7) — the service passes its refusals
in the payload — and someone other than the approver: two people sign off every payout.
dispute: open → accepted (an adjustment line in the next run) | rejected (reason required).
"""

from __future__ import annotations

from appraisal.models import Dispute, DisputeState, IncentiveRun, RunState
from config.database import now_local
from workflow.engine import FireContext, Guard, Transition, Workflow

R = RunState
D = DisputeState


def _approver_is_director(ctx: FireContext) -> str | None:
    if not ctx.payload.get("is_director"):
        return "only a director may approve an incentive run"
    return None


def _four_eyes(ctx: FireContext) -> str | None:
    run: IncentiveRun = ctx.obj
    if ctx.actor_id is not None and ctx.actor_id in (run.computed_by, run.created_by):
        return "the director who approves must not be the one who ran it (four eyes)"
    return None


def _second_person_locks(ctx: FireContext) -> str | None:
    run: IncentiveRun = ctx.obj
    if ctx.actor_id is not None and ctx.actor_id == run.approved_by:
        return (
            "the run is released by a second person: the director who approved it cannot also lock it "
            "(four eyes, RELIABILITY LED-09)"
        )
    return None


def _checklist(ctx: FireContext) -> str | None:
    missing = ctx.payload.get("checklist_missing") or []
    if missing:
        return "the close checklist is not complete: " + "; ".join(missing)
    return None


def _stamp(attr: str, at: str) -> object:
    def effect(ctx: FireContext) -> None:
        setattr(ctx.obj, attr, ctx.actor_id)
        setattr(ctx.obj, at, now_local())

    return effect


run_workflow = Workflow(
    "incentive_run",
    IncentiveRun,
    list(R),
    [
        Transition.of("finish", R.computing, R.computed, after=[_stamp("computed_by", "computed_at")]),
        Transition.of("recompute", R.computed, R.computing),
        Transition.of(
            "approve",
            R.computed,
            R.approved,
            guards=[Guard("director", _approver_is_director), Guard("four_eyes", _four_eyes)],
            after=[_stamp("approved_by", "approved_at")],
        ),
        Transition.of(
            "lock",
            R.approved,
            R.locked,
            guards=[Guard("checklist", _checklist), Guard("second_person", _second_person_locks)],
            after=[_stamp("locked_by", "locked_at")],
        ),
    ],
    initial=R.computing,
)


def _answer(ctx: FireContext) -> None:
    dispute: Dispute = ctx.obj
    dispute.answered_by = ctx.actor_id
    dispute.answered_at = now_local()
    dispute.answer = ctx.reason or ctx.payload.get("answer")


def _not_own(ctx: FireContext) -> str | None:
    if ctx.actor_id is not None and ctx.actor_id == ctx.obj.staff_id:
        return "a staff member cannot answer their own dispute"
    return None


dispute_workflow = Workflow(
    "dispute",
    Dispute,
    list(D),
    [
        Transition.of("accept", D.open, D.accepted, guards=[Guard("not_own", _not_own)], after=[_answer]),
        Transition.of(
            "reject",
            D.open,
            D.rejected,
            guards=[Guard("not_own", _not_own)],
            after=[_answer],
            reason_required=True,
        ),
    ],
    initial=D.open,
)
