"""Handover (移交): another staff member takes over assignments; state, history and follow-ups
stay, ownership (and the open tasks) move, and the reason is kept (PRODUCT.md §5, JOURNEYS 7).

A handover is not a state change: its history row has ``trigger = 'handover'`` and
``from_state = to_state``, with ``payload = {"from_staff_id", "to_staff_id"}``. Everything is
set-based: loops run over owners and colleagues (a handful), never over assignments.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import JSON, Integer, and_, case, cast, delete, func, insert, literal, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from campaigns.assignment import OPEN_STATES, REASON_HANDOVER, Candidate, draw_order, plan_bands, seeded_hash
from campaigns.assignment_models import DistributionPlan
from campaigns.models import Assignment
from config.database import now_local
from org.models import Staff, StaffStatus
from tasks.models import OPEN_STATES as TASK_OPEN
from tasks.models import Task
from workflow.errors import GuardRefused, ReasonRequired
from workflow.models import TransitionRecord

HIST_COLS = [
    "entity",
    "entity_id",
    "from_state",
    "to_state",
    "trigger",
    "actor_id",
    "at",
    "reason",
    "payload",
]


def _check_receiver(session: Session, staff_id: int) -> Staff:
    staff = session.get(Staff, staff_id)
    if staff is None:
        raise GuardRefused("assignment", "(handover)", "handover", [f"there is no staff member {staff_id}"])
    if staff.status != StaffStatus.active.value:
        raise GuardRefused(
            "assignment",
            "(handover)",
            "handover",
            [f"{staff.name} ({staff.staff_no}) is {staff.status}: only active staff take over"],
        )
    return staff


def _clean_reason(reason: str | None) -> str:
    text = (reason or "").strip()
    if not text:
        raise ReasonRequired("assignment", "handover")
    return text[:180]


def _move(
    session: Session,
    where: ColumnElement[bool],
    from_staff: int,
    to_staff: int,
    reason: str,
    actor_id: int | None,
) -> int:
    """Move the open assignments matching ``where`` owned by ``from_staff`` to ``to_staff``:
    history first (same predicate), then the assignments, then their open tasks."""
    t = Assignment.__table__
    cond = and_(where, t.c.staff_id == from_staff, t.c.state.in_(OPEN_STATES))
    payload = {"from_staff_id": from_staff, "to_staff_id": to_staff}
    hist = select(
        literal("assignment"),
        t.c.id,
        t.c.state,
        t.c.state,
        literal("handover"),
        literal(actor_id, type_=Integer),
        literal(now_local()),
        literal(reason),
        literal(payload, type_=JSON),
    ).where(cond)
    session.execute(insert(TransitionRecord.__table__).from_select(HIST_COLS, hist))
    ids = select(t.c.id).where(cond).scalar_subquery()
    task = Task.__table__
    session.execute(
        update(task)
        .where(task.c.assignment_id.in_(ids), task.c.state.in_([s.value for s in TASK_OPEN]))
        .values(staff_id=to_staff, delegate_id=None, version=task.c.version + 1)
    )
    moved = session.execute(
        update(t)
        .where(cond)
        .values(
            staff_id=to_staff, reason=REASON_HANDOVER.format(reason=reason)[:200], version=t.c.version + 1
        )
    ).rowcount
    return int(moved or 0)


def handover(
    session: Session, assignment_ids: Sequence[int], to_staff: int, reason: str, actor: int | None
) -> int:
    """Hand the open assignments ``assignment_ids`` (and their open tasks) to ``to_staff``.

    State and history stay; the reason goes into the history row and ``assignment.reason``
    ("handed over: …"). Assignments already owned by ``to_staff`` or no longer open are left
    alone. Returns how many moved. The caller checks scope (see :func:`scoped_assignment_ids`).
    """
    text = _clean_reason(reason)
    _check_receiver(session, to_staff)
    ids = sorted({int(i) for i in assignment_ids})
    if not ids:
        return 0
    t = Assignment.__table__
    where = t.c.id.in_(ids)
    owners = list(
        session.scalars(
            select(t.c.staff_id)
            .where(where, t.c.state.in_(OPEN_STATES), t.c.staff_id.is_not(None), t.c.staff_id != to_staff)
            .distinct()
        )
    )
    moved = sum(_move(session, where, owner, to_staff, text, actor) for owner in owners)
    session.expire_all()
    return moved


def bulk_handover_departing(
    session: Session,
    staff: Staff | int,
    to_staff_ids: Iterable[int],
    reason: str,
    actor: int | None = None,
) -> dict[int, int]:
    """Spread every open assignment of a leaving staff member over ``to_staff_ids`` by load
    (least loaded first, ties by a draw seeded from the leaver's staff number; capacity is not a
    limit here: the director chose the colleagues). Returns {colleague id: how many received}.
    """
    text = _clean_reason(reason)
    leaver = session.get(Staff, staff) if isinstance(staff, int) else staff
    if leaver is None:
        raise GuardRefused("assignment", "(handover)", "handover", ["there is no such staff member"])
    receivers = sorted({int(s) for s in to_staff_ids} - {leaver.id})
    if not receivers:
        raise GuardRefused(
            "assignment", "(handover)", "handover", ["choose at least one colleague to take over"]
        )
    for sid in receivers:
        _check_receiver(session, sid)
    t = Assignment.__table__
    mine = and_(t.c.staff_id == leaver.id, t.c.state.in_(OPEN_STATES))
    n = int(session.scalar(select(func.count()).where(mine)) or 0)
    if not n:
        hand_over_customers(session, leaver.id, receivers, text, actor)
        return {sid: 0 for sid in receivers}
    load = dict(
        session.execute(
            select(t.c.staff_id, func.count())
            .where(t.c.staff_id.in_(receivers), t.c.state.in_(OPEN_STATES))
            .group_by(t.c.staff_id)
        ).all()
    )
    seed = int.from_bytes(leaver.staff_no.encode("utf-8")[:8].ljust(8, b"\0"), "big") % 2147483647
    order = draw_order(receivers, seed)
    big = 1 << 40  # capacity is not a limit for an explicit handover
    bands, given = plan_bands([Candidate(sid, load.get(sid, 0), big) for sid in receivers], n, order)
    batch = f"handover:{leaver.id}:{now_local().isoformat()}"
    # freeze the mapping row → colleague in the plan table, then move colleague by colleague
    ranked = (
        select(t.c.id, func.row_number().over(order_by=[seeded_hash(t.c.id, seed), t.c.id]).label("rn"))
        .where(mine)
        .subquery()
    )
    for band in bands:
        k = len(band.members)
        for pos, sid in enumerate(band.members):
            offset = ranked.c.rn - band.lo - 1
            session.execute(
                insert(DistributionPlan).from_select(
                    ["batch", "assignment_id", "staff_id", "load"],
                    select(
                        literal(batch), ranked.c.id, literal(sid), cast(band.level + offset // k, Integer)
                    ).where(ranked.c.rn > band.lo, ranked.c.rn <= band.hi, offset % k == pos),
                )
            )
    for sid in receivers:
        planned = select(DistributionPlan.assignment_id).where(
            DistributionPlan.batch == batch, DistributionPlan.staff_id == sid
        )
        _move(session, t.c.id.in_(planned), leaver.id, sid, text, actor)
    session.execute(delete(DistributionPlan).where(DistributionPlan.batch == batch))
    hand_over_customers(session, leaver.id, receivers, text, actor)
    session.expire_all()
    return {sid: given.get(sid, 0) for sid in receivers}


def hand_over_customers(
    session: Session, leaver_id: int, receivers: Sequence[int], reason: str, actor: int | None
) -> dict[int, int]:
    """Move the leaver's customers (管户关系) to the colleagues: a customer follows its most recent
    assignment handed to one of them; the others go round-robin, least-managing colleague first.
    Set-based; returns {colleague id: customers received}. Audited."""
    from customers.models import Customer
    from org.services import audit

    c = Customer.__table__
    a = Assignment.__table__
    followed = (
        select(a.c.staff_id)
        .where(a.c.customer_id == c.c.id, a.c.staff_id.in_(receivers))
        .order_by(a.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    before = dict(
        session.execute(
            select(c.c.manager_id, func.count()).where(c.c.manager_id.in_(receivers)).group_by(c.c.manager_id)
        ).all()
    )
    session.execute(
        update(c).where(c.c.manager_id == leaver_id, followed.is_not(None)).values(manager_id=followed)
    )
    managing = dict(
        session.execute(
            select(c.c.manager_id, func.count()).where(c.c.manager_id.in_(receivers)).group_by(c.c.manager_id)
        ).all()
    )
    order = sorted(receivers, key=lambda sid: (managing.get(sid, 0), sid))
    ranked = (
        select(c.c.id.label("cid"), func.row_number().over(order_by=c.c.id).label("rn"))
        .where(c.c.manager_id == leaver_id)
        .subquery()
    )
    k = len(order)
    session.execute(
        update(c)
        .where(c.c.id == ranked.c.cid)
        .values(manager_id=case(*[((ranked.c.rn - 1) % k == i, sid) for i, sid in enumerate(order)]))
    )
    after = dict(
        session.execute(
            select(c.c.manager_id, func.count()).where(c.c.manager_id.in_(receivers)).group_by(c.c.manager_id)
        ).all()
    )
    moved = {sid: int(after.get(sid, 0)) - int(before.get(sid, 0)) for sid in receivers}
    if any(moved.values()):
        audit(
            session, actor, "customers.handover", "staff", leaver_id, reason=reason, detail={"moved": moved}
        )
    return moved
