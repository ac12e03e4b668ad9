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

from sqlalchemy import Date, Integer, and_, any_, bindparam, case, func, literal, or_, select, union_all
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


def _base(*columns: Any, owners: Any = None) -> Select[Any]:
    """Tasks that ``:sid`` works on ``:today`` (see :func:`owners_for`; or of ``owners``, a bind
    parameter of owner ids) whose campaign (if any) is not paused, closed, cancelled or settled.
    Only columns of the ``ix_task_queue`` index are touched, so PostgreSQL can answer from it."""
    hidden = select(Campaign.id).where(Campaign.state.in_(HIDDEN_CAMPAIGN_STATES)).scalar_subquery()
    return (
        select(*columns)
        .select_from(Task)
        .where(
            Task.staff_id.in_(_owners_stmt() if owners is None else owners),
            or_(Task.campaign_id.is_(None), Task.campaign_id.not_in(hidden)),
        )
    )


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


#: The task columns a card shows or acts on (the queue page, the JSON API, the CLI).
TASK_CARD_COLUMNS = (
    Task.id,
    Task.kind,
    Task.title,
    Task.state,
    Task.due_on,
    Task.snoozed_until,
    Task.priority,
    Task.campaign_id,
    Task.assignment_id,
    Task.customer_id,
    Task.staff_id,
    Task.version,
)

#: Which tasks each section holds (the index ranges of ``ix_task_queue``).
_SECTION_FILTERS = {
    "overdue": lambda: and_(Task.state.in_(ACTIVE), Task.due_on < _TODAY),
    "today": lambda: and_(Task.state.in_(ACTIVE), Task.due_on == _TODAY),
    "upcoming": lambda: and_(Task.state.in_(ACTIVE), Task.due_on > _TODAY),
    "snoozed": lambda: Task.state == TaskState.snoozed,
}


def _materialized(cte: Any) -> Any:
    """PostgreSQL: compute the CTE once, before the rest (SQLite decides by itself)."""
    return cte.prefix_with("MATERIALIZED", dialect="postgresql")


def _cards_stmt(sections: tuple[str, ...], dialect: str) -> Select[Any]:
    """The cards of ``sections`` for ``:sid`` on ``:today``, ``:lim`` per section, in queue order.

    1. ``owners``: whose tasks ``:sid`` works (:func:`owners_for`), computed once;
    2. ``cust``: the card columns of the customers of those queued tasks, looked up by primary key
       (one lookup per customer, never a pass over the whole customer table);
    3. per section, the top ``:lim`` by tier, campaign priority, due date (and id), each a range
       of the queue index joined to ``cust`` for the tier;
    4. only those rows fetch the task's card columns, the owner's name and the follow-up plan.
    """
    owners = _materialized(_owners_stmt().cte("owners"))
    mine = select(owners.c.id)

    def queued(*columns: Any) -> Select[Any]:
        return _base(*columns, owners=mine)

    if len(sections) == len(SECTIONS):  # every queued task: one range of the queue index per owner
        queued_filter = Task.state.in_((*ACTIVE, TaskState.snoozed))
    else:
        queued_filter = or_(*(_SECTION_FILTERS[s]() for s in sections))
    customer_ids = queued(Task.customer_id).where(queued_filter).distinct()
    if dialect == "postgresql":
        # an index scan for an array of ids, whatever the planner guesses about their number
        wanted = Customer.id == any_(func.array(customer_ids.scalar_subquery()))
    else:
        wanted = Customer.id.in_(customer_ids)
    cust = _materialized(select(*CARD_COLUMNS, TIER_RANK.label("tier_rank")).where(wanted).cte("cust"))
    rank = func.coalesce(cust.c.tier_rank, 3)
    tops = []
    for section in sections:
        inner = (
            queued(
                Task.id.label("id"),
                rank.label("tier_rank"),
                literal(SECTIONS.index(section)).label("section"),
            )
            .outerjoin(cust, cust.c.id == Task.customer_id)
            .where(_SECTION_FILTERS[section]())
            .order_by(rank, Task.priority.desc(), Task.due_on, Task.id)
            .limit(_LIM)
            .subquery(f"top_{section}")
        )
        tops.append(select(inner.c.id, inner.c.tier_rank, inner.c.section))
    top = (tops[0] if len(tops) == 1 else union_all(*tops)).subquery("top")
    return (
        select(
            *TASK_CARD_COLUMNS,
            *(cust.c[c.key].label(f"customer_{c.key}") for c in CARD_COLUMNS),
            Owner.name.label("owner_name"),
            Assignment.plan.label("plan"),
            top.c.section,
        )
        .select_from(top)
        .join(Task, Task.id == top.c.id)
        .join(Owner, Owner.id == Task.staff_id)
        .outerjoin(cust, cust.c.id == Task.customer_id)
        .outerjoin(Assignment, Assignment.id == Task.assignment_id)
        .order_by(top.c.section, top.c.tier_rank, Task.priority.desc(), Task.due_on, Task.id)
    )


@cache
def _queue_stmt(dialect: str) -> Select[Any]:
    """Every section in one round trip."""
    return _cards_stmt(SECTIONS, dialect)


@cache
def _section_stmt(section: str, dialect: str) -> Select[Any]:
    return _cards_stmt((section,), dialect)


def section_select(
    staff_id: int, section: str, today: dt.date, limit: int = 50, dialect: str = "postgresql"
) -> Select[Any]:
    """The SELECT of one section's cards of ``staff_id`` (own and delegated tasks, see
    :func:`owners_for`), in queue order, for ``dialect``; rows for :func:`cards`."""
    if section not in SECTIONS:
        raise ValueError(f"unknown queue section {section!r}; expected one of {', '.join(SECTIONS)}")
    return _section_stmt(section, dialect).params(sid=staff_id, today=today, lim=limit)


@dataclass(slots=True)
class TaskCard:
    """What a queue card shows of a task (read-only; act on a task through :mod:`tasks.services`)."""

    id: int
    kind: str
    title: str
    state: str
    due_on: dt.date
    snoozed_until: dt.date | None
    priority: int
    campaign_id: int | None
    assignment_id: int | None
    customer_id: int | None
    staff_id: int
    version: int


@dataclass(slots=True)
class CustomerCard:
    """What a queue card shows of a customer and what the contact suggestion reads."""

    id: int
    name: str
    type: str
    tier: str | None
    is_key: bool
    do_not_contact: bool
    marketing_consent: bool | None
    preferred_channel: str | None
    contact_window: str | None
    birth_date: dt.date | None
    id_number: str | None
    gender: str | None
    occupation: str | None
    tags: list[str]


_N_TASK = len(TASK_CARD_COLUMNS)
_N_CUSTOMER = len(CARD_COLUMNS)
# cards are built positionally from the rows: the fields follow the selected columns
assert [c.key for c in TASK_CARD_COLUMNS] == list(TaskCard.__dataclass_fields__)
assert [c.key for c in CARD_COLUMNS] == list(CustomerCard.__dataclass_fields__)


@dataclass
class QueueItem:
    """One task card: the task, its customer, whether it is delegated, and the contact suggestion."""

    task: TaskCard
    customer: CustomerCard | None
    section: str
    delegated: bool
    owner_name: str
    overdue_days: int
    suggestion: Any  # customers.contact.Suggestion or None
    plan: dict[str, Any] | None = None


def cards(rows: Any, staff_id: int, today: dt.date, suggest: bool = True) -> dict[str, list[QueueItem]]:
    """Queue items from the rows of :func:`section_select` / the queue statement, by section; one
    customer card (and one contact suggestion) per customer, shared by that customer's tasks."""
    out: dict[str, list[QueueItem]] = {section: [] for section in SECTIONS}
    customers: dict[int, tuple[CustomerCard, Any]] = {}
    for row in rows:
        task = TaskCard(*row[:_N_TASK])
        customer, suggestion = None, None
        if row[_N_TASK] is not None:
            known = customers.get(row[_N_TASK])
            if known is None:
                customer = CustomerCard(*row[_N_TASK : _N_TASK + _N_CUSTOMER])
                known = customers[customer.id] = (customer, _suggest(customer, today) if suggest else None)
            customer, suggestion = known
        owner_name, plan, index = row[_N_TASK + _N_CUSTOMER :]
        section = SECTIONS[index]
        out[section].append(
            QueueItem(
                task=task,
                customer=customer,
                section=section,
                delegated=task.staff_id != staff_id,
                owner_name=owner_name,
                overdue_days=max(0, (today - task.due_on).days) if section == "overdue" else 0,
                suggestion=suggestion,
                plan=plan if task.assignment_id else None,
            )
        )
    return out


@cache
def _counts_stmt(by_list: bool = False) -> Select[Any]:
    bucket = case(
        (Task.state == TaskState.snoozed, "snoozed"),
        (Task.due_on < _TODAY, "overdue"),
        (Task.due_on == _TODAY, "today"),
        else_="upcoming",
    ).label("bucket")
    return (
        _base(bucket, func.count(), owners=_OWNERS if by_list else None)
        .where(Task.state.in_((*ACTIVE, TaskState.snoozed)))
        .group_by(bucket)
    )


def counts(
    session: Session, staff_id: int, today: dt.date | None = None, owners: list[int] | None = None
) -> dict[str, int]:
    """How many tasks per section ("Today: 12, overdue: 2"), one grouped query (``owners``: whose
    tasks to count instead of those ``staff_id`` works, see :func:`owners_for`)."""
    today = today or clock.today()
    if owners is None:
        rows = session.execute(_counts_stmt(), {"sid": staff_id, "today": today})
    else:
        rows = session.execute(_counts_stmt(True), {"owners": owners, "today": today})
    found = {str(b): int(n) for b, n in rows}
    return {s: found.get(s, 0) for s in SECTIONS}


def my_queue(
    session: Session, staff_id: int, today: dt.date | None = None, limit: int = 50, suggest: bool = True
) -> dict[str, list[QueueItem]]:
    """The caller's queue by section, each in priority order, with the suggested channel and time
    and the follow-up plan: one statement, card columns only."""
    today = today or clock.today()
    stmt = _queue_stmt(session.get_bind().dialect.name)
    rows = session.execute(stmt, {"sid": staff_id, "today": today, "lim": limit})
    return cards(rows, staff_id, today, suggest)


def _suggest(customer: CustomerCard, today: dt.date) -> Any:
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
