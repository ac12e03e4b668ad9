"""Queue endpoints of the JSON API (for a future mobile app): list, start, complete with a
follow-up, fail, snooze, claim; and verify/reject for checkers. Object-level checks: a manager
touches only their own or delegated tasks (anything else is 404)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, Field

from config.database import db
from customers.masking import mask_name
from org.scope import Forbidden
from tasks import claims, queue, services
from tasks.models import Claim, Task
from tasks.retry import retry_busy
from web.api import TAGS, api, api_scope, api_staff
from web.api.idempotency import IdempotencyHeader


class ErrorOut(BaseModel):
    error: str
    message: str


class SuggestionOut(BaseModel):
    channel: str | None
    window: str | None
    reason: str
    allowed: bool


class TaskOut(BaseModel):
    id: int
    kind: str
    title: str
    state: str
    due_on: dt.date
    section: str | None = None
    delegated: bool = False
    customer: str | None = Field(None, description="masked name")
    campaign_id: int | None
    suggestion: SuggestionOut | None = None
    plan: dict[str, Any] | None = None
    version: int


class QueueOut(BaseModel):
    counts: dict[str, int]
    overdue: list[TaskOut]
    today: list[TaskOut]
    upcoming: list[TaskOut]
    snoozed: list[TaskOut]


class QueueQuery(BaseModel):
    limit: int = Field(50, ge=1, le=200)


class TaskPath(BaseModel):
    task_id: int


class ClaimPath(BaseModel):
    claim_id: int


class FollowUpIn(BaseModel):
    channel: Literal["phone", "visit", "branch", "wechat", "sms"]
    content: str = Field(..., max_length=4000, description="what was said; must not be empty")
    reaction: Literal["interested", "neutral", "declined", "unreachable", "converted"]
    next_step: str | None = Field(None, max_length=200)
    next_due: dt.date | None = None
    failure_reason: str | None = Field(None, max_length=500)
    appointment_at: dt.datetime | None = None
    prospect: dict[str, str] | None = None
    referral: dict[str, str] | None = None


class FailIn(BaseModel):
    reason: str = Field(..., max_length=500)


class SnoozeIn(BaseModel):
    until: dt.date


class ClaimIn(BaseModel):
    measure: str = Field(..., max_length=40)
    quantity: str | int | float = "1"
    amount: str | int | float = Field(
        "0", description="yuan, a decimal number ≥ 0 (send a string to keep cents exact)"
    )
    task_id: int | None = None
    evidence_text: str | None = Field(None, max_length=2000)


class VerdictIn(BaseModel):
    reason: str | None = Field(None, max_length=500)


class ClaimOut(BaseModel):
    id: int
    state: str
    measure: str
    quantity: str
    amount: str
    flags: list[str]
    needs_review: bool
    retention_until: dt.date | None
    reason: str | None
    ledger_event_id: int | None


def _suggestion(s: Any) -> SuggestionOut | None:
    if s is None:
        return None
    return SuggestionOut(channel=s.channel, window=s.window, reason=s.reason, allowed=s.allowed)


def _task_out(
    task: Task | queue.TaskCard, item: queue.QueueItem | None = None, customer_name: str | None = None
) -> TaskOut:
    return TaskOut(
        id=task.id,
        kind=task.kind,
        title=task.title,
        state=task.state,
        due_on=task.due_on,
        section=item.section if item else None,
        delegated=item.delegated if item else False,
        customer=(
            mask_name(item.customer.name, item.customer.type) if item and item.customer else customer_name
        ),
        campaign_id=task.campaign_id,
        suggestion=_suggestion(item.suggestion) if item else None,
        plan=item.plan if item else None,
        version=task.version,
    )


def _claim_out(c: Claim) -> ClaimOut:
    return ClaimOut(
        id=c.id,
        state=c.state,
        measure=c.measure,
        quantity=str(c.quantity),
        amount=str(c.amount),
        flags=list(c.flags or []),
        needs_review=c.needs_review,
        retention_until=c.retention_until,
        reason=c.reason,
        ledger_event_id=c.ledger_event_id,
    )


def _manager() -> int:
    scope = api_scope()
    if not scope.has("manager"):
        raise Forbidden("The queue is for managers (客户经理)")
    return api_staff().id


def _task(task_id: int) -> Task:
    return services.get_task(db.session, _manager(), task_id)


@api.get("/queue", tags=[TAGS["queue"]], responses={200: QueueOut, 403: ErrorOut})
def list_queue(query: QueueQuery) -> Any:
    """My queue: overdue, today, upcoming, snoozed, each in priority order with the suggestion."""
    sid = _manager()
    sections = queue.my_queue(db.session, sid, limit=query.limit)
    out = {name: [_task_out(i.task, i) for i in items] for name, items in sections.items()}
    return QueueOut(counts=queue.counts(db.session, sid), **out).model_dump(mode="json")


@api.post(
    "/queue/tasks/<int:task_id>/start",
    tags=[TAGS["queue"]],
    responses={200: TaskOut, 404: ErrorOut, 409: ErrorOut},
)
def start_task(path: TaskPath) -> Any:
    """Start a task (refused for a do-not-contact customer or outside their contact window)."""

    def work() -> Task:
        task = _task(path.task_id)
        services.start(db.session, task, api_staff().id)
        db.session.commit()
        return task

    return _task_out(retry_busy(db.session, work)).model_dump(mode="json")


@api.post(
    "/queue/tasks/<int:task_id>/complete",
    tags=[TAGS["queue"]],
    responses={200: TaskOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut},
)
def complete_task(path: TaskPath, body: FollowUpIn) -> Any:
    """Complete a task with its follow-up record (required content); the next step makes the next task."""
    data = services.FollowUpInput(
        channel=body.channel,
        content=body.content,
        reaction=body.reaction,
        next_step=body.next_step,
        next_due=body.next_due,
        failure_reason=body.failure_reason,
        book_appointment_at=body.appointment_at.replace(tzinfo=None) if body.appointment_at else None,
        prospect=body.prospect,
        referral=body.referral,
    )

    def work() -> Task:
        task = _task(path.task_id)
        services.complete(db.session, task, api_staff().id, data)
        db.session.commit()
        return task

    return _task_out(retry_busy(db.session, work)).model_dump(mode="json")


@api.post(
    "/queue/tasks/<int:task_id>/fail",
    tags=[TAGS["queue"]],
    responses={200: TaskOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut},
)
def fail_task(path: TaskPath, body: FailIn) -> Any:
    """Fail a task; a reason is required (it is reported per campaign and branch)."""

    def work() -> Task:
        task = _task(path.task_id)
        services.fail(db.session, task, api_staff().id, body.reason)
        db.session.commit()
        return task

    return _task_out(retry_busy(db.session, work)).model_dump(mode="json")


@api.post(
    "/queue/tasks/<int:task_id>/snooze",
    tags=[TAGS["queue"]],
    responses={200: TaskOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut},
)
def snooze_task(path: TaskPath, body: SnoozeIn) -> Any:
    """Snooze an open task to a future date."""

    def work() -> Task:
        task = _task(path.task_id)
        services.snooze(db.session, task, api_staff().id, body.until)
        db.session.commit()
        return task

    return _task_out(retry_busy(db.session, work)).model_dump(mode="json")


@api.post("/claims", tags=[TAGS["queue"]], responses={201: ClaimOut, 404: ErrorOut, 422: ErrorOut})
def create_claim(body: ClaimIn, header: IdempotencyHeader) -> Any:
    """Claim a result (业绩申报); from a task, its campaign and customer are used."""
    sid = _manager()

    def work() -> Claim:
        task = services.get_task(db.session, sid, body.task_id) if body.task_id else None
        c = claims.submit(
            db.session,
            sid,
            measure=body.measure,
            quantity=body.quantity,
            amount=body.amount,
            campaign_id=task.campaign_id if task else None,
            customer_id=task.customer_id if task else None,
            assignment_id=task.assignment_id if task else None,
            task_id=task.id if task else None,
            evidence_text=body.evidence_text,
        )
        db.session.commit()
        return c

    return _claim_out(retry_busy(db.session, work)).model_dump(mode="json"), 201


class ClaimList(BaseModel):
    items: list[ClaimOut]


@api.get("/claims", tags=[TAGS["queue"]], responses={200: ClaimList, 403: ErrorOut})
def list_claims() -> Any:
    """My claims, newest first: state, flags, retention date and the checker's reason."""
    sid = _manager()
    return ClaimList(items=[_claim_out(c) for c in claims.my_claims(db.session, sid)]).model_dump(mode="json")


def _checker_claim(claim_id: int) -> Claim:
    scope = api_scope()
    if not scope.has("checker", "admin"):
        raise Forbidden("Verification is for checkers (复核员)")
    return claims.get_claim_for_checker(db.session, scope, claim_id)


@api.post(
    "/claims/<int:claim_id>/verify",
    tags=[TAGS["queue"]],
    responses={200: ClaimOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut},
)
def verify_claim(path: ClaimPath, body: VerdictIn, header: IdempotencyHeader) -> Any:
    """Verify a claim (never one's own: 403)."""
    c = _checker_claim(path.claim_id)
    claims.verify(db.session, c, api_staff().id, note=body.reason)
    db.session.commit()
    return _claim_out(c).model_dump(mode="json")


@api.post(
    "/claims/<int:claim_id>/reject",
    tags=[TAGS["queue"]],
    responses={200: ClaimOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut},
)
def reject_claim(path: ClaimPath, body: VerdictIn, header: IdempotencyHeader) -> Any:
    """Reject a claim with a reason the manager sees (never one's own: 403)."""
    c = _checker_claim(path.claim_id)
    claims.reject(db.session, c, api_staff().id, body.reason)
    db.session.commit()
    return _claim_out(c).model_dump(mode="json")
