"""Targets and attainment (PRODUCT.md §6 step 2), split credit and the scorecard, on plain data."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from appraisal.measures import CampaignInfo, MonthData, StaffInfo, _shares
from appraisal.scorecard import score_month, validate_weights

D = Decimal


def _data() -> MonthData:
    data = MonthData(month="2026-10", scope_branch_id=None)
    data.staff = {
        1: StaffInfo(1, "M01", "甲", 10, "B01", True, "active"),
        2: StaffInfo(2, "M02", "乙", 10, "B01", True, "active"),
        3: StaffInfo(3, "M03", "丙", 10, "B01", True, "departed"),  # not counted in the headcount
        4: StaffInfo(4, "M04", "丁", 20, "B02", True, "active"),
        5: StaffInfo(5, "D01", "主任", 10, "B01", False, "active"),  # a director: not a manager
    }
    camp = CampaignInfo(
        7, "C", "c", dt.date(2026, 10, 1), dt.date(2026, 12, 31), None, False, frozenset({10, 20}), [], 1
    )
    data.campaigns = [camp]
    data.targets = {
        7: {
            "accounts_opened": [(None, 10, D(9), "by_headcount", None), (4, None, D(4), None, None)],
            "new_deposits": [(None, 10, D(1000), "by_weight", {"M01": 3, "M02": 1})],
        }
    }
    data.measures = {
        (1, 7): {"accounts_opened": D(6), "tasks_done": D(3), "tasks_overdue": D(1)},
        (2, 7): {"accounts_opened": D(3)},
        (4, 7): {"accounts_opened": D(5)},
    }
    return data


def test_branch_target_split_by_headcount_and_weight() -> None:
    data = _data()
    camp = data.campaigns[0]
    assert data.headcount(camp, 10) == 2
    assert data.target(1, camp, "accounts_opened") == D("4.5")  # 9 / 2 active managers of B01
    assert data.attainment(1, camp, "accounts_opened").quantize(D("0.0001")) == D("1.3333")
    assert data.target(4, camp, "accounts_opened") == D(4)  # own target wins
    assert data.attainment(4, camp, "accounts_opened") == D("1.25")
    assert data.target(1, camp, "new_deposits") == D(750)
    assert data.target(2, camp, "new_deposits") == D(250)
    assert data.target(4, camp, "new_deposits") is None  # no target: no attainment
    assert data.attainment(4, camp, "new_deposits") is None
    assert data.participants(camp) == [1, 2, 4]


def test_split_credit_shares() -> None:
    assert _shares(5, None) == [(5, D(1))]
    assert _shares(5, {"5": "60", "6": "40"}) == [(5, D("0.6")), (6, D("0.4"))]
    assert _shares(5, {"5": "0"}) == [(5, D(1))]


def test_scorecard_process_counts_and_ranking() -> None:
    data = _data()
    data.attendance = {2: (1, 1)}
    data.staff_measures = {4: {"complaints": D(2)}}
    scores = score_month(data, {"results": 40, "process": 30, "service": 20, "training": 10})
    s1, s2, s4 = scores[1], scores[2], scores[4]
    assert s1.results == D("50.00")  # mean of min(6 / 4.5, 1) and 0 / 750 deposits
    assert s1.score == D("61.25")  # 0.4 × 50 + 0.3 × 37.5 + 0.2 × 100 + 0.1 × 100
    assert s4.score == D("77.00")  # 0.4 × 100 + 0.3 × 50 + 0.2 × 60 + 0.1 × 100
    assert s1.process == D("37.50")  # (3/4 completion + 0/20 follow-ups) / 2
    assert s2.training == D("50.00") and s4.service == D("60.00")
    assert [s.staff_no for s in scores.values()] == ["M04", "M01", "M02"]
    assert (s4.rank_union, s1.rank_union) == (1, 2)
    assert (s1.rank_branch, s2.rank_branch, s4.rank_branch) == (1, 2, 1)
    assert 5 not in scores  # directors are not scored


def test_weights_validation() -> None:
    assert validate_weights({"results": "50"})["results"] == 50
    for bad in (
        {"results": "x"},
        {"results": -1},
        {"follow_up_norm": 0},
        {"results": 0, "process": 0, "service": 0, "training": 0},
    ):
        try:
            validate_weights(bad)
        except ValueError as exc:
            assert str(exc)
        else:  # pragma: no cover
            raise AssertionError(bad)
