"""The read side of the task queue: "my queue" (PRODUCT.md §5, JOURNEYS 2), one SQL per section.

A task shows in the queue of its owner, or, while the owner is away (on leave, or ``away_until``
not yet passed) and has named a substitute, in the substitute's queue flagged *delegated*; the
customer and the credit stay with the owner. Tasks of paused, closed, cancelled or settled
campaigns are hidden. Order: customer tier (vip > high > mass), campaign priority, due date.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql import Select
from sqlalchemy.sql.elements import ColumnElement

from campaigns.models import Assignment, Campaign, CampaignState
from config import clock
from customers.models import Customer
from org.models import Staff, StaffStatus
from tasks.models import Task, TaskState

SECTIONS = ("overdue", "today", "upcoming", "snoozed")
HIDDEN_CAMPAIGN_STATES = (
    CampaignState.paused,
    CampaignState.closed,
    CampaignState.cancelled,
    CampaignState.settled,
)
ACTIVE = (TaskState.open, TaskState.in_progress)

Owner = aliased(Staff, name="owner")


def owner_away(today: dt.date, staff: Any = Staff) -> ColumnElement[bool]:
    """SQL: the staff member is away and has a substitute."""
    return and_(
        staff.substitute_id.is_not(None),
        or_(
            staff.status == StaffStatus.on_leave,
            and_(staff.away_until.is_not(None), staff.away_until >= today),
        ),
    )


def owners_for(session: Session, staff_id: int, today: dt.date) -> list[int]:
    """Whose tasks ``staff_id`` works today: their own unless they are away with a substitute, and
    those of everyone away who named them as substitute (delegation is derived, nothing is moved)."""
    away = owner_away(today)
    return list(
        session.scalars(
            select(Staff.id).where(
                or_(and_(Staff.id == staff_id, ~away), and_(Staff.substitute_id == staff_id, away))
            )
        )
    )


def _base(owner_ids: list[int], *columns: Any) -> Select[Any]:
    return (
        select(*columns)
        .select_from(Task)
        .join(Owner, Owner.id == Task.staff_id)
        .outerjoin(Campaign, Campaign.id == Task.campaign_id)
        .where(
            Task.staff_id.in_(owner_ids),
            or_(Task.campaign_id.is_(None), Campaign.state.not_in(HIDDEN_CAMPAIGN_STATES)),
        )
    )


def section_filter(section: str, today: dt.date) -> ColumnElement[bool]:
    if section == "overdue":
        return and_(Task.state.in_(ACTIVE), Task.due_on < today)
    if section == "today":
        return and_(Task.state.in_(ACTIVE), Task.due_on == today)
    if section == "upcoming":
        return and_(Task.state.in_(ACTIVE), Task.due_on > today)
    if section == "snoozed":
        return Task.state == TaskState.snoozed
    raise ValueError(f"unknown queue section {section!r}; expected one of {', '.join(SECTIONS)}")


TIER_RANK = case(
    (Customer.tier == "vip", 0), (Customer.tier == "high", 1), (Customer.tier == "mass", 2), else_=3
)


def section_select(owner_ids: list[int], section: str, today: dt.date, limit: int = 50) -> Select[Any]:
    """The SELECT of one section's tasks of ``owner_ids`` (see :func:`owners_for`), in queue order."""
    stmt = (
        _base(owner_ids, Task, Customer, Owner.id.label("owner_id"), Owner.name.label("owner_name"))
        .outerjoin(Customer, Customer.id == Task.customer_id)
        .where(section_filter(section, today))
        .order_by(TIER_RANK, Task.priority.desc(), Task.due_on, Task.id)
        .limit(limit)
    )
    return stmt


@dataclass
class QueueItem:
    """One task card: the task, its customer, whether it is delegated, and the contact suggestion."""

    task: Task
    customer: Customer | None
    section: str
    delegated: bool
    owner_name: str
    overdue_days: int
    suggestion: Any  # customers.contact.Suggestion or None
    plan: dict[str, Any] | None = None


def counts(session: Session, staff_id: int, today: dt.date | None = None) -> dict[str, int]:
    """How many tasks per section ("Today: 12, overdue: 2"), one grouped query."""
    today = today or clock.today()
    bucket = case(
        (Task.state == TaskState.snoozed, "snoozed"),
        (Task.due_on < today, "overdue"),
        (Task.due_on == today, "today"),
        else_="upcoming",
    ).label("bucket")
    stmt = (
        _base(owners_for(session, staff_id, today), bucket, func.count())
        .where(Task.state.in_((*ACTIVE, TaskState.snoozed)))
        .group_by(bucket)
    )
    found = {str(b): int(n) for b, n in session.execute(stmt)}
    return {s: found.get(s, 0) for s in SECTIONS}


def my_queue(
    session: Session, staff_id: int, today: dt.date | None = None, limit: int = 50, suggest: bool = True
) -> dict[str, list[QueueItem]]:
    """The caller's queue by section, each in priority order, with the suggested channel and time."""
    today = today or clock.today()
    out: dict[str, list[QueueItem]] = {}
    plans: dict[int, dict[str, Any] | None] = {}
    owners = owners_for(session, staff_id, today)
    for section in SECTIONS:
        items = []
        for task, customer, owner_id, owner_name in session.execute(
            section_select(owners, section, today, limit)
        ):
            items.append(
                QueueItem(
                    task=task,
                    customer=customer,
                    section=section,
                    delegated=owner_id != staff_id,
                    owner_name=owner_name,
                    overdue_days=max(0, (today - task.due_on).days) if section == "overdue" else 0,
                    suggestion=_suggest(customer, today) if suggest and customer is not None else None,
                )
            )
        out[section] = items
    ids = [i.task.assignment_id for items in out.values() for i in items if i.task.assignment_id]
    if ids:
        plans = dict(
            session.execute(select(Assignment.id, Assignment.plan).where(Assignment.id.in_(ids))).all()
        )
    for items in out.values():
        for item in items:
            if item.task.assignment_id:
                item.plan = plans.get(item.task.assignment_id)
    return out


def _suggest(customer: Customer, today: dt.date) -> Any:
    from customers.contact import suggest_contact

    return suggest_contact(customer, on=today)


def bare_sql() -> str:
    """The same query as :func:`section_select` for the "today" section, as plain SQL (the
    benchmark's baseline); ``:owners`` is an expanding bind parameter."""
    return (
        "SELECT t.*, c.*, o.id, o.name FROM task t JOIN staff o ON o.id = t.staff_id "
        "LEFT JOIN campaign k ON k.id = t.campaign_id LEFT JOIN customer c ON c.id = t.customer_id "
        "WHERE t.staff_id IN :owners "
        "AND (t.campaign_id IS NULL OR k.state NOT IN ('paused','closed','cancelled','settled')) "
        "AND t.state IN ('open','in_progress') AND t.due_on = :today "
        "ORDER BY CASE WHEN c.tier = 'vip' THEN 0 WHEN c.tier = 'high' THEN 1 WHEN c.tier = 'mass' THEN 2 ELSE 3 END, "
        "t.priority DESC, t.due_on, t.id LIMIT :lim"
    )


def failure_report(session: Session, branch_ids: frozenset[int] | None = None) -> list[dict[str, Any]]:
    """Failure reasons per campaign and per branch (failed tasks and follow-ups that name a reason)."""
    from org.models import Branch

    stmt = (
        select(Campaign.code, Campaign.name, Branch.code, Task.failed_reason, func.count())
        .select_from(Task)
        .join(Branch, Branch.id == Task.branch_id)
        .outerjoin(Campaign, Campaign.id == Task.campaign_id)
        .where(Task.state == TaskState.failed)
        .group_by(Campaign.code, Campaign.name, Branch.code, Task.failed_reason)
        .order_by(func.count().desc(), Campaign.code, Branch.code)
    )
    if branch_ids is not None:
        stmt = stmt.where(Task.branch_id.in_(sorted(branch_ids)))
    return [
        {
            "campaign_code": c or "",
            "campaign_name": n or "",
            "branch_code": b,
            "reason": r or "",
            "count": int(k),
        }
        for c, n, b, r, k in session.execute(stmt)
    ]
