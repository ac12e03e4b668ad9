"""Measures of one month (PRODUCT.md §6): aggregated in the database, one query per source for all staff.

:func:`gather` reads everything an incentive run needs — campaigns of the month and their rule
versions, targets, the staff in scope, ledger counts and sums, net new deposits from snapshots,
process measures from task history, training and complaints — with a fixed number of GROUP BY
queries whatever the number of staff (never a query per staff member). The result,
:class:`MonthData`, is plain Python; :mod:`appraisal.runs` decides over it.

Order of computation, step 1 and 2 of §6:

* Ledger events of the month inside a campaign's period count for the campaign they name; an
  event without a campaign counts for each campaign of the month in which its customer is
  assigned to that staff member (and for none when there is none).
* Net new deposits of a campaign: for each customer assigned in it, the month's average daily
  deposit (``avg_daily_deposit``, else the mean of ``deposit_demand + deposit_time`` over the
  month's snapshots, each rounded to the fen) minus the same figure for the month before the
  campaign started (0 when there is no snapshot then; a customer with no snapshot in the month
  contributes nothing), credited to the owner at month end by share.
* Process measures: ``tasks_done`` (finished done in the month), ``tasks_overdue`` (due in the
  month and not finished by its end; cancelled and expired tasks excepted), ``follow_ups_logged``
  (follow-ups recorded in the month), per campaign of the task or assignment.
* ``complaints`` (verified, received in the month) and ``training_missed`` (absences from
  mandatory sessions held in the month) are per staff member and count in every campaign.
* Target: the staff member's own target, else the branch's target divided by the number of
  managers of that branch in the campaign (``by_headcount``; ``by_weight`` uses the weights).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal, localcontext
from typing import Any

from sqlalchemy import and_, case, func, literal, or_, select, text, type_coerce, union_all
from sqlalchemy.orm import Session

from appraisal.ledger import month_bounds, month_of
from appraisal.models import (
    Attendance,
    Complaint,
    ComplaintState,
    LedgerEvent,
    LedgerTotal,
    RuleVersion,
    TrainingSession,
)
from appraisal.money import MONEY_CONTEXT, to_fen
from appraisal.rules import MEASURES, MeasureUnit
from campaigns.models import Assignment, Campaign, CampaignBranch, Target
from config.database import Money
from customers.models import Snapshot
from org.models import Branch, Staff, StaffRole

#: Campaign states whose months are paid (a cancelled campaign pays nothing).
PAYING_STATES = ("active", "paused", "closed", "settled")
#: Measures counted per staff member, not per campaign (they count in every campaign).
STAFF_MEASURES = ("complaints", "training_missed")
ZERO = Decimal(0)


@dataclass(frozen=True)
class CampaignInfo:
    id: int
    code: str
    name: str
    start: dt.date
    end: dt.date
    budget: Decimal | None
    all_branches: bool
    branch_ids: frozenset[int]
    rules: list[dict[str, Any]]
    rule_version: int


@dataclass(frozen=True)
class StaffInfo:
    id: int
    staff_no: str
    name: str
    branch_id: int
    branch_code: str
    is_manager: bool
    status: str


@dataclass
class MonthData:
    """Everything of one month an incentive run decides over (plain Python, no database)."""

    month: str
    scope_branch_id: int | None
    campaigns: list[CampaignInfo] = field(default_factory=list)
    staff: dict[int, StaffInfo] = field(default_factory=dict)
    #: (staff_id, campaign_id) -> measure -> value (credited by share)
    measures: dict[tuple[int, int], dict[str, Decimal]] = field(default_factory=dict)
    #: staff_id -> measure -> value, for measures not tied to a campaign
    staff_measures: dict[int, dict[str, Decimal]] = field(default_factory=dict)
    #: campaign_id -> measure -> [(staff_id or None, branch_id or None, value, split, weights)]
    targets: dict[int, dict[str, list[tuple[int | None, int | None, Decimal, str | None, Any]]]] = field(
        default_factory=dict
    )
    #: staff_id -> (present, absent) of mandatory sessions; satisfaction scores of handled complaints
    attendance: dict[int, tuple[int, int]] = field(default_factory=dict)
    satisfaction: dict[int, Decimal] = field(default_factory=dict)

    def value(self, staff_id: int, campaign_id: int, measure: str) -> Decimal:
        if measure in STAFF_MEASURES:
            own = self.staff_measures.get(staff_id, {}).get(measure, ZERO)
            return own + self.measures.get((staff_id, campaign_id), {}).get(measure, ZERO)
        return self.measures.get((staff_id, campaign_id), {}).get(measure, ZERO)

    def participants(self, campaign: CampaignInfo) -> list[int]:
        """Managers of the campaign's branches (not departed) and anyone with a measure in it, by staff_no."""
        return self.participants_of([campaign])[campaign.id]

    def participants_of(self, campaigns: list[CampaignInfo]) -> dict[int, list[int]]:
        """:meth:`participants` of each campaign (by id), reading the measures once for all of them."""
        with_results: dict[int, set[int]] = {}
        for (sid, cid), values in self.measures.items():
            if any(values.values()):
                with_results.setdefault(cid, set()).add(sid)
        managers = [s for s in self.staff.values() if s.is_manager and s.status != "departed"]
        out: dict[int, list[int]] = {}
        for c in campaigns:
            ids = {s.id for s in managers if c.all_branches or s.branch_id in c.branch_ids}
            ids |= with_results.get(c.id, set())
            ids &= self.staff.keys()
            out[c.id] = sorted(ids, key=lambda sid: self.staff[sid].staff_no)
        return out

    def headcount(self, campaign: CampaignInfo, branch_id: int) -> int:
        """Managers (not departed) of a branch in the campaign; counted once per run (cached)."""
        cache = self.__dict__.setdefault("_headcounts", {})
        key = campaign.id
        if key not in cache:
            counts: dict[int, int] = {}
            for s in self.staff.values():
                if (
                    s.is_manager
                    and s.status != "departed"
                    and (campaign.all_branches or s.branch_id in campaign.branch_ids)
                ):
                    counts[s.branch_id] = counts.get(s.branch_id, 0) + 1
            cache[key] = counts
        return int(cache[key].get(branch_id, 0))

    def target(self, staff_id: int, campaign: CampaignInfo, measure: str) -> Decimal | None:
        """Own target, else the branch target split by headcount (or by weight); None when there is none."""
        entries = self.targets.get(campaign.id, {}).get(measure, [])
        for target_staff, _branch, value, _split, _weights in entries:
            if target_staff == staff_id:
                return value
        staff = self.staff[staff_id]
        for target_staff, branch_id, value, split, weights in entries:
            if target_staff is None and branch_id == staff.branch_id:
                with localcontext(MONEY_CONTEXT):
                    if split == "by_weight" and weights:
                        total = sum((Decimal(str(w)) for w in weights.values()), ZERO)
                        mine = Decimal(str(weights.get(staff.staff_no, 0)))
                        return value * mine / total if total else None
                    heads = self.headcount(campaign, branch_id)
                    return value / heads if heads else None
        return None

    def targets_for(
        self, campaign: CampaignInfo, measure: str, staff_ids: list[int]
    ) -> dict[int, Decimal | None]:
        """:meth:`target` of each of ``staff_ids``, with each branch's split computed once (the same values)."""
        entries = self.targets.get(campaign.id, {}).get(measure, [])
        if not entries:
            return dict.fromkeys(staff_ids)
        own: dict[int, Decimal] = {}
        for target_staff, _branch, value, _split, _weights in entries:
            if target_staff is not None:
                own.setdefault(target_staff, value)  # the first own target, as target() finds it
        by_branch: dict[int, Decimal | None] = {}
        out: dict[int, Decimal | None] = {}
        for sid in staff_ids:
            if sid in own:
                out[sid] = own[sid]
                continue
            branch_id = self.staff[sid].branch_id
            if branch_id not in by_branch:
                first = next((e for e in entries if e[0] is None and e[1] == branch_id), None)
                if first is not None and first[3] == "by_weight" and first[4]:
                    out[sid] = self.target(sid, campaign, measure)  # by weight: each staff member's own share
                    continue
                by_branch[branch_id] = self.target(sid, campaign, measure)  # by headcount: the branch's share
            out[sid] = by_branch[branch_id]
        return out

    def attainment(self, staff_id: int, campaign: CampaignInfo, measure: str) -> Decimal | None:
        target = self.target(staff_id, campaign, measure)
        if not target:
            return None
        with localcontext(MONEY_CONTEXT):
            return self.value(staff_id, campaign.id, measure) / target


def _is_sum(measure: str) -> bool:
    m = MEASURES.get(measure)
    return m is not None and m.unit is MeasureUnit.SUM


def _add(bucket: dict[str, Decimal], measure: str, value: Decimal) -> None:
    bucket[measure] = bucket.get(measure, ZERO) + value


def _money(expr: Any) -> Any:
    return type_coerce(expr, Money)


def gather(session: Session, month: str, scope_branch_id: int | None = None) -> MonthData:
    """Read the month's measures, targets, campaigns and staff (a fixed number of queries)."""
    first, last = month_bounds(month)
    after_last = last + dt.timedelta(days=1)
    data = MonthData(month=month, scope_branch_id=scope_branch_id)

    # -- staff in scope (one query, managers flagged) -------------------------------------------
    is_manager = (
        select(StaffRole.id).where(StaffRole.staff_id == Staff.id, StaffRole.role == "manager").exists()
    )
    stmt = select(
        Staff.id, Staff.staff_no, Staff.name, Staff.branch_id, Branch.code, is_manager, Staff.status
    ).join(Branch, Branch.id == Staff.branch_id)
    if scope_branch_id is not None:
        stmt = stmt.where(Staff.branch_id == scope_branch_id)
    for sid, no, name, bid, bcode, mgr, status in session.execute(stmt):
        data.staff[sid] = StaffInfo(sid, no, name, bid, bcode, bool(mgr), status)
    in_scope = _scope_filter(scope_branch_id)

    # -- campaigns of the month, their branches and rule versions -------------------------------
    campaigns = session.execute(
        select(
            Campaign.id,
            Campaign.code,
            Campaign.name,
            Campaign.start_date,
            Campaign.end_date,
            Campaign.budget,
            Campaign.all_branches,
            Campaign.rules,
        ).where(Campaign.start_date <= last, Campaign.end_date >= first, Campaign.state.in_(PAYING_STATES))
    ).all()
    ids = [c.id for c in campaigns]
    branches: dict[int, set[int]] = defaultdict(set)
    versions: dict[int, tuple[int, list[dict[str, Any]]]] = {}
    if ids:
        for cid, bid in session.execute(
            select(CampaignBranch.campaign_id, CampaignBranch.branch_id).where(
                CampaignBranch.campaign_id.in_(ids)
            )
        ):
            branches[cid].add(bid)
        for cid, version, rules in session.execute(
            select(RuleVersion.campaign_id, RuleVersion.version, RuleVersion.rules)
            .where(RuleVersion.campaign_id.in_(ids), RuleVersion.effective_from <= last)
            .order_by(RuleVersion.campaign_id, RuleVersion.version)
        ):
            versions[cid] = (version, rules)  # the latest effective by the month's end wins
    for c in sorted(campaigns, key=lambda c: c.code):
        version, rules = versions.get(c.id, (1, c.rules or []))
        data.campaigns.append(
            CampaignInfo(
                c.id,
                c.code,
                c.name,
                c.start_date,
                c.end_date,
                c.budget,
                bool(c.all_branches),
                frozenset(branches[c.id]),
                list(rules or []),
                version,
            )
        )
    by_id = {c.id: c for c in data.campaigns}
    if ids:
        for t in session.execute(
            select(
                Target.campaign_id,
                Target.measure,
                Target.staff_id,
                Target.branch_id,
                Target.value,
                Target.split,
                Target.weights,
            )
            .where(Target.campaign_id.in_(ids))
            .order_by(Target.id)
        ):
            data.targets.setdefault(t.campaign_id, {}).setdefault(t.measure, []).append(
                (t.staff_id, t.branch_id, Decimal(t.value), t.split, t.weights)
            )

    # -- ledger: the month's totals (events only for campaigns cutting the month) ---------------
    _ledger(session, data, month, in_scope)

    if ids:
        _new_deposits(session, data, first, last, by_id, in_scope)
        _process(session, data, first, last, after_last, ids, in_scope)
    _training_and_complaints(session, data, first, last, in_scope)
    return data


def _cuts_month(c: CampaignInfo, first: dt.date, last: dt.date) -> bool:
    """Whether a campaign's period starts or ends inside the month (its days matter)."""
    return not (c.start <= first and c.end >= last)


def _in_period(campaigns: list[CampaignInfo], first: dt.date, last: dt.date) -> Any:
    """Events naming one of ``campaigns`` (each cutting the month) on a day inside its period."""
    parts = [
        and_(
            LedgerEvent.campaign_id == c.id,
            LedgerEvent.occurred_on >= c.start,
            LedgerEvent.occurred_on <= c.end,
        )
        for c in campaigns
    ]
    return or_(*parts) if parts else literal(False)


#: ``work_mem`` of the run's transaction on PostgreSQL (set once, first thing of the ledger read):
#: the GROUP BYs over events that remain (campaigns cutting the month, events with no campaign
#: naming a customer) and over snapshots hash in memory instead of spilling to disk or sorting.
#: Kept although a month of whole-month campaigns no longer aggregates events: one statement.
RUN_WORK_MEM = "64MB"


def _ledger(session: Session, data: MonthData, month: str, in_scope: Any) -> None:
    """The month's ledger measures (§6 steps 1–2) from ``ledger_total``, events only where days matter.

    One statement gives: (a) the sums of events naming a campaign of the month whose period
    covers the whole month, and (b) for events with no campaign, the staff-level measures
    (complaints, training) and whether any of them names a customer — both read from
    ``ledger_total`` (the month's totals, kept by the database at insert time, a few rows per
    staff member); united (UNION ALL) with (c) one GROUP BY over the month's events naming a
    campaign that starts or ends inside the month, on a day inside its period (its ids and days
    are known: no join). Without such a campaign ``ledger_event`` is not read at all. Only then
    is there a second read, of the events with no campaign and a customer, credited to each
    campaign of the month in which that customer is assigned to that staff member (day inside
    the campaign's period).
    """
    first, last = month_bounds(month)
    whole = [c.id for c in data.campaigns if not _cuts_month(c, first, last)]
    cutting = [c for c in data.campaigns if _cuts_month(c, first, last)]
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(f"SET LOCAL work_mem = '{RUN_WORK_MEM}'"))  # a constant
    totals = select(
        LedgerTotal.staff_id,
        LedgerTotal.campaign_id,
        LedgerTotal.measure,
        LedgerTotal.quantity,
        LedgerTotal.amount,
        LedgerTotal.customer_events,
    ).where(
        LedgerTotal.month == month,
        or_(LedgerTotal.campaign_key == 0, LedgerTotal.campaign_id.in_(whole) if whole else literal(False)),
        in_scope(LedgerTotal.staff_id),
    )
    stmt: Any = totals
    if cutting:
        # measures whose value is the sum of amounts (not of quantities)
        sums = sorted(name for name, m in MEASURES.items() if m.unit is MeasureUnit.SUM)
        stmt = union_all(
            totals,
            select(
                LedgerEvent.staff_id,
                LedgerEvent.campaign_id,
                LedgerEvent.measure,
                func.sum(LedgerEvent.quantity),
                # amounts only where they are the measure: most groups keep no numeric sum (faster)
                _money(func.sum(LedgerEvent.amount).filter(LedgerEvent.measure.in_(sums))),
                literal(0),
            )
            .where(
                LedgerEvent.month == month,
                LedgerEvent.campaign_id.in_([c.id for c in cutting]),
                _in_period(cutting, first, last),
                in_scope(LedgerEvent.staff_id),
            )
            .group_by(LedgerEvent.staff_id, LedgerEvent.campaign_id, LedgerEvent.measure),
        )
    with_customer = False
    for sid, cid, measure, qty, amount, customers in session.execute(stmt):
        if cid is None:
            if measure in STAFF_MEASURES:
                _add(data.staff_measures.setdefault(sid, {}), measure, Decimal(int(qty or 0)))
            with_customer = with_customer or bool(customers)
            continue
        value = Decimal(amount or 0) if _is_sum(measure) else Decimal(int(qty or 0))
        _add(data.measures.setdefault((sid, cid), {}), measure, value)
    ids = [c.id for c in data.campaigns]
    if not (with_customer and ids):
        return
    # events with no campaign: where the customer is assigned to that staff member
    for sid, cid, measure, qty, amount in session.execute(
        select(
            LedgerEvent.staff_id,
            Assignment.campaign_id,
            LedgerEvent.measure,
            func.sum(LedgerEvent.quantity),
            _money(func.sum(LedgerEvent.amount)),
        )
        .join(
            Assignment,
            and_(
                Assignment.customer_id == LedgerEvent.customer_id,
                Assignment.staff_id == LedgerEvent.staff_id,
            ),
        )
        .join(Campaign, Campaign.id == Assignment.campaign_id)
        .where(
            LedgerEvent.month == month,
            LedgerEvent.campaign_id.is_(None),
            Assignment.campaign_id.in_(ids),
            LedgerEvent.occurred_on >= Campaign.start_date,
            LedgerEvent.occurred_on <= Campaign.end_date,
            in_scope(LedgerEvent.staff_id),
        )
        .group_by(LedgerEvent.staff_id, Assignment.campaign_id, LedgerEvent.measure)
    ):
        value = Decimal(amount or 0) if _is_sum(measure) else Decimal(int(qty or 0))
        _add(data.measures.setdefault((sid, cid), {}), measure, value)


def _scope_filter(scope_branch_id: int | None) -> Any:
    def where(staff_col: Any) -> Any:
        if scope_branch_id is None:
            return literal(True)
        return staff_col.in_(select(Staff.id).where(Staff.branch_id == scope_branch_id))

    return where


def _new_deposits(
    session: Session,
    data: MonthData,
    first: dt.date,
    last: dt.date,
    by_id: dict[int, CampaignInfo],
    in_scope: Any,
) -> None:
    """Net new deposits per (owner, campaign) from snapshots: one GROUP BY over month and baselines."""
    base_ranges: dict[int, tuple[dt.date, dt.date]] = {}
    for c in by_id.values():
        base_ranges[c.id] = month_bounds(month_of(c.start - dt.timedelta(days=c.start.day)))
    in_month = and_(Snapshot.as_of >= first, Snapshot.as_of <= last)
    in_base = or_(
        *[
            and_(Assignment.campaign_id == cid, Snapshot.as_of >= b0, Snapshot.as_of <= b1)
            for cid, (b0, b1) in base_ranges.items()
        ]
    )
    period = case((in_month, literal("m")), else_=literal("b"))
    balance = Snapshot.deposit_demand + Snapshot.deposit_time
    rows = session.execute(
        select(
            Assignment.campaign_id,
            Assignment.staff_id,
            Assignment.id,
            Assignment.customer_id,
            period.label("period"),
            _money(func.sum(Snapshot.avg_daily_deposit)),
            func.count(Snapshot.avg_daily_deposit),
            _money(func.sum(balance)),
            func.count(),
        )
        .join(Snapshot, Snapshot.customer_id == Assignment.customer_id)
        .where(
            Assignment.campaign_id.in_(list(by_id)),
            Assignment.staff_id.is_not(None),
            in_scope(Assignment.staff_id),
            or_(in_month, in_base),
        )
        .group_by(Assignment.id, Assignment.campaign_id, Assignment.staff_id, Assignment.customer_id, period)
    ).all()
    # split credit (JSON cannot be grouped by on PostgreSQL): one query for the assignments that have it
    split = dict(
        session.execute(
            select(Assignment.id, Assignment.shares).where(
                Assignment.campaign_id.in_(list(by_id)),
                Assignment.shares.is_not(None),
                in_scope(Assignment.staff_id),
            )
        ).all()
    )
    per: dict[tuple[int, int, int], dict[str, Decimal]] = {}
    owners: dict[tuple[int, int, int], Any] = {}
    for cid, sid, assignment_id, customer_id, label, avg_sum, avg_n, bal_sum, n in rows:
        shares = split.get(assignment_id)
        with localcontext(MONEY_CONTEXT):
            if avg_n:
                figure = to_fen(Decimal(avg_sum) / avg_n)
            else:
                figure = to_fen(Decimal(bal_sum or 0) / n) if n else ZERO
        key = (cid, sid, customer_id)
        per.setdefault(key, {})[label] = figure
        owners[key] = shares
    for (cid, sid, _customer), figures in per.items():
        if "m" not in figures:
            continue  # no snapshot this month: nothing to credit
        net = figures["m"] - figures.get("b", ZERO)
        shares = owners[(cid, sid, _customer)]
        credit = _shares(sid, shares)
        for staff_id, share in credit:
            with localcontext(MONEY_CONTEXT):
                _add(data.measures.setdefault((staff_id, cid), {}), "new_deposits", net * share)


def _shares(owner: int, shares: Any) -> list[tuple[int, Decimal]]:
    """Split credit: ``{staff_id: share}`` (fractions or percentages summing to 1 or 100), else the owner."""
    if not shares:
        return [(owner, Decimal(1))]
    parsed = [(int(k), Decimal(str(v))) for k, v in dict(shares).items()]
    total = sum((v for _, v in parsed), ZERO)
    if total <= 0:
        return [(owner, Decimal(1))]
    with localcontext(MONEY_CONTEXT):
        return sorted((k, v / total) for k, v in parsed)


def _process(
    session: Session,
    data: MonthData,
    first: dt.date,
    last: dt.date,
    after_last: dt.date,
    ids: list[int],
    in_scope: Any,
) -> None:
    """tasks_done, tasks_overdue and follow_ups_logged per (staff, campaign)."""
    from tasks.models import Task

    end = dt.datetime.combine(after_last, dt.time())
    start = dt.datetime.combine(first, dt.time())
    done = func.sum(
        case((and_(Task.state == "done", Task.finished_at >= start, Task.finished_at < end), 1), else_=0)
    )
    overdue = func.sum(
        case(
            (
                and_(
                    Task.due_on >= first,
                    Task.due_on <= last,
                    Task.state.not_in(["cancelled", "expired"]),
                    or_(Task.finished_at.is_(None), Task.finished_at >= end),
                ),
                1,
            ),
            else_=0,
        )
    )
    for sid, cid, n_done, n_overdue in session.execute(
        select(Task.staff_id, Task.campaign_id, done, overdue)
        .where(
            Task.campaign_id.in_(ids),
            Task.staff_id.is_not(None),
            in_scope(Task.staff_id),
            or_(
                and_(Task.finished_at >= start, Task.finished_at < end),
                and_(Task.due_on >= first, Task.due_on <= last),
            ),
        )
        .group_by(Task.staff_id, Task.campaign_id)
    ):
        bucket = data.measures.setdefault((sid, cid), {})
        if n_done:
            _add(bucket, "tasks_done", Decimal(int(n_done)))
        if n_overdue:
            _add(bucket, "tasks_overdue", Decimal(int(n_overdue)))
    try:
        from tasks.models import FollowUp  # type: ignore[attr-defined]
    except ImportError:  # pragma: no cover - before the task-queue issue
        return
    campaign = func.coalesce(Assignment.campaign_id, Task.campaign_id)
    for sid, cid, n in session.execute(
        select(FollowUp.staff_id, campaign, func.count())
        .select_from(FollowUp)
        .outerjoin(Assignment, Assignment.id == FollowUp.assignment_id)
        .outerjoin(Task, Task.id == FollowUp.task_id)
        .where(FollowUp.at >= start, FollowUp.at < end, campaign.in_(ids), in_scope(FollowUp.staff_id))
        .group_by(FollowUp.staff_id, campaign)
    ):
        _add(data.measures.setdefault((sid, cid), {}), "follow_ups_logged", Decimal(int(n)))


def _training_and_complaints(
    session: Session, data: MonthData, first: dt.date, last: dt.date, in_scope: Any
) -> None:
    absent = func.sum(case((Attendance.present.is_(False), 1), else_=0))
    present = func.sum(case((Attendance.present.is_(True), 1), else_=0))
    for sid, n_present, n_absent in session.execute(
        select(Attendance.staff_id, present, absent)
        .join(TrainingSession, TrainingSession.id == Attendance.session_id)
        .where(
            TrainingSession.held_on >= first,
            TrainingSession.held_on <= last,
            TrainingSession.mandatory.is_(True),
            in_scope(Attendance.staff_id),
        )
        .group_by(Attendance.staff_id)
    ):
        data.attendance[sid] = (int(n_present or 0), int(n_absent or 0))
        if n_absent:
            _add(data.staff_measures.setdefault(sid, {}), "training_missed", Decimal(int(n_absent)))
    verified = func.sum(case((Complaint.state == ComplaintState.verified, 1), else_=0))
    for sid, n_verified, sat_sum, sat_n in session.execute(
        select(
            Complaint.staff_id, verified, func.sum(Complaint.satisfaction), func.count(Complaint.satisfaction)
        )
        .where(Complaint.received_on >= first, Complaint.received_on <= last, in_scope(Complaint.staff_id))
        .group_by(Complaint.staff_id)
    ):
        if n_verified:
            _add(data.staff_measures.setdefault(sid, {}), "complaints", Decimal(int(n_verified)))
        if sat_n:
            with localcontext(MONEY_CONTEXT):
                data.satisfaction[sid] = Decimal(int(sat_sum)) / Decimal(int(sat_n))


__all__ = ["CampaignInfo", "MonthData", "StaffInfo", "gather"]
