"""The branch pool (客户池) and claiming from it (抢单), RELIABILITY.md CONC-01.

A claim is one conditional ``UPDATE … WHERE id = ? AND state = 'pool' AND version = ?``: of many
managers pressing "claim" at once exactly one row changes; everybody else gets
:class:`AlreadyClaimed` (HTTP 409). The winner's history row, audit row and first task are written
in the same transaction.
"""

from __future__ import annotations

import time

from sqlalchemy import Select, and_, select, update
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


def claim_next(session: Session, scope: Scope, campaign_id: int | None = None) -> Assignment | None:
    """Take the next pool assignment (highest campaign priority, oldest first) for the caller, or
    None when the pool is empty (RELIABILITY CONC-04).

    On PostgreSQL the row is picked with ``FOR UPDATE SKIP LOCKED`` in the same transaction as the
    claim, so managers pulling at the same moment each get a different customer and nobody waits
    or loses. SQLite has one writer: a pull that meets another starts again with the next row.
    Commits nothing; the caller commits.
    """
    stmt = (
        pool_query(scope, campaign_id)
        .with_only_columns(Assignment.id)
        .limit(1)
        .with_for_update(skip_locked=True, of=Assignment)
    )
    for attempt in range(10):
        assignment_id = session.scalar(stmt)
        if assignment_id is None:
            return None
        try:
            return claim(session, scope, assignment_id)
        except AlreadyClaimed:
            session.rollback()  # someone else's pull was first (SQLite): take the next one,
            time.sleep(0.02 * (attempt + 1))  # once their commit is visible
    raise AlreadyClaimed(assignment_id)  # ten pulls in a row lost: the caller may try again


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


def distribute_pool(session: Session, campaign: Campaign, actor_id: int | None) -> int:
    """A director hands the campaign's pool out again by load (e.g. after raising capacities or
    when managers came back from leave): the same rules as at launch — least loaded first within
    capacity, ties by the seeded draw, key customers first in line. Set-based: a plan is frozen
    in ``distribution_plan`` and applied owner by owner (a loop over staff, not rows). Moves are
    ``assign`` transitions with history; first tasks are created; the owner's alert is refreshed.
    Returns how many were assigned."""
    from sqlalchemy import Integer, String, cast, delete, func, insert, literal
    from sqlalchemy.orm import aliased

    from campaigns.assignment import (
        OPEN_STATES,
        PHASES,
        Candidate,
        _active_managers,
        draw_order,
        plan_bands,
        seed_of,
        seeded_hash,
    )
    from campaigns.assignment_models import DistributionBand, DistributionMember, DistributionPlan
    from config.database import now_local

    t = Assignment.__table__
    in_pool = (t.c.campaign_id == campaign.id, t.c.state == A.pool.value, t.c.staff_id.is_(None))
    per_branch = dict(
        session.execute(select(t.c.branch_id, func.count()).where(*in_pool).group_by(t.c.branch_id)).all()
    )
    if not per_branch:
        return 0
    seed = seed_of(campaign.code)
    staff = _active_managers(session, per_branch)
    order = draw_order([s[0] for s in staff], seed)
    load = dict(
        session.execute(
            select(t.c.staff_id, func.count())
            .where(t.c.campaign_id == campaign.id, t.c.state.in_(OPEN_STATES), t.c.staff_id.is_not(None))
            .group_by(t.c.staff_id)
        ).all()
    )
    batch = f"pool:{campaign.id}:{now_local().isoformat()}"
    bands: list[dict[str, object]] = []
    members: list[dict[str, object]] = []
    for branch_id, n in sorted(per_branch.items()):
        cands = [Candidate(s[0], load.get(s[0], 0), s[3]) for s in staff if s[1] == branch_id]
        for band in plan_bands(cands, n, order)[0]:
            no = len(bands)
            bands.append(
                {
                    "batch": batch,
                    "band_no": no,
                    "grp": "gen",
                    "branch_id": branch_id,
                    "lo": band.lo,
                    "hi": band.hi,
                    "k": len(band.members),
                    "level": band.level,
                }
            )
            members += [
                {"batch": batch, "band_no": no, "pos": p, "staff_id": sid}
                for p, sid in enumerate(band.members)
            ]
    if not bands:
        return 0
    session.execute(insert(DistributionBand), bands)
    session.execute(insert(DistributionMember), members)
    customer = aliased(Customer)
    rn = func.row_number().over(
        partition_by=t.c.branch_id,
        order_by=[customer.is_key.desc(), seeded_hash(t.c.customer_id, seed), t.c.id],
    )
    ranked = (
        select(t.c.id, t.c.branch_id, rn.label("rn"))
        .join(customer, customer.id == t.c.customer_id)
        .where(*in_pool)
        .subquery("ranked")
    )
    band, member = aliased(DistributionBand, name="band"), aliased(DistributionMember, name="member")
    offset = ranked.c.rn - band.lo - 1
    session.execute(
        insert(DistributionPlan).from_select(
            ["batch", "assignment_id", "staff_id", "load"],
            select(literal(batch), ranked.c.id, member.staff_id, cast(band.level + offset // band.k, Integer))
            .select_from(ranked)
            .join(
                band,
                and_(
                    band.batch == batch,
                    band.branch_id == ranked.c.branch_id,
                    ranked.c.rn > band.lo,
                    ranked.c.rn <= band.hi,
                ),
            )
            .join(
                member,
                and_(
                    member.batch == band.batch,
                    member.band_no == band.band_no,
                    member.pos == cast(offset % band.k, Integer),
                ),
            ),
        )
    )
    plan = DistributionPlan.__table__
    hist = TransitionRecord.__table__
    reason_sql = literal("least loaded in branch (") + cast(plan.c.load, String) + literal(" open)")
    now = now_local()
    moved = 0
    for sid in sorted({m["staff_id"] for m in members}):  # type: ignore[type-var]
        mine = select(plan.c.assignment_id).where(plan.c.batch == batch, plan.c.staff_id == sid)
        session.execute(
            insert(hist).from_select(
                ["entity", "entity_id", "from_state", "to_state", "trigger", "actor_id", "at", "reason"],
                select(
                    literal("assignment"),
                    plan.c.assignment_id,
                    literal(A.pool.value),
                    literal(A.assigned.value),
                    literal("assign"),
                    literal(actor_id, type_=Integer),
                    literal(now),
                    reason_sql,
                ).where(plan.c.batch == batch, plan.c.staff_id == sid),
            )
        )
        reason_of = (
            select(reason_sql).where(plan.c.batch == batch, plan.c.assignment_id == t.c.id).scalar_subquery()
        )
        moved += int(
            session.execute(
                update(t)
                .where(t.c.id.in_(mine), *in_pool)
                .values(staff_id=sid, state=A.assigned.value, reason=reason_of, version=t.c.version + 1)
            ).rowcount
            or 0
        )
    session.execute(delete(DistributionPlan).where(DistributionPlan.batch == batch))
    session.execute(delete(DistributionMember).where(DistributionMember.batch == batch))
    session.execute(delete(DistributionBand).where(DistributionBand.batch == batch))
    for name, phase in PHASES:  # first tasks of the newly assigned, and the owner's alert
        if name != "assignments":
            phase(session, campaign)
    session.expire_all()
    return moved
