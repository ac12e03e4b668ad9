"""Tasks from a campaign's templates after the first one (PRODUCT.md §5, issue 5 item 1).

The first template's task is made at launch (``campaigns.assignment``). Each later template
of a running campaign is generated here, set-based, one INSERT … SELECT per template:

* ``{"kind": K, "after": P, "within_days": N}`` — once the assignment's task of kind P is done,
  a task K due N days later (a template without ``after`` and without ``every_days`` follows the
  template before it);
* ``{"kind": K, "every_days": N}`` — a recurring task every N days from the campaign's start
  (the cadence), while the assignment is still being worked and no earlier one is open.

Keys ``tpl:<campaign>:<index>:<assignment>`` (and ``:<period>`` for the cadence) make a re-run
create nothing twice; only assignments still being worked (assigned, contacted, interested)
with an owner get tasks.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import String, cast, insert, literal, select
from sqlalchemy.orm import Session, aliased

from campaigns.models import Assignment, AssignmentState, Campaign, CampaignState
from config import clock
from config.database import now_local
from customers.models import Customer
from tasks.models import OPEN_STATES, Task, TaskState

WORKING = (AssignmentState.assigned, AssignmentState.contacted, AssignmentState.interested)
COLUMNS = [
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


def template_task_rows(campaign: Campaign, kind: str, title: str | None, key: Any, due: dt.date) -> Any:
    """SELECT of template-task rows (in :data:`COLUMNS` order), one per assignment of ``campaign``:
    the launch's first tasks and the cadence's later ones are built by this one function."""
    label = literal(f"{title}: ") if title else literal(f"{kind}: ")
    return (
        select(
            literal(kind),
            label + Customer.customer_no,
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
            literal(now_local()),
        )
        .select_from(Assignment)
        .join(Customer, Customer.id == Assignment.customer_id)
    )


def _working(campaign: Campaign) -> list[Any]:
    return [
        Assignment.campaign_id == campaign.id,
        Assignment.state.in_(WORKING),
        Assignment.staff_id.is_not(None),
    ]


def _previous_kind(templates: list[dict[str, Any]], index: int) -> str | None:
    tpl = templates[index]
    if tpl.get("after"):
        return str(tpl["after"])
    if tpl.get("every_days") or index == 0:
        return None
    return str(templates[index - 1].get("kind", "contact"))


def generate_for(session: Session, campaign: Campaign, today: dt.date | None = None) -> int:
    """Create the due follow-on and cadence tasks of one campaign; returns how many."""
    today = today or clock.today()
    templates = list(campaign.task_templates or [])
    made = 0
    for index, tpl in enumerate(templates):
        if index == 0:
            continue  # made at launch
        kind = str(tpl.get("kind", "follow_up"))
        title = tpl.get("title")
        every = int(tpl.get("every_days") or 0)
        if every > 0:
            period = (today - campaign.start_date).days // every
            if period < 1:
                continue
            key = literal(f"tpl:{campaign.id}:{index}:") + cast(Assignment.id, String) + literal(f":{period}")
            open_one = (
                select(Task.id)
                .where(
                    Task.assignment_id == Assignment.id,
                    Task.kind == kind,
                    Task.source == "template",
                    Task.state.in_(list(OPEN_STATES)),
                )
                .exists()
            )
            stmt = template_task_rows(campaign, kind, title, key, today).where(
                *_working(campaign), ~select(Task.id).where(Task.source_key == key).exists(), ~open_one
            )
        else:
            previous = _previous_kind(templates, index)
            if previous is None:
                continue
            within = int(tpl.get("within_days") or 7)
            key = literal(f"tpl:{campaign.id}:{index}:") + cast(Assignment.id, String)
            prev = aliased(Task)
            done_before = (
                select(prev.id)
                .where(
                    prev.assignment_id == Assignment.id, prev.kind == previous, prev.state == TaskState.done
                )
                .exists()
            )
            stmt = template_task_rows(campaign, kind, title, key, today + dt.timedelta(days=within)).where(
                *_working(campaign), done_before, ~select(Task.id).where(Task.source_key == key).exists()
            )
        result = session.execute(insert(Task).from_select(COLUMNS, stmt))
        made += int(getattr(result, "rowcount", 0) or 0)
    return made


def generate(session: Session, today: dt.date | None = None) -> int:
    """Follow-on and cadence tasks of every active campaign (the scheduler runs this daily)."""
    total = 0
    for campaign in session.scalars(select(Campaign).where(Campaign.state == CampaignState.active)):
        if len(campaign.task_templates or []) > 1:
            total += generate_for(session, campaign, today)
    return total
