"""Per-campaign dashboard figures (JOURNEYS 1, 4): funnel, contact and response rates, attainment
per branch and per staff member, leaderboard, daily trend. Every figure is one set-based
``GROUP BY`` limited to the caller's branches; nothing here loops over rows.

* funnel — assigned (has an owner) → contacted (contacted, interested, converted, declined) →
  interested (interested, converted) → converted;
* contact rate = contacted / assigned; customer response rate (客户反馈率) = customers who gave a
  reaction (interested, converted, declined) / contacted;
* attainment = verified measure / target, from the appraisal ledger (``LedgerEvent``: quantity for
  count measures, amount for yuan measures; events of the campaign, and events without a campaign
  on a customer the staff member holds in it within its period), else converted assignments;
* daily trend = assignment transitions per local day (Asia/Shanghai) and destination state.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import Integer, and_, case, func, or_, select, true
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from campaigns.models import Assignment, AssignmentState, Campaign, Target
from org.models import Branch, Staff
from org.scope import Scope
from workflow.models import TransitionRecord

A = AssignmentState
CONTACTED = (A.contacted.value, A.interested.value, A.converted.value, A.declined.value)
INTERESTED = (A.interested.value, A.converted.value)
RESPONDED = (A.interested.value, A.converted.value, A.declined.value)


def _ratio(num: int | Decimal, den: int | Decimal) -> Decimal | None:
    if not den:
        return None
    return (Decimal(num) / Decimal(den)).quantize(Decimal("0.0001"))


@dataclass
class Dashboard:
    """Everything the dashboard page and its XLSX downloads show."""

    funnel: dict[str, int]
    contact_rate: Decimal | None
    response_rate: Decimal | None
    pool: int
    by_branch: list[dict[str, Any]] = field(default_factory=list)
    by_staff: list[dict[str, Any]] = field(default_factory=list)
    leaderboard: list[dict[str, Any]] = field(default_factory=list)
    trend: list[dict[str, Any]] = field(default_factory=list)
    reasons: list[dict[str, Any]] = field(default_factory=list)
    grids: list[dict[str, Any]] = field(default_factory=list)
    attainment_source: str = "assignments"


def _counts(group_cols: list[Any], where: ColumnElement[bool], session: Session) -> list[Any]:
    def n(states: tuple[str, ...]) -> Any:
        return func.sum(case((Assignment.state.in_(states), 1), else_=0)).cast(Integer)

    return list(
        session.execute(
            select(
                *group_cols,
                func.sum(case((Assignment.staff_id.is_not(None), 1), else_=0))
                .cast(Integer)
                .label("assigned"),
                n(CONTACTED).label("contacted"),
                n(INTERESTED).label("interested"),
                n((A.converted.value,)).label("converted"),
                n(RESPONDED).label("responded"),
                n((A.pool.value,)).label("pool"),
            )
            .where(where)
            .group_by(*group_cols)
        )
    )


def _measure_is_sum(measure: str) -> bool:
    try:
        from appraisal.rules import MEASURES, MeasureUnit
    except ImportError:  # pragma: no cover - the rule engine is part of the product
        return False
    m = MEASURES.get(measure)
    return m is not None and m.unit is MeasureUnit.SUM


def _verified(session: Session, campaign: Campaign) -> tuple[str, dict[tuple[str, int], Decimal]]:
    """Verified results per (measure, staff id): from the ledger when it exists."""
    try:
        from appraisal.models import LedgerEvent
    except ImportError:
        LedgerEvent = None  # noqa: N806
    out: dict[tuple[str, int], Decimal] = defaultdict(Decimal)
    if LedgerEvent is not None:
        rows = session.execute(
            select(
                LedgerEvent.measure,
                LedgerEvent.staff_id,
                func.coalesce(func.sum(LedgerEvent.quantity), 0),
                func.coalesce(func.sum(LedgerEvent.amount), 0),
            )
            .where(
                or_(
                    LedgerEvent.campaign_id == campaign.id,
                    and_(
                        LedgerEvent.campaign_id.is_(None),
                        LedgerEvent.occurred_on.between(campaign.start_date, campaign.end_date),
                        select(Assignment.id)
                        .where(
                            Assignment.campaign_id == campaign.id,
                            Assignment.customer_id == LedgerEvent.customer_id,
                            Assignment.staff_id == LedgerEvent.staff_id,
                        )
                        .exists(),
                    ),
                )
            )
            .group_by(LedgerEvent.measure, LedgerEvent.staff_id)
        )
        for measure, staff_id, qty, amount in rows:
            out[(measure, staff_id)] += Decimal(amount) if _measure_is_sum(measure) else Decimal(qty)
        return "ledger", out
    return "assignments", out  # pragma: no cover - without a ledger: conversions only


def build(session: Session, scope: Scope, campaign: Campaign) -> Dashboard:
    """All figures of ``campaign`` within the caller's branches."""
    in_scope = and_(Assignment.campaign_id == campaign.id, scope.branch_filter(Assignment.branch_id))
    total = _counts([], in_scope, session)[0]
    funnel = {
        "assigned": int(total.assigned or 0),
        "contacted": int(total.contacted or 0),
        "interested": int(total.interested or 0),
        "converted": int(total.converted or 0),
    }
    dash = Dashboard(
        funnel=funnel,
        contact_rate=_ratio(funnel["contacted"], funnel["assigned"]),
        response_rate=_ratio(int(total.responded or 0), funnel["contacted"]),
        pool=int(total.pool or 0),
    )
    source, verified = _verified(session, campaign)
    dash.attainment_source = source
    targets = list(session.scalars(select(Target).where(Target.campaign_id == campaign.id)))
    target_measures = sorted({t.measure for t in targets})

    # staff rows
    staff_rows = _counts([Assignment.staff_id], and_(in_scope, Assignment.staff_id.is_not(None)), session)
    staff_info = {
        s.id: s
        for s in session.scalars(
            select(Staff).where(
                Staff.id.in_([r.staff_id for r in staff_rows] + [t.staff_id for t in targets if t.staff_id])
            )
        )
    }
    branch_codes = dict(session.execute(select(Branch.id, Branch.code)).all())
    staff_target = {(t.measure, t.staff_id): Decimal(t.value) for t in targets if t.staff_id}
    for r in staff_rows:
        s = staff_info.get(r.staff_id)
        row: dict[str, Any] = {
            "staff_id": r.staff_id,
            "staff_no": s.staff_no if s else "",
            "name": s.name if s else "?",
            "branch": branch_codes.get(s.branch_id, "") if s else "",
            "assigned": int(r.assigned),
            "contacted": int(r.contacted),
            "interested": int(r.interested),
            "converted": int(r.converted),
            "contact_rate": _ratio(int(r.contacted), int(r.assigned)),
        }
        for m in target_measures:
            achieved = (
                verified.get((m, r.staff_id), Decimal(0)) if source == "ledger" else Decimal(r.converted)
            )
            goal = staff_target.get((m, r.staff_id))
            row[f"{m}:achieved"] = achieved
            row[f"{m}:target"] = goal
            row[f"{m}:attainment"] = _ratio(achieved, goal) if goal else None
        dash.by_staff.append(row)
    dash.by_staff.sort(key=lambda x: (x["branch"], x["staff_no"]))

    # branch rows: verified results credited to staff of the branch
    branch_rows = _counts([Assignment.branch_id], in_scope, session)
    branch_target = {
        (t.measure, t.branch_id): Decimal(t.value) for t in targets if t.branch_id and not t.staff_id
    }
    staff_branch = {sid: s.branch_id for sid, s in staff_info.items()}
    extra = [sid for (_, sid) in verified if sid not in staff_branch]
    if extra:
        staff_branch.update(
            dict(session.execute(select(Staff.id, Staff.branch_id).where(Staff.id.in_(extra))).all())
        )
    by_branch_verified: dict[tuple[str, int], Decimal] = defaultdict(Decimal)
    for (m, sid), v in verified.items():
        by_branch_verified[(m, staff_branch.get(sid, -1))] += v
    for r in branch_rows:
        row = {
            "branch_id": r.branch_id,
            "branch": branch_codes.get(r.branch_id, ""),
            "assigned": int(r.assigned),
            "pool": int(r.pool),
            "contacted": int(r.contacted),
            "interested": int(r.interested),
            "converted": int(r.converted),
            "contact_rate": _ratio(int(r.contacted), int(r.assigned)),
            "response_rate": _ratio(int(r.responded), int(r.contacted)),
        }
        for m in target_measures:
            achieved = (
                by_branch_verified.get((m, r.branch_id), Decimal(0))
                if source == "ledger"
                else Decimal(r.converted)
            )
            goal = branch_target.get((m, r.branch_id))
            row[f"{m}:achieved"] = achieved
            row[f"{m}:target"] = goal
            row[f"{m}:attainment"] = _ratio(achieved, goal) if goal else None
        dash.by_branch.append(row)
    dash.by_branch.sort(key=lambda x: x["branch"])

    # leaderboard: converted first, then contacted, then the staff number (stable, no seniority)
    dash.leaderboard = [
        {
            "rank": i + 1,
            **{k: r[k] for k in ("staff_no", "name", "branch", "converted", "contacted", "assigned")},
        }
        for i, r in enumerate(
            sorted(dash.by_staff, key=lambda x: (-x["converted"], -x["contacted"], x["staff_no"]))[:20]
        )
    ]

    # daily trend from the history of this campaign's assignments
    # history is stored in the union's wall-clock time (config.database.now_local): its date is the day
    day = func.date(TransitionRecord.at)
    trend_rows = session.execute(
        select(day.label("day"), TransitionRecord.to_state, func.count())
        .join(
            Assignment,
            and_(TransitionRecord.entity == "assignment", TransitionRecord.entity_id == Assignment.id),
        )
        .where(in_scope, TransitionRecord.from_state != TransitionRecord.to_state)
        .group_by(day, TransitionRecord.to_state)
        .order_by(day)
    )
    per_day: dict[str, dict[str, Any]] = {}
    for d, state, n in trend_rows:
        key = d.isoformat() if isinstance(d, dt.date) else str(d)[:10]
        per_day.setdefault(
            key, {"day": key, "contacted": 0, "interested": 0, "converted": 0, "claimed": 0, "other": 0}
        )
        col = {
            "contacted": "contacted",
            "interested": "interested",
            "converted": "converted",
            "assigned": "claimed",
        }.get(state, "other")
        per_day[key][col] += int(n)
    dash.trend = [per_day[k] for k in sorted(per_day)]
    dash.reasons = reason_breakdown(session, in_scope)
    dash.grids = grid_breakdown(session, in_scope, campaign.code, scope.branch_filter)
    return dash


VISIT_KINDS = ("visit", "canvass")


def grid_breakdown(
    session: Session,
    where: ColumnElement[bool],
    code: str | None = None,
    branch_filter: Any = None,
) -> list[dict[str, Any]]:
    """Street canvassing (JOURNEYS 4): per grid, customers, contact rate, conversions, visits
    done and prospects made (new customers registered on this campaign's visits: tagged with
    its ``code``, in the caller's branches). Empty when no customer of the campaign has a grid."""
    from customers.models import Customer, CustomerTag
    from tasks.models import Task

    def n(states: tuple[str, ...]) -> Any:
        return func.sum(case((Assignment.state.in_(states), 1), else_=0)).cast(Integer)

    rows = session.execute(
        select(Customer.grid, func.count(), n(CONTACTED), n((A.converted.value,)))
        .join(Customer, Customer.id == Assignment.customer_id)
        .where(where, Customer.grid.is_not(None))
        .group_by(Customer.grid)
        .order_by(Customer.grid)
    ).all()
    if not rows:
        return []
    visits = dict(
        session.execute(
            select(Customer.grid, func.count())
            .select_from(Task)
            .join(Assignment, Assignment.id == Task.assignment_id)
            .join(Customer, Customer.id == Assignment.customer_id)
            .where(where, Customer.grid.is_not(None), Task.kind.in_(VISIT_KINDS), Task.state == "done")
            .group_by(Customer.grid)
        ).all()
    )
    prospects: dict[str, int] = {}
    if code:
        prospects = dict(
            session.execute(
                select(Customer.grid, func.count())
                .join(CustomerTag, CustomerTag.customer_id == Customer.id)
                .where(
                    CustomerTag.tag == code,
                    Customer.grid.is_not(None),
                    branch_filter(Customer.branch_id) if branch_filter is not None else true(),
                )
                .group_by(Customer.grid)
            ).all()
        )
    return [
        {
            "grid": grid,
            "customers": int(total),
            "contacted": int(contacted or 0),
            "contact_rate": _ratio(int(contacted or 0), int(total)),
            "converted": int(converted or 0),
            "visits": int(visits.get(grid, 0)),
            "prospects": int(prospects.get(grid, 0)),
        }
        for grid, total, contacted, converted in rows
    ]


def reason_kind(reason: str | None) -> str:
    """The kind of an assignment reason, without its details ("least loaded in branch (3 open)"
    → "least loaded in branch"; "handed over: …" → "handed over")."""
    text = (reason or "").strip()
    if not text:
        return "—"
    if text.startswith("handed over"):
        return "handed over"
    return text.split(" (", 1)[0]


def reason_breakdown(session: Session, where: ColumnElement[bool]) -> list[dict[str, Any]]:
    """Why assignments went where (explainable assignment): count and still-open per reason kind."""
    rows = session.execute(
        select(
            Assignment.reason,
            func.count(),
            func.sum(
                case((Assignment.state.in_(("pool", "assigned", "contacted", "interested")), 1), else_=0)
            ).cast(Integer),
        )
        .where(where)
        .group_by(Assignment.reason)
    )
    kinds: dict[str, list[int]] = {}
    for reason, n, open_n in rows:
        acc = kinds.setdefault(reason_kind(reason), [0, 0])
        acc[0] += int(n)
        acc[1] += int(open_n or 0)
    return [
        {"reason": k, "assignments": v[0], "open": v[1]}
        for k, v in sorted(kinds.items(), key=lambda kv: -kv[1][0])
    ]


def target_measures(session: Session, campaign: Campaign) -> list[str]:
    return sorted(set(session.scalars(select(Target.measure).where(Target.campaign_id == campaign.id))))
