"""JSON API of the branch pool (抢单) and the bounty board (悬赏) for the phone client.

Claiming and taking are races: exactly one caller wins (200); the others get 409 with the
message "already claimed/taken by someone else".
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, Field

from campaigns import bounties, pool
from campaigns.bounty_models import Bounty
from campaigns.models import Assignment
from config.database import db
from web.api import TAGS, api, api_scope


class ErrorOut(BaseModel):
    error: str
    message: str


class PoolItemOut(BaseModel):
    id: int
    campaign_id: int
    customer_id: int
    branch_id: int
    state: str
    staff_id: int | None
    reason: str | None
    version: int


class PoolList(BaseModel):
    items: list[PoolItemOut]


class AssignmentPath(BaseModel):
    assignment_id: int


class PoolQuery(BaseModel):
    campaign_id: int | None = None


class BountyOut(BaseModel):
    id: int
    title: str
    customer_id: int
    branch_id: int
    campaign_id: int | None
    amount: Decimal
    deadline: dt.date
    exclusive_days: int
    state: str
    taken_by: int | None
    taken_until: dt.date | None
    winner_id: int | None


class BountyList(BaseModel):
    items: list[BountyOut]


class BountyPath(BaseModel):
    bounty_id: int


class BountyQuery(BaseModel):
    state: str | None = Field(None, max_length=12)


def _assignment(a: Assignment) -> dict[str, Any]:
    return PoolItemOut(
        id=a.id,
        campaign_id=a.campaign_id,
        customer_id=a.customer_id,
        branch_id=a.branch_id,
        state=a.state,
        staff_id=a.staff_id,
        reason=a.reason,
        version=a.version,
    ).model_dump(mode="json")


def _bounty(b: Bounty) -> dict[str, Any]:
    return BountyOut(
        id=b.id,
        title=b.title,
        customer_id=b.customer_id,
        branch_id=b.branch_id,
        campaign_id=b.campaign_id,
        amount=b.amount,
        deadline=b.deadline,
        exclusive_days=b.exclusive_days,
        state=b.state,
        taken_by=b.taken_by,
        taken_until=b.taken_until,
        winner_id=b.winner_id,
    ).model_dump(mode="json")


@api.get("/pool", tags=[TAGS["campaigns"]], responses={200: PoolList, 403: ErrorOut})
def list_pool(query: PoolQuery) -> Any:
    """Pool assignments of the caller's branch in running campaigns (managers)."""
    rows = db.session.scalars(pool.pool_query(api_scope(), query.campaign_id).limit(500))
    return {"items": [_assignment(a) for a in rows]}


@api.post(
    "/pool/<int:assignment_id>/claim",
    tags=[TAGS["campaigns"]],
    responses={200: PoolItemOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut},
)
def claim_from_pool(path: AssignmentPath) -> Any:
    """Claim (抢单) one pool assignment: first claim wins, the others get 409."""
    a = pool.claim(db.session, api_scope(), path.assignment_id)
    db.session.commit()
    return _assignment(a)


@api.post(
    "/pool/next",
    tags=[TAGS["campaigns"]],
    responses={200: PoolItemOut, 403: ErrorOut, 404: ErrorOut},
)
def claim_next_from_pool(query: PoolQuery) -> Any:
    """Take the next customer of the pool (highest campaign priority, oldest first); managers
    pulling at once each get a different one. 404 when the pool is empty."""
    a = pool.claim_next(db.session, api_scope(), query.campaign_id)
    if a is None:
        return {"error": "Not found", "message": "The pool is empty"}, 404
    db.session.commit()
    return _assignment(a)


@api.get("/bounties", tags=[TAGS["campaigns"]], responses={200: BountyList})
def list_bounties(query: BountyQuery) -> Any:
    """Bounties the caller may see (optionally of one state), by deadline."""
    rows = db.session.scalars(bounties.board_query(api_scope(), query.state).limit(500))
    return {"items": [_bounty(b) for b in rows]}


@api.post(
    "/bounties/<int:bounty_id>/take",
    tags=[TAGS["campaigns"]],
    responses={200: BountyOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut},
)
def take_bounty(path: BountyPath) -> Any:
    """Take a bounty (managers of its branch): exclusive for its days; a second taker gets 409."""
    b = bounties.take(db.session, api_scope(), path.bounty_id)
    db.session.commit()
    return _bounty(b)
