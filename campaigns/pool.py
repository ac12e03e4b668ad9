"""The branch pool (客户池) and claiming from it (抢单), RELIABILITY.md CONC-01.

A claim is one conditional ``UPDATE … WHERE id = ? AND state = 'pool' AND version = ?``: of many
managers pressing "claim" at once exactly one row changes; everybody else gets
:class:`AlreadyClaimed` (HTTP 409). The winner's history row, audit row and first task are written
in the same transaction.
"""

from __future__ import annotations

from sqlalchemy import Select, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from campaigns.assignment import REASON_CLAIMED, first_task_due, first_task_key, first_task_template
from campaigns.models import Assignment, AssignmentState, Campaign, CampaignState
from customers.models import Customer
from org.models import Role
from org.scope import Forbidden, NotFound, Scope
from org.services import audit
from tasks.models import OPEN_STATES as TASK_OPEN
from tasks.models import Task, TaskState
from workflow.errors import ConflictError, GuardRefused
from workflow.models import TransitionRecord

A = AssignmentState
CLAIMABLE_CAMPAIGN_STATES = (CampaignState.scheduled.value, CampaignState.active.value)


class AlreadyClaimed(ConflictError):
    """Somebody else claimed the assignment first (409)."""

    def __init__(self, assignment_id: int) -> None:
        super().__init__("assignment", assignment_id, "already claimed by someone else")
        self.args = (f"Assignment {assignment_id} was already claimed by someone else; pick another one",)

    def __str__(self) -> str:
        return str(self.args[0])


def claimable_branches(scope: Scope) -> frozenset[int] | None:
    """Branches whose pool the caller may claim from: a manager's own branch (and the branches of
    a branch-scoped manager role). None never happens: claiming is per branch."""
    if not scope.has(Role.manager):
        raise Forbidden("Only a customer manager may claim from a pool")
    branches = set(scope.branches_for(Role.manager) or ()) | {scope.branch_id}
    return frozenset(branches)


def pool_query(scope: Scope, campaign_id: int | None = None) -> Select[tuple[Assignment]]:
    """Pool assignments of the caller's branch in running campaigns, oldest first."""
    branches = claimable_branches(scope) or frozenset()
    stmt = (
        select(Assignment)
        .join(Campaign, Campaign.id == Assignment.campaign_id)
        .where(
            Assignment.state == A.pool.value,
            Assignment.branch_id.in_(sorted(branches)),
            Campaign.state.in_(CLAIMABLE_CAMPAIGN_STATES),
        )
        .order_by(Campaign.priority.desc(), Assignment.id)
    )
    if campaign_id is not None:
        stmt = stmt.where(Assignment.campaign_id == campaign_id)
    return stmt


def claim(session: Session, scope: Scope, assignment_id: int) -> Assignment:
    """The caller (a manager of the assignment's branch) takes a pool assignment.

    Raises :class:`NotFound` outside the caller's branches, :class:`GuardRefused` when the
    campaign is not running, :class:`AlreadyClaimed` when someone else was first. Flushes; the
    caller commits.
    """
    branches = claimable_branches(scope)
    row = session.execute(
        select(
            Assignment.id, Assignment.state, Assignment.version, Assignment.branch_id, Assignment.campaign_id
        ).where(Assignment.id == assignment_id)
    ).first()
    if row is None or row.branch_id not in (branches or ()):
        raise NotFound(f"No assignment {assignment_id}")
    campaign = session.get(Campaign, row.campaign_id)
    assert campaign is not None
    if campaign.state not in CLAIMABLE_CAMPAIGN_STATES:
        raise GuardRefused("assignment", assignment_id, "claim", [f"its campaign is {campaign.state}"])
    if row.state != A.pool.value:
        raise AlreadyClaimed(assignment_id)
    me = scope.staff_id
    table = Assignment.__table__
    try:
        result = session.execute(
            update(table)
            .where(table.c.id == assignment_id, table.c.state == A.pool.value, table.c.version == row.version)
            .values(staff_id=me, state=A.assigned.value, reason=REASON_CLAIMED, version=table.c.version + 1)
        )
    except OperationalError as exc:  # SQLite: a stale read snapshot cannot become a writer
        if "locked" in str(exc).lower():
            raise AlreadyClaimed(assignment_id) from exc
        raise
    if result.rowcount != 1:
        raise AlreadyClaimed(assignment_id)
    session.add(
        TransitionRecord(
            entity="assignment",
            entity_id=assignment_id,
            from_state=A.pool.value,
            to_state=A.assigned.value,
            trigger="claim",
            actor_id=me,
            reason=REASON_CLAIMED,
        )
    )
    audit(session, me, "claim.success", "assignment", assignment_id)
    _give_first_task(session, campaign, assignment_id, me)
    session.flush()
    assignment = session.get(Assignment, assignment_id)
    assert assignment is not None
    session.refresh(assignment)
    return assignment


def _give_first_task(session: Session, campaign: Campaign, assignment_id: int, staff_id: int) -> None:
    """The new owner's first task: the open tasks of the assignment move to them; when it never
    had one, the campaign's first task template is created (same ``source_key`` as at launch)."""
    moved = session.execute(
        update(Task.__table__)
        .where(
            Task.__table__.c.assignment_id == assignment_id,
            Task.__table__.c.state.in_([s.value for s in TASK_OPEN]),
        )
        .values(staff_id=staff_id, delegate_id=None, version=Task.__table__.c.version + 1)
    ).rowcount
    if moved:
        return
    key = first_task_key(campaign.id, assignment_id)
    if session.scalar(select(Task.id).where(Task.source_key == key)) is not None:
        return
    a = session.get(Assignment, assignment_id)
    assert a is not None
    customer = session.get(Customer, a.customer_id)
    kind = str(first_task_template(campaign).get("kind", "contact"))
    session.add(
        Task(
            kind=kind,
            title=f"{kind}: {customer.customer_no if customer else a.customer_id}",
            campaign_id=campaign.id,
            assignment_id=assignment_id,
            customer_id=a.customer_id,
            branch_id=a.branch_id,
            staff_id=staff_id,
            due_on=first_task_due(campaign),
            priority=campaign.priority,
            state=TaskState.open.value,
            source="template",
            source_key=key,
        )
    )
