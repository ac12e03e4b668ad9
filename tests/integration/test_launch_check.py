"""The regulation-aware launch check (§11.1) and the director's what-if (§11.5) on a real database."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from campaigns import services
from campaigns.launch_check import check, deposit_deviation, last_complete_month
from campaigns.models import Target
from campaigns.whatif import estimate
from config import clock
from customers.models import Snapshot
from tests.factories import make_branch, make_campaign, make_customer, make_staff
from workflow.errors import GuardRefused

DEP_RULES = [
    {"id": "dep", "kind": "percentage", "measure": "new_deposits", "rate": "0.002", "cap": "5000"},
    {
        "id": "bonus",
        "kind": "attainment_bonus",
        "measure": "new_deposits",
        "thresholds": [{"at": "1", "amount": "500"}],
    },
]


def snap(session, customer, day, demand, avg=None):
    session.add(
        Snapshot(
            customer_id=customer.id,
            as_of=day,
            deposit_demand=Decimal(demand),
            avg_daily_deposit=None if avg is None else Decimal(avg),
        )
    )


@pytest.fixture
def months():
    first, last = last_complete_month(clock.today())
    before_first, before_last = last_complete_month(first)
    return first, last, before_first, before_last


@pytest.fixture
def deposits(session, union, months):
    """B01: c1 (m1) and c2 (m2) grew last month, c3 has no manager; B02: c4 (m3) steady."""
    first, last, _bf, before_last = months
    c1 = make_customer(session, union.b1, union.m1)
    c2 = make_customer(session, union.b1, union.m2)
    c3 = make_customer(session, union.b1, None)
    c4 = make_customer(session, union.b2, union.m3)
    snap(session, c1, before_last, "100000")
    snap(session, c1, last, "1200000", avg="1100000")  # net new daily average 1 000 000
    snap(session, c2, first, "300000")
    snap(session, c2, last, "500000")  # mean 400 000, nothing before: net 400 000
    snap(session, c3, last, "50000")
    snap(session, c4, first, "100000")
    snap(session, c4, last, "101000")
    session.commit()
    return c1, c2, c3, c4


def test_point_in_time_target_and_rule_refuse_the_launch_with_the_reason(session, union):
    make_customer(session, union.b1, union.m1)
    rules = [dict(DEP_RULES[0], basis="point_in_time"), DEP_RULES[1]]
    c = make_campaign(
        session,
        union.director_b1,
        [union.b1],
        rules=rules,
        targets=[
            Target(
                measure="new_deposits", staff_id=union.m1.id, value=Decimal(1000000), basis="point_in_time"
            )
        ],
    )
    session.commit()
    findings = check(session, c)
    blocking = [f for f in findings if f.blocking]
    assert [f.code for f in blocking] == ["point_in_time_target", "point_in_time_rule"]
    assert "李晓燕 (M0101)" in blocking[0].message and "daily averages (日均)" in blocking[0].message
    with pytest.raises(GuardRefused) as info:
        services.launch(session, c, union.director_b1.id)
    assert "point-in-time (时点)" in str(info.value)
    session.rollback()
    assert c.state == "draft"


def test_pay_by_rank_is_flagged_not_blocking(session, union):
    c = make_campaign(
        session,
        union.director_b1,
        [union.b1],
        rules=[{"id": "rank-bonus", "kind": "piece_rate", "measure": "accounts_opened", "rate": "20"}],
    )
    session.commit()
    f = [f for f in check(session, c) if f.code == "pay_by_rank"]
    assert len(f) == 1 and not f[0].blocking and f[0].level == "warning"


def test_stacked_targets_are_flagged_with_the_figures(session, union):
    sub = make_branch(session, "B0101", "城关分理处", union.b1)
    make_staff(session, sub, ("manager",), staff_no="M0901")
    c = make_campaign(
        session,
        union.director,
        [union.b1, sub],
        targets=[
            Target(measure="accounts_opened", branch_id=union.b1.id, value=Decimal(300)),
            Target(measure="accounts_opened", branch_id=sub.id, value=Decimal(320)),
            Target(measure="new_deposits", branch_id=union.b1.id, value=Decimal(1000000)),
            Target(measure="new_deposits", staff_id=union.m1.id, value=Decimal(700000)),
            Target(measure="new_deposits", staff_id=union.m2.id, value=Decimal(500000)),
        ],
    )
    session.commit()
    stacked = {f.figures["measure"]: f for f in check(session, c) if f.code == "stacked_targets"}
    assert set(stacked) == {"accounts_opened", "new_deposits"}
    dep = stacked["new_deposits"]
    assert dep.figures["sum"] == Decimal(1200000) and dep.figures["over"] == Decimal(200000)
    assert "1,200,000" in dep.message and "200,000 more than its target 1,000,000" in dep.message
    assert "层层加码" in dep.message and "张国强 (M0102) 500,000" in dep.message
    assert stacked["accounts_opened"].figures["over"] == Decimal(20)
    assert not dep.blocking


def test_targets_within_the_parent_are_not_flagged(session, union):
    c = make_campaign(
        session,
        union.director_b1,
        [union.b1],
        targets=[
            Target(measure="new_deposits", branch_id=union.b1.id, value=Decimal(1000000)),
            Target(measure="new_deposits", staff_id=union.m1.id, value=Decimal(600000)),
            Target(measure="new_deposits", staff_id=union.m2.id, value=Decimal(400000)),
        ],
    )
    session.commit()
    assert [f for f in check(session, c) if f.code == "stacked_targets"] == []


def test_month_end_deviation_per_branch_warned_above_three_percent(session, union, deposits, months):
    first, last, *_ = months
    rows = {d.branch_code: d for d in deposit_deviation(session, None, first, last)}
    b1, b2 = rows["B01"], rows["B02"]
    # B01: last day 1 200 000 + 500 000 + 50 000; daily average 1 100 000 + 400 000 + 50 000
    assert b1.last_day_deposits == Decimal("1750000") and b1.daily_average == Decimal("1550000.00")
    assert b1.deviation > Decimal("0.03")
    assert b2.daily_average == Decimal("100500.00") and b2.deviation < Decimal("0.03")
    c = make_campaign(session, union.director, [union.b1, union.b2])
    session.commit()
    dev = {f.figures["branch"]: f for f in check(session, c) if f.code == "deposit_deviation"}
    assert dev["B01"].level == "warning" and "above the 3 % limit" in dev["B01"].message
    assert "12.9 %" in dev["B01"].message
    assert dev["B02"].level == "info" and "0.5 %" in dev["B02"].message
    assert all(not f.blocking for f in dev.values())


def test_what_if_estimates_last_months_cost(session, union, deposits):
    c = make_campaign(
        session,
        union.director_b1,
        [union.b1],
        rules=DEP_RULES,
        targets=[
            Target(measure="new_deposits", staff_id=union.m1.id, value=Decimal(800000)),
            Target(
                measure="new_deposits", branch_id=union.b1.id, value=Decimal(2000000), split="by_headcount"
            ),
        ],
    )
    session.commit()
    w = estimate(session, c)
    # m1: 1 000 000 × 0.2 % = 2000 + bonus 500 (125 %); m2: 400 000 × 0.2 % = 800 (40 % of 1 000 000)
    assert w.by_rule == {"dep": Decimal("2800.00"), "bonus": Decimal("500.00")}
    assert w.total == Decimal("3300.00") and not w.scaled
    assert w.customers == 3 and w.pooled == 1 and w.staff_count == 2
    assert w.measures["new_deposits"] == Decimal("1400000.00")
    assert any("snapshots" in n for n in w.notes)

    c.budget = Decimal(3000)
    session.commit()
    w = estimate(session, c)
    assert w.total == Decimal("3000.00") and w.before_budget == Decimal("3300.00") and w.scaled


def test_what_if_counts_come_from_the_ledger_or_are_zero(session, union, deposits, months):
    first = months[0]
    c = make_campaign(
        session,
        union.director_b1,
        [union.b1],
        rules=[{"id": "acc", "kind": "piece_rate", "measure": "accounts_opened", "rate": "20"}],
    )
    session.commit()
    w = estimate(session, c)
    assert w.total == Decimal("0.00") and any("no verified results in the ledger" in n for n in w.notes)

    from appraisal.models import LedgerEvent

    c1 = deposits[0]
    session.add(
        LedgerEvent(
            event_id="E-1",
            occurred_on=first + dt.timedelta(days=3),
            month=f"{first:%Y-%m}",
            staff_id=union.m1.id,
            customer_id=c1.id,
            measure="accounts_opened",
            quantity=3,
            amount=Decimal(0),
        )
    )
    session.commit()
    w = estimate(session, c)
    assert w.total == Decimal("60.00") and w.measures["accounts_opened"] == 3
