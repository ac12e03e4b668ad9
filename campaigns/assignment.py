"""Generating a campaign's assignments and first tasks, set-based (PRODUCT.md §5, §11.3).

Who gets which customer, in order:

1. the **relationship manager** (管户客户经理), when active and working in one of the campaign's
   branches — reason ``relationship manager``;
2. a **key customer** (``customer.is_key``) without one goes to the branch's active **senior**
   managers, balanced by load within their capacity — ``key customer → senior manager``;
3. everyone else (and key customers the seniors had no room for) is **balanced by load** over the
   branch's active managers within their capacity: least loaded first, ties broken by a draw
   seeded from the campaign code (never seniority) — ``least loaded in branch (n open)``;
4. whatever exceeds every capacity stays in the **branch pool**, where managers claim it
   (:mod:`campaigns.pool`), and the campaign owner is alerted: a ``JobProgress`` row of kind
   ``assignment_alert``, subject ``campaign-alert:<code>``, owner = the campaign owner, and an
   in-app notification (``tasks.notify.notify``, kind ``assignment_alert``, once per campaign).

Street canvassing (a kind with ``assign_by="grid"``) first gives each street grid of the population
whole to one manager of its branch (largest grid first, to the least loaded manager with room for
all of it, ties by the seeded draw) — ``whole grid (G03, n open)``; a grid nobody has room for,
and customers without a grid, then follow the rules above.

Inactive, on-leave and departed staff are never assigned. The distribution is planned in Python
per staff member (round bands, :func:`plan_bands`) and applied by one ``INSERT … SELECT`` that
ranks the customers of each branch by a seeded hash (``row_number()``) and joins the ranks onto
the bands — no per-customer loop. A retried generation creates nothing twice: assignments are
unique per (campaign, customer) and first tasks per ``source_key``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import Integer, String, and_, case, cast, delete, func, insert, literal, or_, select, true
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.elements import ColumnElement

from campaigns.assignment_models import DistributionBand, DistributionMember
from campaigns.models import Assignment, AssignmentState, Campaign, CampaignBranch
from campaigns.population import population_select
from config import clock
from config.database import now_local
from customers.models import Customer
from org.models import Branch, Role, Staff, StaffRole, StaffStatus
from tasks.cadence import COLUMNS, template_task_rows
from tasks.models import Task
from workflow.models import JobProgress

A = AssignmentState

#: Assignment states that count towards a staff member's load (open work).
OPEN_STATES = (A.assigned.value, A.contacted.value, A.interested.value)

REASON_RM = "relationship manager"
REASON_KEY = "key customer → senior manager"
REASON_LEAST = "least loaded in branch ({n} open)"
REASON_GRID = "whole grid ({grid}, {n} open)"
REASON_POOL_FULL = "branch pool: every active manager is at capacity"
REASON_POOL_NOBODY = "branch pool: no active manager in the branch"
REASON_CLAIMED = "claimed from pool"
REASON_HANDOVER = "handed over: {reason}"

_HASH_MUL = 2654435761
_HASH_MOD = 2147483647


def seed_of(code: str) -> int:
    """The seed of a campaign's draws: stable for its code, different between campaigns."""
    return int(hashlib.sha256(code.encode("utf-8")).hexdigest()[:8], 16) % _HASH_MOD


def seeded_hash(id_col: ColumnElement[int], seed: int) -> ColumnElement[int]:
    """A portable pseudo-random order of rows (same on SQLite and PostgreSQL)."""
    return (id_col * _HASH_MUL + seed) % _HASH_MOD


# -- planning (per staff member, in Python) -------------------------------------------------------


@dataclass
class Candidate:
    """A staff member who may take work: current load and capacity."""

    staff_id: int
    load: int
    capacity: int


@dataclass(frozen=True)
class Band:
    """Ranks ``lo < r <= hi`` go round-robin to ``members`` (in draw order), starting at ``level``."""

    lo: int
    hi: int
    level: int
    members: tuple[int, ...]


def draw_order(staff_ids: Iterable[int], seed: int) -> list[int]:
    """The seeded draw that breaks ties between equally loaded staff (never seniority)."""
    ids = sorted(staff_ids)
    random.Random(seed).shuffle(ids)
    return ids


def plan_bands(
    candidates: Sequence[Candidate], n: int, order: Sequence[int]
) -> tuple[list[Band], dict[int, int]]:
    """Water-fill ``n`` rows over ``candidates``: always the least loaded next, ties by ``order``,
    never above capacity. Returns the bands and how many rows each staff member receives.

    The loop runs over load levels where the set of eligible staff changes (at most twice the
    number of staff), not over rows.
    """
    rank = {sid: i for i, sid in enumerate(order)}
    cands = sorted((c for c in candidates if c.load < c.capacity), key=lambda c: rank[c.staff_id])
    bands: list[Band] = []
    given = {c.staff_id: 0 for c in candidates}
    if not cands or n <= 0:
        return bands, given
    level = min(c.load for c in cands)
    placed = 0
    while placed < n:
        members = [c for c in cands if c.load <= level < c.capacity]
        later = [c.load for c in cands if c.load > level]
        if not members:
            if not later:
                break
            level = min(later)
            continue
        top = min([c.capacity for c in members] + later)
        take = min(n - placed, len(members) * (top - level))
        bands.append(Band(placed, placed + take, level, tuple(c.staff_id for c in members)))
        full, extra = divmod(take, len(members))
        for i, c in enumerate(members):
            given[c.staff_id] += full + (1 if i < extra else 0)
        placed += take
        level = top
    return bands, given


# -- generation phases ------------------------------------------------------------------------------


def generate(session: Session, campaign: Campaign) -> dict[str, int]:
    """Create the campaign's assignments and the first task of each assigned one, in one
    transaction. Returns counts created now (a retry returns zeros)."""
    return {name: phase(session, campaign) for name, phase in PHASES}


def _branch_ids(session: Session, campaign: Campaign) -> list[int] | None:
    if campaign.all_branches:
        return None
    return list(
        session.scalars(select(CampaignBranch.branch_id).where(CampaignBranch.campaign_id == campaign.id))
    )


def _active_managers(session: Session, branch_ids: Iterable[int]) -> list[tuple[int, int, bool, int]]:
    """(id, branch_id, senior, capacity) of the active managers of ``branch_ids``."""
    ids = sorted(set(branch_ids))
    if not ids:
        return []
    rows = session.execute(
        select(Staff.id, Staff.branch_id, Staff.senior, Staff.capacity)
        .where(
            Staff.branch_id.in_(ids),
            Staff.status == StaffStatus.active.value,
            select(StaffRole.id)
            .where(StaffRole.staff_id == Staff.id, StaffRole.role == Role.manager.value)
            .exists(),
        )
        .order_by(Staff.id)
    )
    return [(r[0], r[1], bool(r[2]), int(r[3] or 0)) for r in rows]


def _not_yet_assigned(campaign: Campaign) -> ColumnElement[bool]:
    return ~(
        select(Assignment.id)
        .where(Assignment.campaign_id == campaign.id, Assignment.customer_id == Customer.id)
        .correlate(Customer)
        .exists()
    )


def _open_load(session: Session, campaign: Campaign) -> dict[int, int]:
    """Open assignments per staff member in this campaign."""
    return dict(
        session.execute(
            select(Assignment.staff_id, func.count())
            .where(
                Assignment.campaign_id == campaign.id,
                Assignment.state.in_(OPEN_STATES),
                Assignment.staff_id.is_not(None),
            )
            .group_by(Assignment.staff_id)
        ).all()
    )


def assigns_by_grid(campaign: Campaign) -> bool:
    from campaigns.kinds import KINDS

    spec = KINDS.get(campaign.kind)
    return bool(spec is not None and spec.assign_by == "grid")


def plan_grids(
    sizes: Sequence[tuple[str, int]], candidates: Sequence[Candidate], order: Sequence[int]
) -> dict[str, tuple[int, int]]:
    """Give each grid whole to one candidate: largest grid first, to the least loaded candidate
    with room for all of it (ties by ``order``). Returns grid → (staff id, load before it);
    a grid nobody has room for is left out."""
    rank = {sid: i for i, sid in enumerate(order)}
    load = {c.staff_id: c.load for c in candidates}
    room = {c.staff_id: c.capacity for c in candidates}
    plan: dict[str, tuple[int, int]] = {}
    for grid, n in sorted(sizes, key=lambda g: (-g[1], g[0])):
        fits = [sid for sid in load if load[sid] + n <= room[sid]]
        if not fits:
            continue
        sid = min(fits, key=lambda s: (load[s], rank[s]))
        plan[grid] = (sid, load[sid])
        load[sid] += n
    return plan


def _insert_grid_assignments(session: Session, campaign: Campaign) -> int:
    """Street canvassing: each grid of the population goes whole to one manager of its branch."""
    if not assigns_by_grid(campaign):
        return 0
    base = (
        population_select(campaign, [Customer.id, Customer.branch_id, Customer.grid])
        .where(Customer.grid.is_not(None), Customer.grid != "", _not_yet_assigned(campaign))
        .subquery("gbase")
    )
    sizes: dict[int, list[tuple[str, int]]] = {}
    for b, g, n in session.execute(
        select(base.c.branch_id, base.c.grid, func.count()).group_by(base.c.branch_id, base.c.grid)
    ):
        sizes.setdefault(b, []).append((g, int(n)))
    if not sizes:
        return 0
    load = _open_load(session, campaign)
    staff = _active_managers(session, sizes)
    order = draw_order([s[0] for s in staff], seed_of(campaign.code))
    whens_staff: list[tuple[ColumnElement[bool], ColumnElement[int]]] = []
    whens_reason: list[tuple[ColumnElement[bool], ColumnElement[str]]] = []
    for b, grids in sorted(sizes.items()):
        cands = [Candidate(s[0], load.get(s[0], 0), s[3]) for s in staff if s[1] == b]
        for grid, (sid, before) in sorted(plan_grids(grids, cands, order).items()):
            match = and_(base.c.branch_id == b, base.c.grid == grid)
            whens_staff.append((match, literal(sid)))
            whens_reason.append((match, literal(REASON_GRID.format(grid=grid, n=before))))
    if not whens_staff:
        return 0
    staff_col = case(*whens_staff, else_=None)
    rows = select(
        literal(campaign.id),
        base.c.id,
        base.c.branch_id,
        staff_col,
        literal(A.assigned.value),
        case(*whens_reason, else_=None),
        literal(1),
        literal(now_local()),
    ).where(staff_col.is_not(None))
    cols = ["campaign_id", "customer_id", "branch_id", "staff_id", "state", "reason", "version", "created_at"]
    return int(session.execute(insert(Assignment).from_select(cols, rows)).rowcount or 0)


def _insert_assignments(session: Session, campaign: Campaign) -> int:
    by_grid = _insert_grid_assignments(session, campaign)
    return by_grid + _insert_assigned_by_rules(session, campaign)


def _insert_assigned_by_rules(session: Session, campaign: Campaign) -> int:
    manager = aliased(Staff)
    branch_ids = _branch_ids(session, campaign)
    seed = seed_of(campaign.code)
    batch = f"launch:{campaign.id}"
    rm_ok = and_(
        manager.id.is_not(None),
        manager.status == StaffStatus.active.value,
        true() if branch_ids is None else manager.branch_id.in_(branch_ids or [-1]),
    )
    cat = case((rm_ok, literal(0)), (Customer.is_key.is_(True), literal(1)), else_=literal(2))
    base = (
        population_select(campaign, [Customer.id, Customer.branch_id, Customer.manager_id, cat.label("cat")])
        .outerjoin(manager, manager.id == Customer.manager_id)
        .where(_not_yet_assigned(campaign))
        .subquery("base")
    )
    # 1. counts (per branch and category) and loads, to plan per staff member
    counts: dict[tuple[int, int], int] = {
        (b, c): n
        for b, c, n in session.execute(
            select(base.c.branch_id, base.c.cat, func.count()).group_by(base.c.branch_id, base.c.cat)
        )
    }
    if not counts:
        return 0
    load = _open_load(session, campaign)
    for sid, n in session.execute(
        select(base.c.manager_id, func.count()).where(base.c.cat == 0).group_by(base.c.manager_id)
    ):
        load[sid] = load.get(sid, 0) + n
    pool_branches = sorted({b for (b, c) in counts if c != 0})
    staff = _active_managers(session, pool_branches)
    order = draw_order([s[0] for s in staff], seed)

    # 2. plan: key customers over seniors, then everyone else over all managers
    session.execute(delete(DistributionBand).where(DistributionBand.batch == batch))
    session.execute(delete(DistributionMember).where(DistributionMember.batch == batch))
    band_rows: list[dict[str, object]] = []
    member_rows: list[dict[str, object]] = []
    for b in pool_branches:
        in_branch = [s for s in staff if s[1] == b]
        seniors = [Candidate(s[0], load.get(s[0], 0), s[3]) for s in in_branch if s[2]]
        n_key = counts.get((b, 1), 0)
        key_bands, key_given = plan_bands(seniors, n_key, order)
        for sid, n in key_given.items():
            load[sid] = load.get(sid, 0) + n
        key_taken = sum(key_given.values())
        everyone = [Candidate(s[0], load.get(s[0], 0), s[3]) for s in in_branch]
        n_gen = counts.get((b, 2), 0) + (n_key - key_taken)
        gen_bands, gen_given = plan_bands(everyone, n_gen, order)
        for sid, n in gen_given.items():
            load[sid] = load.get(sid, 0) + n
        band_rows.append(
            {
                "batch": batch,
                "band_no": len(band_rows),
                "grp": "plan",
                "branch_id": b,
                "lo": key_taken,
                "hi": n_key - key_taken,
                "k": int(bool(in_branch)),
                "level": 0,
            }
        )
        for group_name, planned in (("key", key_bands), ("gen", gen_bands)):
            for one in planned:
                no = len(band_rows)
                band_rows.append(
                    {
                        "batch": batch,
                        "band_no": no,
                        "grp": group_name,
                        "branch_id": b,
                        "lo": one.lo,
                        "hi": one.hi,
                        "k": len(one.members),
                        "level": one.level,
                    }
                )
                member_rows += [
                    {"batch": batch, "band_no": no, "pos": pos, "staff_id": sid}
                    for pos, sid in enumerate(one.members)
                ]
    if band_rows:
        session.execute(insert(DistributionBand), band_rows)
    if member_rows:
        session.execute(insert(DistributionMember), member_rows)

    # 3. one INSERT … SELECT: rank by seeded hash within (branch, category), join onto the bands
    rn1 = func.row_number().over(
        partition_by=[base.c.branch_id, base.c.cat], order_by=[seeded_hash(base.c.id, seed), base.c.id]
    )
    ranked = select(base, rn1.label("rn1")).subquery("ranked")
    plan = aliased(DistributionBand, name="plan")
    grp = case(
        (ranked.c.cat == 0, literal("rm")),
        (and_(ranked.c.cat == 1, ranked.c.rn1 <= func.coalesce(plan.lo, 0)), literal("key")),
        else_=literal("gen"),
    )
    grank = case(
        (ranked.c.cat == 0, ranked.c.rn1),
        (and_(ranked.c.cat == 1, ranked.c.rn1 <= func.coalesce(plan.lo, 0)), ranked.c.rn1),
        (ranked.c.cat == 1, ranked.c.rn1 - func.coalesce(plan.lo, 0)),
        else_=ranked.c.rn1 + func.coalesce(plan.hi, 0),
    )
    graded = (
        select(ranked, grp.label("grp"), grank.label("grank"), func.coalesce(plan.k, 0).label("anyone"))
        .outerjoin(plan, and_(plan.batch == batch, plan.grp == "plan", plan.branch_id == ranked.c.branch_id))
        .subquery("graded")
    )
    band = aliased(DistributionBand, name="band")
    member = aliased(DistributionMember, name="member")
    offset = graded.c.grank - band.lo - 1
    given = member.staff_id.is_not(None)
    staff_col = case((graded.c.grp == "rm", graded.c.manager_id), else_=member.staff_id)
    state = case((or_(graded.c.grp == "rm", given), literal(A.assigned.value)), else_=literal(A.pool.value))
    reason = case(
        (graded.c.grp == "rm", literal(REASON_RM)),
        (and_(given, graded.c.grp == "key"), literal(REASON_KEY)),
        (
            given,
            literal("least loaded in branch (")
            + cast(band.level + offset // band.k, String)
            + literal(" open)"),
        ),
        (graded.c.anyone == 0, literal(REASON_POOL_NOBODY)),
        else_=literal(REASON_POOL_FULL),
    )
    rows = (
        select(
            literal(campaign.id),
            graded.c.id,
            graded.c.branch_id,
            staff_col,
            state,
            reason,
            literal(1),
            literal(now_local()),
        )
        .select_from(graded)
        .outerjoin(
            band,
            and_(
                band.batch == batch,
                band.grp == graded.c.grp,
                band.branch_id == graded.c.branch_id,
                graded.c.grank > band.lo,
                graded.c.grank <= band.hi,
            ),
        )
        .outerjoin(
            member,
            and_(
                member.batch == band.batch,
                member.band_no == band.band_no,
                member.pos == cast(offset % band.k, Integer),
            ),
        )
    )
    cols = ["campaign_id", "customer_id", "branch_id", "staff_id", "state", "reason", "version", "created_at"]
    created = int(session.execute(insert(Assignment).from_select(cols, rows)).rowcount or 0)
    session.execute(delete(DistributionMember).where(DistributionMember.batch == batch))
    session.execute(delete(DistributionBand).where(DistributionBand.batch == batch))
    return created


def first_task_template(campaign: Campaign) -> dict[str, object]:
    templates = campaign.task_templates or [{"kind": "contact", "within_days": 7}]
    return templates[0]


def first_task_key(campaign_id: int, assignment_id: int) -> str:
    """The ``source_key`` of an assignment's first task (what makes generation idempotent)."""
    return f"tpl:{campaign_id}:0:{assignment_id}"


def first_task_due(campaign: Campaign) -> dt.date:
    within = int(first_task_template(campaign).get("within_days", 7))  # type: ignore[call-overload]
    return max(campaign.start_date, clock.today()) + dt.timedelta(days=within)


def _insert_first_tasks(session: Session, campaign: Campaign) -> int:
    tpl = first_task_template(campaign)
    kind = str(tpl.get("kind", "contact"))
    due = first_task_due(campaign)
    key = literal(f"tpl:{campaign.id}:0:") + cast(Assignment.id, String)
    rows = template_task_rows(campaign, kind, None, key, due).where(
        Assignment.campaign_id == campaign.id,
        Assignment.state == AssignmentState.assigned,
        ~select(Task.id).where(Task.source_key == key).exists(),
    )
    return int(session.execute(insert(Task).from_select(COLUMNS, rows)).rowcount or 0)


def unassigned_alert_subject(campaign: Campaign) -> str:
    return f"campaign-alert:{campaign.code}"


def _alert_unassigned(session: Session, campaign: Campaign) -> int:
    """Alert the campaign owner about what was left in the branch pools (one row per campaign,
    refreshed on a retry). Returns how many assignments are waiting in pools."""
    per_branch = session.execute(
        select(Branch.code, func.count())
        .join(Assignment, Assignment.branch_id == Branch.id)
        .where(Assignment.campaign_id == campaign.id, Assignment.state == A.pool.value)
        .group_by(Branch.code)
        .order_by(Branch.code)
    ).all()
    total = sum(n for _, n in per_branch)
    subject = unassigned_alert_subject(campaign)
    row = session.scalars(
        select(JobProgress).where(JobProgress.subject == subject, JobProgress.kind == "assignment_alert")
    ).first()
    if not total:
        if row is not None:
            session.delete(row)
        return 0
    detail = ", ".join(f"{code}: {n}" for code, n in per_branch)
    message = f"{total} assignments of {campaign.code} are left unassigned in branch pools ({detail})"
    if row is None:
        row = JobProgress(kind="assignment_alert", subject=subject, owner_id=campaign.owner_id)
        session.add(row)
    row.state, row.done, row.total, row.message = "done", total, total, message
    row.result = {code: n for code, n in per_branch}
    session.flush()
    try:  # and the bell of the owner (once per campaign)
        from tasks.notify import notify
    except ImportError:  # pragma: no cover - the notifier is part of the product
        return total
    notify(
        session,
        campaign.owner_id,
        "assignment_alert",
        message,
        link=f"/campaigns/{campaign.id}",
        key=f"assignment-alert:{campaign.id}",
    )
    return total


def unassigned_alert(session: Session, campaign: Campaign) -> JobProgress | None:
    """The owner's alert about assignments left in pools, if any."""
    return session.scalars(
        select(JobProgress).where(
            JobProgress.subject == unassigned_alert_subject(campaign), JobProgress.kind == "assignment_alert"
        )
    ).first()


def assignment_counts(session: Session, campaign_id: int) -> dict[str, int]:
    rows = session.execute(
        select(Assignment.state, func.count())
        .where(Assignment.campaign_id == campaign_id)
        .group_by(Assignment.state)
    )
    return {state: n for state, n in rows}


#: Generation in phases, each idempotent: the job commits after each and reports progress.
PHASES: list[tuple[str, Callable[[Session, Campaign], int]]] = [
    ("assignments", _insert_assignments),
    ("tasks", _insert_first_tasks),
    ("unassigned", _alert_unassigned),
]
