"""Contribution, key customers and tiers (PRODUCT.md §4.3) against a hand-computed example."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import insert

from customers import contribution
from customers.models import Customer, Snapshot
from tests.factories import make_customer

END = dt.date(2026, 10, 31)
MONTH_ENDS = [dt.date(2025, 11, 30), dt.date(2025, 12, 31)] + [
    dt.date(2026, m + 1, 1) - dt.timedelta(days=1) for m in range(1, 11)
]
ONLY_DEMAND = {"deposit_demand": Decimal("0.01"), "deposit_time": 0, "loan": 0, "wealth": 0}


@pytest.fixture
def base(session, union):
    """A..E with steady demand deposits, F without snapshots; E also has one old, huge snapshot."""
    people = {k: make_customer(session, union.b1, union.m1, name=k) for k in "ABCDEF"}
    balances = {"A": 600_000, "C": 100_000, "D": 60_000, "E": 40_000}
    rows = []
    for name, amount in balances.items():
        rows += [
            {"customer_id": people[name].id, "as_of": d, "deposit_demand": Decimal(amount)}
            for d in MONTH_ENDS
        ]
    # B: 100 000 for six months, 300 000 for six: average 200 000
    rows += [
        {"customer_id": people["B"].id, "as_of": d, "deposit_demand": Decimal(100_000 if i < 6 else 300_000)}
        for i, d in enumerate(MONTH_ENDS)
    ]
    # outside the 12-month window: must not count
    rows.append(
        {"customer_id": people["E"].id, "as_of": dt.date(2025, 10, 31), "deposit_demand": Decimal(10**9)}
    )
    session.execute(insert(Snapshot), rows)
    session.commit()
    return people


def _state(session, people):
    session.expire_all()
    return {k: session.get(Customer, c.id) for k, c in people.items()}


def test_value_mode_marks_the_smallest_set_reaching_80_percent(session, base):
    assert len(MONTH_ENDS) == 12 and MONTH_ENDS[-1] == END
    summary = contribution.recompute(
        session, as_of=END, spreads=ONLY_DEMAND, tier_cutoffs={"vip": Decimal("0.2"), "high": Decimal("0.5")}
    )
    session.commit()
    c = _state(session, base)
    assert {k: c[k].contribution for k in "ABCDEF"} == {
        "A": Decimal("6000.00"),
        "B": Decimal("2000.00"),
        "C": Decimal("1000.00"),
        "D": Decimal("600.00"),
        "E": Decimal("400.00"),
        "F": Decimal("0.00"),
    }
    assert [c[k].contribution_rank for k in "ABCDEF"] == [1, 2, 3, 4, 5, 6]
    # total 10 000: A alone is 60 %, A+B reach exactly 80 %: C is not needed
    assert {k for k in "ABCDEF" if c[k].is_key} == {"A", "B"}
    # 6 customers: vip = top ceil(1.2) = 2, high = top ceil(3.0) = 3
    assert [c[k].tier for k in "ABCDEF"] == ["vip", "vip", "high", "mass", "mass", "mass"]
    assert summary["total"] == Decimal("10000.00") and summary["key_customers"] == 2


def test_count_mode_marks_the_top_20_percent(session, base):
    contribution.recompute(session, as_of=END, spreads=ONLY_DEMAND, key_share=Decimal("0.2"), mode="count")
    session.commit()
    c = _state(session, base)
    # ceil(6 × 0.2) = 2
    assert {k for k in "ABCDEF" if c[k].is_key} == {"A", "B"}
    contribution.recompute(session, as_of=END, spreads=ONLY_DEMAND, key_share=Decimal("0.1"), mode="count")
    session.commit()
    c = _state(session, base)
    assert {k for k in "ABCDEF" if c[k].is_key} == {"A"}
    # default cut-offs: vip top 5 % (1), high top 20 % (2)
    assert [c[k].tier for k in "ABCDEF"] == ["vip", "high", "mass", "mass", "mass", "mass"]


def test_spreads_per_product_and_a_rerun_is_stable(session, base):
    a = base["A"]
    session.execute(
        insert(Snapshot),
        [
            {
                "customer_id": base["F"].id,
                "as_of": END,
                "deposit_time": Decimal("1200000"),
                "loan": Decimal("120000"),
            }
        ],
    )
    session.commit()
    spreads = {"deposit_demand": Decimal("0.01"), "deposit_time": Decimal("0.005"), "loan": Decimal("0.03")}
    contribution.recompute(session, as_of=END, spreads=spreads)
    contribution.recompute(session, as_of=END, spreads=spreads)
    session.commit()
    c = _state(session, base)
    # F: one snapshot in the window: 1 200 000 × 0.005 + 120 000 × 0.03 = 9 600
    assert c["F"].contribution == Decimal("9600.00")
    assert c["F"].contribution_rank == 1 and c["A"].contribution_rank == 2
    assert c["A"].id == a.id


def test_bad_arguments_change_nothing(session, base):
    for kwargs in (
        {"mode": "median"},
        {"key_share": Decimal("1.5")},
        {"spreads": {"gold": Decimal("1")}},
        {"tier_cutoffs": {"vip": Decimal("0.5"), "high": Decimal("0.2")}},
    ):
        with pytest.raises(ValueError):
            contribution.recompute(session, as_of=END, **kwargs)
    assert all(c.contribution is None for c in _state(session, base).values())


def test_pareto_points():
    pts = contribution.pareto_points([Decimal(x) for x in (6000, 2000, 1000, 600, 400)], points=5)
    assert pts[0] == (0, 0)
    assert pts[1] == (Decimal("20.0"), Decimal("60.0"))
    assert pts[2] == (Decimal("40.0"), Decimal("80.0"))
    assert pts[-1] == (Decimal("100.0"), Decimal("100.0"))
    assert contribution.pareto_points([]) == [(0, 0)]
