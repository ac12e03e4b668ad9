"""The read side of the task queue: "my queue" (PRODUCT.md §5, JOURNEYS 2), one SQL per section.

A task shows in the queue of its owner, or, while the owner is away (on leave, or ``away_until``
not yet passed) and has named a substitute, in the substitute's queue flagged *delegated*; the
customer and the credit stay with the owner. Tasks of paused, closed, cancelled or settled
campaigns are hidden. Order: customer tier (vip > high > mass), campaign priority, due date.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import Date, Integer, and_, bindparam, case, func, literal, or_, select, union_all
from sqlalchemy.orm import Session, aliased, defer, load_only
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


# Statements are built once with bind parameters (``:sid``, ``:owners``, ``:today``, ``:lim``) and
# reused: building a SELECT costs about as much as running it on an indexed queue.
_SID = bindparam("sid", type_=Integer)
_OWNERS: Any = bindparam("owners", expanding=True)
_TODAY = bindparam("today", type_=Date)
_LIM = bindparam("lim", type_=Integer)


@cache
def _owners_stmt() -> Select[Any]:
    away = owner_away(_TODAY)  # type: ignore[arg-type]
    return select(Staff.id).where(or_(and_(Staff.id == _SID, ~away), and_(Staff.substitute_id == _SID, away)))


def owners_for(session: Session, staff_id: int, today: dt.date) -> list[int]:
    """Whose tasks ``staff_id`` works today: their own unless they are away with a substitute, and
    those of everyone away who named them as substitute (delegation is derived, nothing is moved)."""
    return list(session.scalars(_owners_stmt(), {"sid": staff_id, "today": today}))


def _base(*columns: Any) -> Select[Any]:
    """Tasks of ``:owners`` whose campaign (if any) is not paused, closed, cancelled or settled.
    Only columns of the ``ix_task_queue`` index are touched, so PostgreSQL can answer from it."""
    hidden = select(Campaign.id).where(Campaign.state.in_(HIDDEN_CAMPAIGN_STATES)).scalar_subquery()
    return (
        select(*columns)
        .select_from(Task)
        .where(
            Task.staff_id.in_(_OWNERS),
            or_(Task.campaign_id.is_(None), Task.campaign_id.not_in(hidden)),
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


#: The customer columns a card needs (name, tier, and what the contact suggestion reads).
CARD_COLUMNS = (
    Customer.id,
    Customer.name,
    Customer.type,
    Customer.tier,
    Customer.is_key,
    Customer.do_not_contact,
    Customer.marketing_consent,
    Customer.preferred_channel,
    Customer.contact_window,
    Customer.birth_date,
    Customer.id_number,
    Customer.gender,
    Customer.occupation,
    Customer.tags,
)


def _top(section: str) -> Select[Any]:
    """The section's top ``:lim`` task ids in queue order, answered from the queue index (and
    the customer's tier)."""
    inner = (
        _base(Task.id.label("id"), TIER_RANK.label("tier_rank"))
        .outerjoin(Customer, Customer.id == Task.customer_id)
        .where(section_filter(section, _TODAY))  # type: ignore[arg-type]
        .order_by(TIER_RANK, Task.priority.desc(), Task.due_on, Task.id)
        .limit(_LIM)
        .subquery(f"top_{section}")
    )
    return select(inner.c.id, inner.c.tier_rank, literal(SECTIONS.index(section)).label("section"))


def _load(top: Any) -> Select[Any]:
    """Load only the chosen tasks, their customers (card columns) and owners."""
    return (
        select(Task, Customer, Owner.id.label("owner_id"), Owner.name.label("owner_name"), top.c.section)
        .select_from(top)
        .join(Task, Task.id == top.c.id)
        .join(Owner, Owner.id == Task.staff_id)
        .outerjoin(Customer, Customer.id == Task.customer_id)
        .order_by(top.c.section, top.c.tier_rank, Task.priority.desc(), Task.due_on, Task.id)
        .options(load_only(*CARD_COLUMNS), defer(Task.detail), defer(Task.failed_reason))
    )


@cache
def _section_stmt(section: str) -> Select[Any]:
    return _load(_top(section).subquery("top"))


@cache
def _queue_stmt() -> Select[Any]:
    """Every section in one round trip: a UNION ALL of the four top-N picks, then one load."""
    return _load(union_all(*(_top(s) for s in SECTIONS)).subquery("top"))


def section_select(owner_ids: list[int], section: str, today: dt.date, limit: int = 50) -> Select[Any]:
    """The SELECT of one section's tasks of ``owner_ids`` (see :func:`owners_for`), in queue order;
    only the customer columns a card needs are loaded."""
    if section not in SECTIONS:
        raise ValueError(f"unknown queue section {section!r}; expected one of {', '.join(SECTIONS)}")
    return _section_stmt(section).params(owners=list(owner_ids), today=today, lim=limit)


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


@cache
def _counts_stmt() -> Select[Any]:
    bucket = case(
        (Task.state == TaskState.snoozed, "snoozed"),
        (Task.due_on < _TODAY, "overdue"),
        (Task.due_on == _TODAY, "today"),
        else_="upcoming",
    ).label("bucket")
    return _base(bucket, func.count()).where(Task.state.in_((*ACTIVE, TaskState.snoozed))).group_by(bucket)


def counts(
    session: Session, staff_id: int, today: dt.date | None = None, owners: list[int] | None = None
) -> dict[str, int]:
    """How many tasks per section ("Today: 12, overdue: 2"), one grouped query."""
    today = today or clock.today()
    owners = owners_for(session, staff_id, today) if owners is None else owners
    found = {str(b): int(n) for b, n in session.execute(_counts_stmt(), {"owners": owners, "today": today})}
    return {s: found.get(s, 0) for s in SECTIONS}


def my_queue(
    session: Session, staff_id: int, today: dt.date | None = None, limit: int = 50, suggest: bool = True
) -> dict[str, list[QueueItem]]:
    """The caller's queue by section, each in priority order, with the suggested channel and time."""
    today = today or clock.today()
    out: dict[str, list[QueueItem]] = {}
    plans: dict[int, dict[str, Any] | None] = {}
    owners = owners_for(session, staff_id, today)
    out = {section: [] for section in SECTIONS}
    params = {"owners": owners, "today": today, "lim": limit}
    for task, customer, owner_id, owner_name, index in session.execute(_queue_stmt(), params):
        section = SECTIONS[index]
        out[section].append(
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
