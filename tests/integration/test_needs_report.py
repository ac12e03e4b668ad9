"""The needs report per segment (seed: 分析客户需求): exact counts, scoped, combinable filters."""

from __future__ import annotations

import datetime as dt

import pytest

from customers.queries import CustomerFilter
from customers.reports import needs_report
from org.scope import Scope
from tests.factories import make_customer

TODAY = dt.date(2026, 11, 30)


def test_counts_per_segment_and_need(session, union):
    def person(branch, manager, born, occupation, gender, area, product):
        make_customer(
            session,
            branch,
            manager,
            birth_date=born,
            occupation=occupation,
            gender=gender,
            area=area,
            needs={"preferred_product": product} if product else None,
        )

    person(union.b1, union.m1, dt.date(2000, 1, 1), "返乡农民工", "M", "rural", "time_deposit")
    person(union.b1, union.m1, dt.date(1999, 6, 1), "返乡农民工", "M", "rural", "time_deposit")
    person(union.b1, union.m1, dt.date(1990, 1, 1), "公务员", "F", "urban", "large_cd")
    person(union.b1, union.m1, dt.date(1950, 1, 1), "退休", "F", "urban", None)
    person(union.b2, union.m3, dt.date(2001, 1, 1), "农民", "M", "rural", "wealth")
    make_customer(session, union.b1, union.m1, type="institution", name="县人民医院", birth_date=None)
    session.commit()

    report = needs_report(
        session, Scope.of(session, union.director), "age_band", "preferred_product", today=TODAY
    )
    assert report.segments == ["18-30", "31-45", "61+"]
    assert report.values == ["time_deposit", "large_cd", "wealth", "unknown"]
    assert report.counts == {
        ("18-30", "time_deposit"): 2,
        ("18-30", "wealth"): 1,
        ("31-45", "large_cd"): 1,
        ("61+", "unknown"): 1,
    }
    assert report.share("18-30", "time_deposit") == 67 and report.row_total("18-30") == 3
    chart = report.chart()
    assert chart["type"] == "bar" and chart["data"]["labels"] == report.segments

    # the branch director of B01 does not see B02's farmer
    mine = needs_report(
        session, Scope.of(session, union.director_b1), "age_band", "preferred_product", today=TODAY
    )
    assert mine.counts[("18-30", "time_deposit")] == 2 and ("18-30", "wealth") not in mine.counts

    by_gender = needs_report(
        session,
        Scope.of(session, union.director),
        "gender",
        "preferred_product",
        CustomerFilter(area="rural"),
        today=TODAY,
    )
    assert by_gender.counts == {("M", "time_deposit"): 2, ("M", "wealth"): 1}

    with pytest.raises(ValueError, match="dimension"):
        needs_report(session, Scope.of(session, union.director), "zodiac", "term")
