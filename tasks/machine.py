"""The task state machine (PRODUCT.md §5), declared once as data."""

from __future__ import annotations

from config.database import utcnow
from tasks.models import Task, TaskState
from workflow.engine import FireContext, Transition, Workflow

T = TaskState


def _finished(ctx: FireContext) -> None:
    ctx.obj.finished_at = utcnow()


def _failed(ctx: FireContext) -> None:
    ctx.obj.failed_reason = ctx.reason
    _finished(ctx)


task_workflow = Workflow(
    "task",
    Task,
    list(T),
    [
        Transition.of("start", T.open, T.in_progress),
        Transition.of("complete", T.in_progress, T.done, after=[_finished]),
        Transition.of("fail", T.in_progress, T.failed, reason_required=True, after=[_failed]),
        Transition.of("snooze", T.open, T.snoozed),
        Transition.of("wake", T.snoozed, T.open),
        Transition.of("cancel", [T.open, T.in_progress, T.snoozed], T.cancelled, after=[_finished]),
        Transition.of("expire", [T.open, T.in_progress, T.snoozed], T.expired, after=[_finished]),
    ],
    initial=T.open,
)
