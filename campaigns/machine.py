"""The campaign and assignment state machines (PRODUCT.md §5), declared once as data."""

from __future__ import annotations

from campaigns.models import Assignment, AssignmentState, Campaign, CampaignState
from config import clock
from config.database import now_local
from workflow.engine import FireContext, Guard, Transition, Workflow

C = CampaignState
A = AssignmentState


def _end_not_passed(ctx: FireContext) -> str | None:
    c: Campaign = ctx.obj
    today = clock.today()
    if c.end_date < today:
        return f"its end date {c.end_date.isoformat()} has passed"
    return None


def _population_not_empty(ctx: FireContext) -> str | None:
    from campaigns.population import population_count  # the population module answers

    n = population_count(ctx.session, ctx.obj)
    return None if n > 0 else "its population is empty: no customer matches"


def _targets_set(ctx: FireContext) -> str | None:
    return None if ctx.obj.targets else "no targets are set"


def _rules_set(ctx: FireContext) -> str | None:
    c: Campaign = ctx.obj
    return None if (c.rules or c.rules_none) else "no reward rules are set (set rules, or choose 'no rules' explicitly)"


def _compliant(ctx: FireContext) -> str | None:
    from campaigns.launch_check import blocking_findings

    problems = blocking_findings(ctx.session, ctx.obj)
    return "; ".join(problems) if problems else None


def _start_reached(ctx: FireContext) -> str | None:
    c: Campaign = ctx.obj
    return None if c.start_date <= clock.today() else f"its start date {c.start_date.isoformat()} has not come"


def _mark_launched(ctx: FireContext) -> None:
    ctx.obj.launched_at = now_local()


def _keep_reason(ctx: FireContext) -> None:
    ctx.obj.state_reason = ctx.reason


campaign_workflow = Workflow(
    "campaign",
    Campaign,
    list(C),
    [
        Transition.of(
            "launch",
            C.draft,
            C.scheduled,
            guards=[
                Guard("end_not_passed", _end_not_passed),
                Guard("population_not_empty", _population_not_empty),
                Guard("targets_set", _targets_set),
                Guard("rules_set", _rules_set),
                Guard("compliant", _compliant),
            ],
            after=[_mark_launched],
        ),
        Transition.of(
            "start",
            C.scheduled,
            C.active,
            guards=[Guard("start_reached", _start_reached, sql=lambda t, p: t.c.start_date <= clock.today())],
        ),
        Transition.of("pause", C.active, C.paused, after=[_keep_reason]),
        Transition.of("resume", C.paused, C.active, after=[_keep_reason]),
        Transition.of("close", [C.active, C.paused], C.closed, after=[_keep_reason]),
        Transition.of("settle", C.closed, C.settled),
        Transition.of(
            "cancel", [C.draft, C.scheduled, C.active, C.paused], C.cancelled, reason_required=True, after=[_keep_reason]
        ),
    ],
    initial=C.draft,
)


assignment_workflow = Workflow(
    "assignment",
    Assignment,
    list(A),
    [
        Transition.of("assign", A.pool, A.assigned),
        Transition.of("claim", A.pool, A.assigned),
        Transition.of("contact", A.assigned, A.contacted),
        Transition.of("interest", [A.assigned, A.contacted], A.interested),
        Transition.of("convert", [A.assigned, A.contacted, A.interested], A.converted),
        Transition.of("decline", [A.assigned, A.contacted, A.interested], A.declined),
        Transition.of("unreachable", [A.assigned, A.contacted], A.unreachable),
        Transition.of("release", [A.assigned, A.contacted, A.interested], A.pool),
        Transition.of("close", [A.pool, A.assigned, A.contacted, A.interested], A.closed),
    ],
    initial=A.pool,
)
