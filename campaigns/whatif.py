"""What-if before launch (PRODUCT.md §11.5): the campaign's estimated cost on last month's data.

The campaign's rules are evaluated with :func:`appraisal.rules.evaluate` for every staff member
who would take part, as if last month had been a month of the campaign:

* customers go to their relationship manager when that manager is active (as the launch would
  assign them; the rest would wait in the branch pool and earn nobody anything yet);
* ``new_deposits``: each customer's daily-average deposits last month minus the month before
  (``avg_daily_deposit`` where the snapshots give it, else the mean of demand + time deposits),
  credited to the relationship manager;
* other measures: last month's verified events in the ledger for the population's customers,
  credited to whom the ledger credits (zero when the ledger holds none — the page says so);
* targets: a staff member's own, else the branch target split by headcount or weight (§6 step 2);
* the campaign budget scales the positive lines (§6 step 4).

Pool and bounty rules share fixed amounts decided later; they are not estimated (and are named).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal, localcontext
from typing import Any

from sqlalchemy import and_, func, select, type_coerce
from sqlalchemy.orm import Session

from campaigns.launch_check import last_complete_month
from campaigns.models import Campaign
from campaigns.population import population_select
from config import clock
from config.database import Money
from customers.models import Customer, Snapshot
from org.models import Role, Staff, StaffRole, StaffStatus

ZERO = Decimal(0)


@dataclass
class WhatIf:
    """The estimate and what it rests on."""

    month: str  #: "YYYY-MM", the month the estimate is computed on
    total: Decimal  #: estimated cost after the budget
    before_budget: Decimal  #: positive lines before budget scaling, plus penalties
    by_rule: dict[str, Decimal] = field(default_factory=dict)
    measures: dict[str, Decimal] = field(default_factory=dict)  #: totals of the measures used
    staff_count: int = 0  #: staff members with at least one line not zero
    customers: int = 0
    pooled: int = 0  #: customers without an active relationship manager (no credit yet)
    notes: list[str] = field(default_factory=list)
    scaled: bool = False


def _month_text(day: dt.date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def _per_customer_average(
    session: Session, customer_ids: Any, first: dt.date, last: dt.date
) -> dict[int, Decimal]:
    """Each customer's daily-average deposits over [first, last] from snapshots."""
    from appraisal.money import MONEY_CONTEXT, to_fen

    balance = Snapshot.deposit_demand + Snapshot.deposit_time
    rows = session.execute(
        select(
            Snapshot.customer_id,
            type_coerce(func.sum(Snapshot.avg_daily_deposit), Money),
            func.count(Snapshot.avg_daily_deposit),
            type_coerce(func.sum(balance), Money),
            func.count(),
        )
        .where(Snapshot.customer_id.in_(customer_ids), Snapshot.as_of >= first, Snapshot.as_of <= last)
        .group_by(Snapshot.customer_id)
    ).all()
    out: dict[int, Decimal] = {}
    with localcontext(MONEY_CONTEXT):
        for cid, avg_sum, avg_n, bal_sum, n in rows:
            out[cid] = to_fen(Decimal(avg_sum) / avg_n) if avg_n else to_fen(Decimal(bal_sum or 0) / n)
    return out


def estimate(session: Session, campaign: Campaign, today: dt.date | None = None) -> WhatIf:
    """Estimate what ``campaign`` (a draft or any state) would have cost last month."""
    from appraisal.money import MONEY_CONTEXT
    from appraisal.rules import (
        MEASURES,
        MeasureUnit,
        RuleErrors,
        RuleInputs,
        RuleKind,
        StatementLine,
        compute_statement,
        evaluate,
        parse_rule,
    )

    today = today or clock.today()
    first, last = last_complete_month(today)
    before_first, before_last = last_complete_month(first)
    month = _month_text(first)
    notes: list[str] = []

    members = population_select(campaign).subquery()
    manager = select(Staff.id).where(Staff.id == Customer.manager_id, Staff.status == StaffStatus.active)
    owner_rows = session.execute(
        select(Customer.id, Customer.manager_id, manager.exists()).join(members, members.c.id == Customer.id)
    ).all()
    owner = {cid: mid for cid, mid, active in owner_rows if active}
    pooled = len(owner_rows) - len(owner)
    ids_select = select(members.c.id)

    rules = []
    for i, raw in enumerate(campaign.rules or []):
        data = {k: v for k, v in raw.items() if k != "basis"}
        try:
            rules.append(parse_rule(data, f"rules[{i}]"))
        except RuleErrors as exc:
            notes.append(f"rule {raw.get('id', i)} is not valid and was left out: {exc.errors[0]}")
    wanted = {r.measure for r in rules if r.measure}

    values: dict[int, dict[str, Decimal]] = defaultdict(dict)
    totals: dict[str, Decimal] = {}
    if "new_deposits" in wanted:
        now = _per_customer_average(session, ids_select, first, last)
        then = _per_customer_average(session, ids_select, before_first, before_last)
        for cid, figure in now.items():
            sid = owner.get(cid)
            if sid is None:
                continue
            net = figure - then.get(cid, ZERO)
            values[sid]["new_deposits"] = values[sid].get("new_deposits", ZERO) + net
            totals["new_deposits"] = totals.get("new_deposits", ZERO) + net
        notes.append(
            f"new deposits: daily averages of {month} minus {_month_text(before_first)} from the balance snapshots "
            "of the population, credited to each customer's relationship manager"
        )
    counted = sorted(wanted - {"new_deposits"})
    if counted:
        found_any = False
        try:
            from appraisal.models import LedgerEvent
        except ImportError:  # pragma: no cover - the ledger ships with the product
            LedgerEvent = None  # noqa: N806
        if LedgerEvent is not None:
            rows = session.execute(
                select(
                    LedgerEvent.staff_id,
                    LedgerEvent.measure,
                    func.sum(LedgerEvent.quantity),
                    type_coerce(func.sum(LedgerEvent.amount), Money),
                )
                .where(
                    LedgerEvent.month == month,
                    LedgerEvent.measure.in_(counted),
                    LedgerEvent.customer_id.in_(ids_select),
                )
                .group_by(LedgerEvent.staff_id, LedgerEvent.measure)
            ).all()
            for sid, measure, qty, amount in rows:
                m = MEASURES.get(measure)
                v = Decimal(amount or 0) if m is not None and m.unit is MeasureUnit.SUM else Decimal(qty or 0)
                values[sid][measure] = values[sid].get(measure, ZERO) + v
                totals[measure] = totals.get(measure, ZERO) + v
                found_any = found_any or bool(v)
        if found_any:
            notes.append(
                f"{', '.join(counted)}: verified results in the ledger for {month} on the population's customers"
            )
        else:
            notes.append(
                f"{', '.join(counted)}: no verified results in the ledger for {month}; counted as zero"
            )

    targets = _targets(session, campaign)
    people = set(values) | {sid for (sid, _m) in targets}
    lines = []
    by_rule: dict[str, Decimal] = {}
    for rule in rules:
        if rule.kind in (RuleKind.POOL, RuleKind.BOUNTY):
            notes.append(f"rule {rule.id} ({rule.kind.value}) shares an amount fixed later; not estimated")
            continue
        for sid in sorted(people):
            value = values.get(sid, {}).get(rule.measure or "", ZERO)
            target = targets.get((sid, rule.measure or ""))
            if not value and target is None:
                continue
            with localcontext(MONEY_CONTEXT):
                line = evaluate(rule, RuleInputs(value=value, target=target))
            if line.amount:
                lines.append(StatementLine(str(sid), campaign.code or "draft", line))
    budget = {campaign.code or "draft": Decimal(campaign.budget)} if campaign.budget is not None else {}
    before = sum((sl.line.amount for sl in lines), ZERO)
    result = compute_statement(lines, budget)
    for sl in result.lines:
        by_rule[sl.line.rule_id] = by_rule.get(sl.line.rule_id, ZERO) + sl.line.amount
    total = sum(result.totals.values(), ZERO)
    if result.scaled:
        notes.append(f"the budget {Decimal(campaign.budget):,.2f} scaled the payments down")
    if pooled:
        notes.append(
            f"{pooled} customers have no active relationship manager: they wait in the pool and earn nothing yet"
        )
    return WhatIf(
        month=month,
        total=Decimal(total).quantize(Decimal("0.01")),
        before_budget=Decimal(before).quantize(Decimal("0.01")),
        by_rule=by_rule,
        measures=totals,
        staff_count=len({sl.staff_no for sl in result.lines}),
        customers=len(owner_rows),
        pooled=pooled,
        notes=notes,
        scaled=bool(result.scaled),
    )


def _targets(session: Session, campaign: Campaign) -> dict[tuple[int, str], Decimal]:
    """(staff_id, measure) → target: own, else the branch target split by headcount or weight."""
    from appraisal.money import MONEY_CONTEXT

    out: dict[tuple[int, str], Decimal] = {}
    branch_targets = [t for t in campaign.targets if t.branch_id is not None]
    if branch_targets:
        branch_ids = {t.branch_id for t in branch_targets}
        managers = session.execute(
            select(Staff.id, Staff.staff_no, Staff.branch_id)
            .join(StaffRole, and_(StaffRole.staff_id == Staff.id, StaffRole.role == Role.manager))
            .where(Staff.branch_id.in_(branch_ids), Staff.status != StaffStatus.departed)
            .distinct()
        ).all()
        by_branch: dict[int, list[tuple[int, str]]] = defaultdict(list)
        for sid, no, bid in managers:
            by_branch[bid].append((sid, no))
        for t in branch_targets:
            staff = by_branch.get(t.branch_id or 0, [])
            with localcontext(MONEY_CONTEXT):
                if t.split == "by_weight" and t.weights:
                    total = sum((Decimal(str(w)) for w in t.weights.values()), ZERO)
                    for sid, no in staff:
                        w = Decimal(str(t.weights.get(no, 0)))
                        if total and w:
                            out[(sid, t.measure)] = Decimal(t.value) * w / total
                elif staff:
                    for sid, _no in staff:
                        out[(sid, t.measure)] = Decimal(t.value) / len(staff)
    for t in campaign.targets:
        if t.staff_id is not None:
            out[(t.staff_id, t.measure)] = Decimal(t.value)
    return out
