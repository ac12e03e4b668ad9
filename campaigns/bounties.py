"""Bounties (悬赏营销): post, take, release/expire, win, pay (PRODUCT.md §3, §5; JOURNEYS 5).

* a director posts a bounty on one hard target (a customer of their branches) with an amount,
  a deadline and an exclusivity period;
* a manager of that branch takes it: one conditional ``UPDATE`` — of two managers taking at once
  exactly one gets it, the other a 409 (:class:`AlreadyTaken`);
* the scheduled job (:mod:`campaigns.bounty_jobs`) returns bounties whose exclusivity ended to
  open and expires open ones past their deadline, set-based;
* a verified claim of the taker on the target customer wins it (:func:`mark_won`, or
  :func:`win_for_verified_claim` from the claims side); the incentive run pays it
  (:func:`won_unpaid` lists what to pay, :func:`mark_paid` records it).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import Select, or_, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from campaigns.bounty_models import Bounty, BountyState
from campaigns.models import TERMINAL, Campaign
from config import clock
from customers.models import Customer
from org.models import Role
from org.scope import Forbidden, NotFound, Scope
from org.services import audit
from workflow.engine import bulk_fire, fire
from workflow.errors import ConflictError, GuardRefused
from workflow.models import TransitionRecord

B = BountyState
MAX_AMOUNT = Decimal("10000000")


class BountyInputError(ValueError):
    """Bad input for a bounty; ``field`` names the form field (nothing was changed)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field, self.message = field, message


class AlreadyTaken(ConflictError):
    """Another manager took the bounty first (409)."""

    def __init__(self, bounty_id: int) -> None:
        super().__init__("bounty", bounty_id, "already taken by someone else")
        self.args = (f"Bounty {bounty_id} was already taken by someone else",)

    def __str__(self) -> str:
        return str(self.args[0])


# -- reading -----------------------------------------------------------------------------------------


def _manager_branches(scope: Scope) -> set[int]:
    if not scope.has(Role.manager):
        return set()
    return set(scope.branches_for(Role.manager) or ()) | {scope.branch_id}


def visible(scope: Scope) -> Any:
    """WHERE clause: bounties the caller may see (directors/checkers/admins by branch, managers
    their own branch)."""
    clauses = [scope.branch_filter(Bounty.branch_id)]
    mine = _manager_branches(scope)
    if mine:
        clauses.append(Bounty.branch_id.in_(sorted(mine)))
    return or_(*clauses)


def board_query(scope: Scope, state: str | None = None) -> Select[tuple[Bounty]]:
    stmt = select(Bounty).where(visible(scope)).order_by(Bounty.deadline, Bounty.id)
    if state:
        stmt = stmt.where(Bounty.state == state)
    return stmt


def mine_query(scope: Scope) -> Select[tuple[Bounty]]:
    """Bounties the caller holds or has won."""
    return (
        select(Bounty)
        .where(or_(Bounty.taken_by == scope.staff_id, Bounty.winner_id == scope.staff_id))
        .order_by(Bounty.deadline, Bounty.id)
    )


def get_bounty(session: Session, scope: Scope, bounty_id: int) -> Bounty:
    b = session.scalars(select(Bounty).where(Bounty.id == bounty_id, visible(scope))).first()
    if b is None:
        raise NotFound(f"No bounty {bounty_id}")
    return b


# -- verbs ---------------------------------------------------------------------------------------------


def _amount(value: Any) -> Decimal:
    if isinstance(value, float):
        raise BountyInputError("amount", "give the amount as a decimal, not a float")
    try:
        amount = Decimal(str(value).strip().replace(",", ""))
    except (InvalidOperation, ValueError):
        raise BountyInputError("amount", f"{value!r} is not an amount of money") from None
    if not amount.is_finite() or amount <= 0:
        raise BountyInputError("amount", "must be more than 0")
    if amount > MAX_AMOUNT:
        raise BountyInputError("amount", f"must be at most {MAX_AMOUNT}")
    if amount != amount.quantize(Decimal("0.01")):
        raise BountyInputError("amount", "at most two decimals (fen)")
    return amount.quantize(Decimal("0.01"))


def post(
    session: Session,
    scope: Scope,
    *,
    customer_id: int,
    title: str,
    amount: Any,
    deadline: dt.date,
    exclusive_days: int = 14,
    campaign_id: int | None = None,
    description: str | None = None,
) -> Bounty:
    """A director posts a bounty on one customer of their branches. Flushes."""
    if not scope.has(Role.director):
        raise Forbidden("Only a director may post a bounty")
    title = (title or "").strip()
    if not title:
        raise BountyInputError("title", "is required")
    if len(title) > 200:
        raise BountyInputError("title", "at most 200 characters")
    money = _amount(amount)
    if not isinstance(deadline, dt.date):
        raise BountyInputError("deadline", "is required")
    if deadline < clock.today():
        raise BountyInputError("deadline", f"{deadline.isoformat()} has passed")
    if not isinstance(exclusive_days, int) or not 1 <= exclusive_days <= 90:
        raise BountyInputError("exclusive_days", "must be a whole number of days from 1 to 90")
    customer = session.scalars(
        select(Customer).where(
            Customer.id == customer_id, scope.branch_filter(Customer.branch_id, Role.director)
        )
    ).first()
    if customer is None:
        raise BountyInputError("customer", f"no customer {customer_id} in your branches")
    if campaign_id is not None:
        from campaigns.services import get_campaign

        try:
            campaign: Campaign = get_campaign(session, scope, campaign_id)
        except NotFound:
            raise BountyInputError("campaign", f"no campaign {campaign_id} in your scope") from None
        if campaign.state in TERMINAL:
            raise BountyInputError("campaign", f"campaign {campaign.code} is {campaign.state}")
    b = Bounty(
        campaign_id=campaign_id,
        branch_id=customer.branch_id,
        title=title,
        description=(description or "").strip() or None,
        customer_id=customer.id,
        amount=money,
        deadline=deadline,
        exclusive_days=exclusive_days,
        state=B.open.value,
        posted_by=scope.staff_id,
    )
    session.add(b)
    session.flush()
    audit(
        session,
        scope.staff_id,
        "bounty.post",
        "bounty",
        b.id,
        detail={"amount": str(money), "customer_id": customer.id},
    )
    _tell_branch_managers(session, b)
    return b


def _tell_branch_managers(session: Session, b: Bounty) -> None:
    """A bell notice to the active managers of the bounty's branch (a loop over staff, not rows)."""
    try:
        from tasks.notify import notify
    except ImportError:  # pragma: no cover - the notifier is part of the product
        return
    from org.models import Staff, StaffRole, StaffStatus

    managers = session.scalars(
        select(Staff.id).where(
            Staff.branch_id == b.branch_id,
            Staff.status == StaffStatus.active.value,
            select(StaffRole.id)
            .where(StaffRole.staff_id == Staff.id, StaffRole.role == Role.manager.value)
            .exists(),
        )
    )
    text = f"New bounty (悬赏): {b.title} — ¥{b.amount}, deadline {b.deadline.isoformat()}"
    for staff_id in managers.all():
        notify(session, staff_id, "bounty", text, link="/bounties/", key=f"bounty-posted:{b.id}")


def take(session: Session, scope: Scope, bounty_id: int) -> Bounty:
    """A manager of the bounty's branch takes it, exclusively for its ``exclusive_days``.

    One conditional UPDATE (state open, version seen, deadline not passed); the loser of a race
    gets :class:`AlreadyTaken`. Flushes.
    """
    if not scope.has(Role.manager):
        raise Forbidden("Only a customer manager may take a bounty")
    b = session.scalars(
        select(Bounty).where(Bounty.id == bounty_id, Bounty.branch_id.in_(sorted(_manager_branches(scope))))
    ).first()
    if b is None:
        raise NotFound(f"No bounty {bounty_id}")
    today = clock.today()
    if b.state != B.open.value:
        if b.state == B.taken.value:
            raise AlreadyTaken(bounty_id)
        raise GuardRefused("bounty", bounty_id, "take", [f"it is {b.state}"])
    if b.deadline < today:
        raise GuardRefused("bounty", bounty_id, "take", [f"its deadline {b.deadline.isoformat()} has passed"])
    # exclusive for N days including today: N = 1 means until the end of today
    seen, until = b.version, today + dt.timedelta(days=b.exclusive_days - 1)
    t = Bounty.__table__
    try:
        n = session.execute(
            update(t)
            .where(t.c.id == bounty_id, t.c.state == B.open.value, t.c.version == seen)
            .values(state=B.taken.value, taken_by=scope.staff_id, taken_until=until, version=t.c.version + 1)
        ).rowcount
    except OperationalError as exc:  # SQLite: a stale snapshot cannot become a writer
        if "locked" in str(exc).lower():
            raise AlreadyTaken(bounty_id) from exc
        raise
    if n != 1:
        raise AlreadyTaken(bounty_id)
    session.add(
        TransitionRecord(
            entity="bounty",
            entity_id=bounty_id,
            from_state=B.open.value,
            to_state=B.taken.value,
            trigger="take",
            actor_id=scope.staff_id,
            payload={"taken_until": until.isoformat()},
        )
    )
    audit(session, scope.staff_id, "bounty.take", "bounty", bounty_id)
    session.flush()
    session.refresh(b)
    return b


def withdraw(session: Session, scope: Scope, bounty_id: int, reason: str) -> Bounty:
    """A director of the bounty's branch calls it off (only while open; reason required)."""
    if not scope.has(Role.director):
        raise Forbidden("Only a director may withdraw a bounty")
    b = get_bounty(session, scope, bounty_id)
    if not scope.can_see_branch(b.branch_id, Role.director):
        raise NotFound(f"No bounty {bounty_id}")
    fire(session, b, "withdraw", actor_id=scope.staff_id, reason=reason)
    return b


def release_expired(session: Session, today: dt.date | None = None) -> dict[str, int]:
    """The scheduled job: bounties whose exclusivity ended go back to open; open bounties past
    their deadline expire. Set-based; safe to run any number of times."""
    today = today or clock.today()
    released = bulk_fire(
        session,
        Bounty,
        "release",
        Bounty.taken_until < today,
        reason="exclusive period ended",
        values={"taken_by": None, "taken_until": None},
    )
    expired = bulk_fire(session, Bounty, "expire", Bounty.deadline < today, reason="deadline passed")
    return {"released": released, "expired": expired}


def mark_won(session: Session, bounty_id: int, staff_id: int, actor_id: int | None = None) -> Bounty:
    """A verified claim of ``staff_id`` (the taker) on the bounty's customer wins it."""
    b = session.get(Bounty, bounty_id)
    if b is None:
        raise NotFound(f"No bounty {bounty_id}")
    fire(session, b, "win", actor_id=actor_id, reason="claim verified", payload={"staff_id": staff_id})
    return b


def win_for_verified_claim(
    session: Session, customer_id: int, staff_id: int, actor_id: int | None = None
) -> list[int]:
    """For the claims side: mark won every bounty on ``customer_id`` held by ``staff_id``.
    Returns the ids won (empty when the claimant held none)."""
    ids = list(
        session.scalars(
            select(Bounty.id).where(
                Bounty.customer_id == customer_id, Bounty.taken_by == staff_id, Bounty.state == B.taken.value
            )
        )
    )
    for bid in ids:
        mark_won(session, bid, staff_id, actor_id)
    return ids


def won_unpaid(session: Session, branch_ids: list[int] | None = None) -> list[tuple[int, int, Decimal]]:
    """For the incentive run: (bounty id, winner staff id, amount) of won, unpaid bounties."""
    stmt = (
        select(Bounty.id, Bounty.winner_id, Bounty.amount)
        .where(Bounty.state == B.won.value)
        .order_by(Bounty.id)
    )
    if branch_ids is not None:
        stmt = stmt.where(Bounty.branch_id.in_(branch_ids))
    return [(i, int(w), Decimal(a)) for i, w, a in session.execute(stmt)]


def mark_paid(
    session: Session, bounty_id: int, run: str | None = None, actor_id: int | None = None
) -> Bounty:
    """The incentive run paid the bounty (``run`` names the run, e.g. ``2027-01:U00``)."""
    b = session.get(Bounty, bounty_id)
    if b is None:
        raise NotFound(f"No bounty {bounty_id}")
    fire(
        session,
        b,
        "pay",
        actor_id=actor_id,
        reason=f"paid in run {run}" if run else "paid",
        payload={"run": run} if run else None,
    )
    return b
