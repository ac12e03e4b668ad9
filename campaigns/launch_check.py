"""Regulation-aware launch check (合规校验, PRODUCT.md §11.1).

* Deposit targets and rules must use daily averages (日均); point-in-time (时点) ones are
  refused (blocking: the launch guard ``compliant`` refuses the launch with these reasons).
* Pay by rank or market share is flagged.
* Targets adding up to more than the target above them (层层加码) are flagged with the figures:
  branch targets under a parent branch's target, and staff targets under their branch's target.
* Month-end deposit deviation (存款偏离度 = (last-day deposits − month's daily average) / daily
  average) is shown per branch of the campaign for the last complete month, warned above 3 %.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal, localcontext
from typing import Any

from sqlalchemy import func, select, type_coerce
from sqlalchemy.orm import Session

from appraisal.money import MONEY_CONTEXT
from campaigns.models import Campaign
from config import clock
from config.database import Money
from customers.models import Customer, Snapshot
from org.models import Branch, Staff

DEPOSIT_MEASURES = {
    "new_deposits",
    "deposits",
    "payroll_volume",
    "corporate_deposits",
    "digital_deposits",
    "retained_balance",
}
RANK_WORDS = ("rank", "market_share", "排名", "市场份额")
DEVIATION_LIMIT = Decimal("0.03")


@dataclass(frozen=True)
class Finding:
    """One finding of the launch check; ``blocking`` ones refuse the launch.

    ``level``: "error" (blocking), "warning" (flagged) or "info" (shown for information).
    ``figures`` holds the numbers behind the message (for pages and tests).
    """

    code: str
    message: str
    blocking: bool
    level: str = ""
    figures: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if not self.level:
            object.__setattr__(self, "level", "error" if self.blocking else "warning")


_ORDER = {"error": 0, "warning": 1, "info": 2}


def point_in_time_reason(measure: str, basis: str | None) -> str | None:
    """Why a target or rule on ``measure`` with ``basis`` is refused, or None when it is allowed."""
    if measure in DEPOSIT_MEASURES and basis == "point_in_time":
        return (
            f"{measure} uses a point-in-time (时点) balance; deposit targets and rules must use "
            "daily averages (日均)"
        )
    return None


def check(session: Session, campaign: Campaign, today: dt.date | None = None) -> list[Finding]:
    """All findings for ``campaign``: blocking first, then warnings, then information."""
    found = refusals(session, campaign)
    for i, rule in enumerate(campaign.rules or []):
        text = " ".join(str(v) for v in rule.values()).lower()
        if any(w in text for w in RANK_WORDS):
            found.append(
                Finding("pay_by_rank", f"rule {rule.get('id', i)} pays by rank or market share", False)
            )
    found += stacked_targets(session, campaign)
    found += deposit_deviation_findings(session, campaign, today)
    found.sort(key=lambda f: _ORDER.get(f.level, 3))
    return found


def refusals(session: Session, campaign: Campaign) -> list[Finding]:
    """The blocking findings only: point-in-time (时点) deposit targets and rules. Cheap: no query
    unless there is one to name."""
    found: list[Finding] = []
    for t in campaign.targets:
        reason = point_in_time_reason(t.measure, t.basis)
        if reason:
            found.append(Finding("point_in_time_target", f"target of {_who(session, t)} on {reason}", True))
    for i, rule in enumerate(campaign.rules or []):
        reason = point_in_time_reason(str(rule.get("measure")), rule.get("basis"))
        if reason:
            found.append(Finding("point_in_time_rule", f"rule {rule.get('id', i)} pays on {reason}", True))
    return found


def blocking_findings(session: Session, campaign: Campaign) -> list[str]:
    """Messages of the findings that refuse a launch (the launch guard ``compliant``)."""
    return [f.message for f in refusals(session, campaign)]


def _who(session: Session, target: Any) -> str:
    if target.staff_id is not None:
        staff = session.get(Staff, target.staff_id)
        return f"{staff.name} ({staff.staff_no})" if staff else f"staff member {target.staff_id}"
    branch = session.get(Branch, target.branch_id) if target.branch_id is not None else None
    return f"branch {branch.code}" if branch else "a branch"


def _names(session: Session, campaign: Campaign) -> dict[tuple[str, int | None], str]:
    staff_ids = {t.staff_id for t in campaign.targets if t.staff_id}
    out: dict[tuple[str, int | None], str] = {}
    for bid, code in session.execute(select(Branch.id, Branch.code)).all():
        out[("branch", bid)] = f"branch {code}"
    if staff_ids:
        for sid, no, name in session.execute(
            select(Staff.id, Staff.staff_no, Staff.name).where(Staff.id.in_(staff_ids))
        ).all():
            out[("staff", sid)] = f"{name} ({no})"
    return out


def _fmt(value: Decimal) -> str:
    text = f"{value:,.2f}"
    return text[:-3] if text.endswith(".00") else text


def stacked_targets(
    session: Session, campaign: Campaign, names: dict[tuple[str, int | None], str] | None = None
) -> list[Finding]:
    """层层加码: targets under another (child branches under their parent's, staff under their
    branch's) that add up to more than it, per measure, with the figures."""
    names = names or _names(session, campaign)
    parents = dict(session.execute(select(Branch.id, Branch.parent_id)).all())
    staff_branch: dict[int, int] = {}
    staff_ids = [t.staff_id for t in campaign.targets if t.staff_id]
    if staff_ids:
        staff_branch = dict(
            session.execute(select(Staff.id, Staff.branch_id).where(Staff.id.in_(staff_ids))).all()
        )
    branch_target: dict[tuple[str, int], Decimal] = {}
    for t in campaign.targets:
        if t.branch_id is not None:
            branch_target[(t.measure, t.branch_id)] = Decimal(t.value)
    below: dict[tuple[str, int], list[tuple[str, Decimal]]] = defaultdict(list)
    for t in campaign.targets:
        if t.branch_id is not None and parents.get(t.branch_id) is not None:
            key = (t.measure, parents[t.branch_id])  # type: ignore[index]
            if key in branch_target:
                below[key].append((names.get(("branch", t.branch_id), "?"), Decimal(t.value)))
        elif t.staff_id is not None and t.staff_id in staff_branch:
            key = (t.measure, staff_branch[t.staff_id])
            if key in branch_target:
                below[key].append((names.get(("staff", t.staff_id), "?"), Decimal(t.value)))
    found = []
    for (measure, parent_id), parts in sorted(below.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        total = sum((v for _, v in parts), Decimal(0))
        parent_value = branch_target[(measure, parent_id)]
        if total > parent_value:
            over = total - parent_value
            detail = " + ".join(f"{who} {_fmt(v)}" for who, v in parts)
            found.append(
                Finding(
                    "stacked_targets",
                    f"层层加码: targets on {measure} under {names.get(('branch', parent_id), '?')} add up to "
                    f"{_fmt(total)} ({detail}), {_fmt(over)} more than its target {_fmt(parent_value)}",
                    False,
                    figures={"measure": measure, "parent": parent_value, "sum": total, "over": over},
                )
            )
    return found


@dataclass(frozen=True)
class BranchDeviation:
    """Month-end deposit deviation of one branch in one month."""

    branch_code: str
    month_start: dt.date
    last_day: dt.date
    last_day_deposits: Decimal
    daily_average: Decimal

    @property
    def deviation(self) -> Decimal | None:
        if not self.daily_average:
            return None
        return (self.last_day_deposits - self.daily_average) / self.daily_average


def last_complete_month(today: dt.date) -> tuple[dt.date, dt.date]:
    """First and last day of the month before ``today``'s."""
    last = today.replace(day=1) - dt.timedelta(days=1)
    return last.replace(day=1), last


def deposit_deviation(
    session: Session, branch_ids: list[int] | None, month_start: dt.date, month_end: dt.date
) -> list[BranchDeviation]:
    """Per branch (all when ``branch_ids`` is None): last-day deposits vs the month's daily average.

    The daily average of a customer is ``avg_daily_deposit`` where the source gives it, else the
    mean of deposit_demand + deposit_time over the month's snapshots (PRODUCT.md §6).
    Sums over the month's snapshots; the last day is the branch's latest snapshot date in the month.
    """
    deposits = Snapshot.deposit_demand + Snapshot.deposit_time
    base = (
        select(
            Customer.branch_id,
            Snapshot.customer_id,
            type_coerce(func.sum(deposits), Money),
            func.count(),
            type_coerce(func.sum(Snapshot.avg_daily_deposit), Money),
            func.count(Snapshot.avg_daily_deposit),
            func.max(Snapshot.as_of),
        )
        .join(Customer, Customer.id == Snapshot.customer_id)
        .where(Snapshot.as_of >= month_start, Snapshot.as_of <= month_end)
        .group_by(Customer.branch_id, Snapshot.customer_id)
    )
    if branch_ids is not None:
        base = base.where(Customer.branch_id.in_(branch_ids))
    avg: dict[int, Decimal] = defaultdict(Decimal)
    last_day: dict[int, dt.date] = {}
    for branch_id, _cid, total, n, given, given_n, latest in session.execute(base).all():
        with localcontext(MONEY_CONTEXT):
            avg[branch_id] += Decimal(given) / given_n if given_n else Decimal(total or 0) / n
        last_day[branch_id] = max(latest, last_day.get(branch_id, latest))
    if not avg:
        return []
    codes = dict(session.execute(select(Branch.id, Branch.code).where(Branch.id.in_(list(avg)))).all())
    out = []
    for branch_id in sorted(avg, key=lambda b: codes[b]):
        day = last_day[branch_id]
        last_total = session.scalar(
            select(func.coalesce(func.sum(deposits), 0))
            .join(Customer, Customer.id == Snapshot.customer_id)
            .where(Customer.branch_id == branch_id, Snapshot.as_of == day)
        )
        out.append(
            BranchDeviation(
                codes[branch_id],
                month_start,
                day,
                Decimal(last_total),
                avg[branch_id].quantize(Decimal("0.01")),
            )
        )
    return out


def deposit_deviation_findings(
    session: Session, campaign: Campaign, today: dt.date | None = None
) -> list[Finding]:
    """The deviation of each branch of the campaign last month: warned above 3 %, else shown."""
    start, end = last_complete_month(today or clock.today())
    ids = None if campaign.all_branches else [b.id for b in campaign.branches]
    found = []
    for d in deposit_deviation(session, ids, start, end):
        dev = d.deviation
        if dev is None:
            continue
        pct = f"{(dev * 100).quantize(Decimal('0.1'))} %"
        text = (
            f"存款偏离度 of branch {d.branch_code} in {start:%Y-%m}: {pct} (deposits on {d.last_day.isoformat()} "
            f"{_fmt(d.last_day_deposits)} vs daily average {_fmt(d.daily_average)})"
        )
        warn = abs(dev) > DEVIATION_LIMIT
        found.append(
            Finding(
                "deposit_deviation",
                text + ("; above the 3 % limit: month-end inflows are suspect" if warn else ""),
                False,
                "warning" if warn else "info",
                figures={"branch": d.branch_code, "deviation": dev},
            )
        )
    return found
