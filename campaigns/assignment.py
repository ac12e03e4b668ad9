"""Generating a campaign's assignments and first tasks, set-based (PRODUCT.md §5, §11.3).

Each assignment stores why it went to that person. Inactive, on-leave and departed staff are
never assigned. A retried generation creates nothing twice: assignments are unique per
(campaign, customer) and first tasks per ``source_key``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from sqlalchemy import String, and_, case, cast, func, insert, literal, select
from sqlalchemy.orm import Session, aliased

from campaigns.models import Assignment, AssignmentState, Campaign
from campaigns.population import population_select
from config import clock
from config.database import utcnow
from customers.models import Customer
from org.models import Staff, StaffStatus
from tasks.models import Task, TaskState

def generate(session: Session, campaign: Campaign) -> dict[str, int]:
    """Create the campaign's assignments (relationship manager first, else the branch pool) and
    the first task of each assigned one, in one transaction. Returns counts created now."""
    return {name: phase(session, campaign) for name, phase in PHASES}


def _insert_assignments(session: Session, campaign: Campaign) -> int:
    manager = aliased(Staff)
    members = population_select(campaign).subquery()
    active_manager = and_(manager.id.is_not(None), manager.status == StaffStatus.active)
    rows = (
        select(
            literal(campaign.id),
            Customer.id,
            Customer.branch_id,
            case((active_manager, Customer.manager_id), else_=None),
            case((active_manager, literal(AssignmentState.assigned.value)), else_=literal(AssignmentState.pool.value)),
            case(
                (active_manager, literal("relationship manager (管户客户经理)")),
                (Customer.manager_id.is_(None), literal("no relationship manager: branch pool")),
                else_=literal("relationship manager not active: branch pool"),
            ),
            literal(1),
            literal(utcnow()),
        )
        .select_from(Customer)
        .join(members, members.c.id == Customer.id)
        .outerjoin(manager, manager.id == Customer.manager_id)
        .where(
            ~select(Assignment.id)
            .where(Assignment.campaign_id == campaign.id, Assignment.customer_id == Customer.id)
            .exists()
        )
    )
    cols = ["campaign_id", "customer_id", "branch_id", "staff_id", "state", "reason", "version", "created_at"]
    result = session.execute(insert(Assignment).from_select(cols, rows))
    return int(result.rowcount or 0)


def first_task_template(campaign: Campaign) -> dict[str, object]:
    templates = campaign.task_templates or [{"kind": "contact", "within_days": 7}]
    return templates[0]


def _insert_first_tasks(session: Session, campaign: Campaign) -> int:
    tpl = first_task_template(campaign)
    kind = str(tpl.get("kind", "contact"))
    within = int(tpl.get("within_days", 7))  # type: ignore[call-overload]
    start = max(campaign.start_date, clock.today())
    due = start + dt.timedelta(days=within)
    key = literal(f"tpl:{campaign.id}:0:") + cast(Assignment.id, String)
    title = literal(f"{kind}: ") + Customer.customer_no
    rows = (
        select(
            literal(kind),
            title,
            literal(campaign.id),
            Assignment.id,
            Assignment.customer_id,
            Assignment.branch_id,
            Assignment.staff_id,
            literal(due),
            literal(campaign.priority),
            literal(TaskState.open.value),
            literal("template"),
            key,
            literal(1),
            literal(utcnow()),
        )
        .select_from(Assignment)
        .join(Customer, Customer.id == Assignment.customer_id)
        .where(
            Assignment.campaign_id == campaign.id,
            Assignment.state == AssignmentState.assigned,
            ~select(Task.id).where(Task.source_key == key).exists(),
        )
    )
    cols = [
        "kind",
        "title",
        "campaign_id",
        "assignment_id",
        "customer_id",
        "branch_id",
        "staff_id",
        "due_on",
        "priority",
        "state",
        "source",
        "source_key",
        "version",
        "created_at",
    ]
    return int(session.execute(insert(Task).from_select(cols, rows)).rowcount or 0)


def assignment_counts(session: Session, campaign_id: int) -> dict[str, int]:
    rows = session.execute(
        select(Assignment.state, func.count()).where(Assignment.campaign_id == campaign_id).group_by(Assignment.state)
    )
    return {state: n for state, n in rows}


#: Generation in phases, each idempotent: the job commits after each and reports progress.
PHASES: list[tuple[str, Callable[[Session, Campaign], int]]] = [
    ("assignments", _insert_assignments),
    ("tasks", _insert_first_tasks),
]
