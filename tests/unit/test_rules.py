"""Reward rules by worked example: every figure below was computed by hand (PRODUCT.md §6)."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from appraisal.money import (
    FEN,
    allocate_largest_remainder,
    parse_money,
    scale_to_budget,
    to_fen,
)
from appraisal.rules import (
    MEASURES,
    Line,
    RuleErrors,
    RuleInputs,
    RuleKind,
    StatementLine,
    TierMode,
    compute_statement,
    evaluate,
    evaluate_group,
    parse_rule,
    parse_rules,
    pool_shares,
    register_measure,
    split_by_shares,
)

D = Decimal
APPRAISAL = Path(__file__).resolve().parents[2] / "appraisal"


def rule(**data):
    """Parse a rule written as keyword arguments (``from`` is a keyword, so brackets use dicts)."""
    return parse_rule(data)


def errors_of(data, path="rules[0]"):
    """Return {path: (expected, found)} of every problem parse_rule reports."""
    with pytest.raises(RuleErrors) as caught:
        parse_rule(data, path)
    return {e.path: (e.expected, e.found) for e in caught.value.errors}


# ---------------------------------------------------------------------------------------------
# money.py
# ---------------------------------------------------------------------------------------------


class TestToFen:
    @pytest.mark.parametrize(
        ("exact", "rounded"),
        [
            ("5.025", "5.03"),  # half up; banker's rounding would give 5.02
            ("5.015", "5.02"),
            ("5.0249", "5.02"),
            ("-5.025", "-5.03"),  # a deduction rounds like a payment, away from zero
            ("1872.45", "1872.45"),
            ("0.005", "0.01"),
            ("0.0049", "0.00"),
        ],
    )
    def test_round_half_up_to_the_fen(self, exact, rounded):
        assert str(to_fen(D(exact))) == rounded

    def test_no_negative_zero(self):
        assert str(to_fen(D("-0.001"))) == "0.00"

    def test_refuses_binary_fractions(self):
        with pytest.raises(TypeError):
            to_fen(0.1)


class TestParseMoney:
    @pytest.mark.parametrize(
        ("written", "amount"),
        [
            ("1200", "1200.00"),
            ("12.5", "12.50"),
            (" 3.10 ", "3.10"),
            (12, "12.00"),
            (D("0.01"), "0.01"),
            ("-60", "-60.00"),
        ],
    )
    def test_accepts_text_int_and_decimal(self, written, amount):
        parsed = parse_money(written)
        assert str(parsed) == amount
        assert parsed.as_tuple().exponent == -2

    @pytest.mark.parametrize("written", [0.1, "1.005", D("2.345"), "abc", "NaN", "Infinity", True, None, ""])
    def test_refuses_and_names_the_value(self, written):
        with pytest.raises(ValueError) as caught:
            parse_money(written)
        assert repr(written) in str(caught.value)


class TestAllocateLargestRemainder:
    def test_equal_weights_ties_go_to_the_lower_key(self):
        parts = allocate_largest_remainder(D("100.00"), [("S2", D(1)), ("S1", D(1)), ("S3", D(1))])
        assert parts == {"S1": D("33.34"), "S2": D("33.33"), "S3": D("33.33")}
        assert list(parts) == ["S1", "S2", "S3"]

    def test_largest_remainder_first_then_key(self):
        # 1.00 = 100 fen by 2:3:2 → 28.571…, 42.857…, 28.571… fen; floors 28+42+28 = 98, 2 fen left:
        # B (.857) first, then the tie A/C (.571) goes to A.
        parts = allocate_largest_remainder(D("1.00"), [("C", D(2)), ("B", D(3)), ("A", D(2))])
        assert parts == {"A": D("0.29"), "B": D("0.43"), "C": D("0.28")}

    def test_tiebreak_key(self):
        parts = allocate_largest_remainder(D("0.01"), [(1, D(1)), (2, D(1))], tiebreak_key=lambda key: -key)
        assert parts == {2: D("0.01"), 1: D("0.00")}

    def test_zero_weight_gets_nothing(self):
        parts = allocate_largest_remainder(D("0.05"), [("A", D(1)), ("B", D(0)), ("C", D(1))])
        assert parts == {"A": D("0.03"), "B": D("0.00"), "C": D("0.02")}

    def test_negative_total_is_shared_like_a_positive_one(self):
        parts = allocate_largest_remainder(D("-100.00"), [("S1", 1), ("S2", 1), ("S3", 1)])
        assert parts == {"S1": D("-33.34"), "S2": D("-33.33"), "S3": D("-33.33")}

    @pytest.mark.parametrize(
        ("total", "weights", "message"),
        [
            (D("1.00"), [("A", 1), ("A", 2)], "twice"),
            (D("1.00"), [("A", -1), ("B", 2)], "negative"),
            (D("1.00"), [("A", 0), ("B", 0)], "every weight is 0"),
            (D("1.005"), [("A", 1)], "whole number of fen"),
            (D("1.00"), [], "nobody"),
        ],
    )
    def test_refuses(self, total, weights, message):
        with pytest.raises(ValueError, match=message):
            allocate_largest_remainder(total, weights)


class TestScaleToBudget:
    def test_a_fen_left_over_goes_by_largest_remainder(self):
        # 1000.00 of lines into 999.99: exact 499.995, 299.997, 199.998; floors 499.99 + 299.99 + 199.99
        # = 999.97; the 2 fen left go to the largest remainders: S3 (.8 fen), then S2 (.7 fen).
        scaled = scale_to_budget([("S1", D("500.00")), ("S2", D("300.00")), ("S3", D("200.00"))], D("999.99"))
        assert scaled == {"S1": D("499.99"), "S2": D("300.00"), "S3": D("200.00")}
        assert sum(scaled.values()) == D("999.99")

    def test_equal_remainders_go_to_the_lower_staff_no(self):
        # 3 × 400.00 into 1000.00: 333.333… each, floors 999.99, the one fen left goes to S1.
        scaled = scale_to_budget(
            [("S3", D("400.00")), ("S1", D("400.00")), ("S2", D("400.00"))], D("1000.00")
        )
        assert scaled == {"S1": D("333.34"), "S2": D("333.33"), "S3": D("333.33")}

    def test_penalties_are_never_scaled(self):
        scaled = scale_to_budget([("S1", D("600.00")), ("S2", D("-60.00")), ("S3", D("600.00"))], D("600.00"))
        assert scaled == {"S1": D("300.00"), "S2": D("-60.00"), "S3": D("300.00")}

    def test_lines_within_the_budget_are_untouched(self):
        lines = [("S1", D("600.00")), ("S2", D("400.00"))]
        assert scale_to_budget(lines, D("1000.00")) == dict(lines)

    def test_zero_budget_pays_nothing_positive(self):
        assert scale_to_budget([("S1", D("5.00")), ("S2", D("-1.00"))], D("0.00")) == {
            "S1": D("0.00"),
            "S2": D("-1.00"),
        }

    def test_refuses_a_negative_budget(self):
        with pytest.raises(ValueError, match="negative"):
            scale_to_budget([("S1", D("5.00"))], D("-1.00"))


# ---------------------------------------------------------------------------------------------
# Rule kinds by worked example
# ---------------------------------------------------------------------------------------------


class TestPieceRate:
    def test_rate_times_count(self):
        line = evaluate(
            rule(id="acc", kind="piece_rate", measure="accounts_opened", rate=20), RuleInputs(value=D(7))
        )
        assert line.amount == D("140.00")
        assert line.explanation == "accounts opened 7 × 20.00 = 140.00"
        assert line.explanation_zh == "开户数 7 × 20.00 = 140.00"
        assert line.formula == "rate × count"
        assert (line.rule_id, line.kind, line.measure, line.value) == (
            "acc",
            RuleKind.PIECE_RATE,
            "accounts_opened",
            7,
        )

    def test_negative_count_pays_nothing_unless_allowed(self):
        # More accounts closed than opened (reversals) is not a deduction by default.
        acc = rule(id="acc", kind="piece_rate", measure="accounts_opened", rate=20)
        line = evaluate(acc, RuleInputs(value=D(-2)))
        assert str(line.amount) == "0.00"
        assert line.explanation == "accounts opened -2 is negative; a negative count pays 0.00"
        allowed = rule(id="acc", kind="piece_rate", measure="accounts_opened", rate=20, allow_negative=True)
        assert evaluate(allowed, RuleInputs(value=D(-2))).amount == D("-40.00")

    def test_cap_limits_what_is_paid(self):
        acc = rule(id="acc", kind="piece_rate", measure="accounts_opened", rate=20, cap=100)
        line = evaluate(acc, {"value": 7})
        assert (line.computed, line.amount, line.limited_by) == (D("140.00"), D("100.00"), "cap")
        assert line.explanation.endswith(", capped at 100.00")


class TestPercentage:
    def test_journeys_example_capped(self):
        # JOURNEYS §8: 1 248 300 × 0.15 % = 1 872.45, capped at 1 200.
        dep = rule(id="dep", kind="percentage", measure="new_deposits", rate="0.0015", cap=1200)
        line = evaluate(dep, RuleInputs(value=D("1248300.00")))
        assert line.computed == D("1872.45")
        assert line.amount == D("1200.00")
        assert str(line.amount) == "1200.00"
        assert line.limited_by == "cap"
        assert (
            line.explanation == "new deposits (daily average) 1248300.00 × 0.15% = 1872.45, capped at 1200.00"
        )
        assert line.explanation_zh == "新增日均 1248300.00 × 0.15% = 1872.45，封顶 1200.00"
        assert line.formula == "rate × sum"

    def test_without_cap(self):
        dep = rule(id="dep", kind="percentage", measure="new_deposits", rate="0.0015")
        assert evaluate(dep, RuleInputs(value=D("1248300.00"))).amount == D("1872.45")

    def test_rate_may_be_written_as_a_percentage(self):
        assert rule(id="dep", kind="percentage", measure="new_deposits", rate="0.15%").rate == D("0.0015")

    def test_round_half_up_at_half_a_fen(self):
        # 1005.00 × 0.5 % = 5.025 → 5.03 (ROUND_HALF_EVEN would give 5.02).
        dep = rule(id="dep", kind="percentage", measure="new_deposits", rate="0.005")
        line = evaluate(dep, RuleInputs(value=D("1005.00")))
        assert line.amount == D("5.03")
        assert line.explanation == "new deposits (daily average) 1005.00 × 0.5% = 5.025, rounded to 5.03"

    def test_negative_sum_pays_nothing(self):
        dep = rule(id="dep", kind="percentage", measure="new_deposits", rate="0.005")
        line = evaluate(dep, RuleInputs(value=D("-1005.00")))
        assert str(line.amount) == "0.00"
        assert "negative" in line.explanation

    def test_negative_sum_deducts_when_allowed(self):
        # −1005.00 × 0.5 % = −5.025 → −5.03 (half away from zero).
        dep = rule(id="dep", kind="percentage", measure="new_deposits", rate="0.005", allow_negative=True)
        assert evaluate(dep, RuleInputs(value=D("-1005.00"))).amount == D("-5.03")

    def test_floor_limits_a_negative_percentage(self):
        dep = rule(
            id="dep", kind="percentage", measure="new_deposits", rate="0.005", allow_negative=True, floor=5
        )
        line = evaluate(dep, RuleInputs(value=D("-1005.00")))
        assert (line.computed, line.amount, line.limited_by) == (D("-5.03"), D("-5.00"), "floor")


BRACKETS = [{"from": 0, "to": 1000000, "rate": "0.001"}, {"from": 1000000, "rate": "0.002"}]


class TestTiered:
    @pytest.mark.parametrize(
        ("value", "marginal", "whole"),
        [
            # 1 000 000 × 0.1 % + 500 000 × 0.2 % = 1 000 + 1 000 = 2 000; whole: 1 500 000 × 0.2 % = 3 000.
            ("1500000.00", "2000.00", "3000.00"),
            # At the bound the second bracket is reached: whole 1 000 000 × 0.2 % = 2 000.
            ("1000000.00", "1000.00", "2000.00"),
            ("800000.00", "800.00", "800.00"),
            ("0.00", "0.00", "0.00"),
            ("-5000.00", "0.00", "0.00"),
        ],
    )
    def test_marginal_and_whole_on_the_same_input(self, value, marginal, whole):
        inputs = RuleInputs(value=D(value))
        by_slice = rule(id="t", kind="tiered", mode="marginal", measure="new_deposits", brackets=BRACKETS)
        accelerator = rule(id="t", kind="tiered", mode="whole", measure="new_deposits", brackets=BRACKETS)
        assert evaluate(by_slice, inputs).amount == D(marginal)
        assert evaluate(accelerator, inputs).amount == D(whole)

    def test_explanations_show_each_slice(self):
        inputs = RuleInputs(value=D("1500000.00"))
        by_slice = rule(id="t", kind="tiered", mode="marginal", measure="new_deposits", brackets=BRACKETS)
        accelerator = rule(id="t", kind="tiered", mode="whole", measure="new_deposits", brackets=BRACKETS)
        assert evaluate(by_slice, inputs).explanation == (
            "new deposits (daily average) 1500000.00 by slices: "
            "1000000.00 × 0.1% + 500000.00 × 0.2% = 1000.00 + 1000.00 = 2000.00"
        )
        assert evaluate(accelerator, inputs).explanation_zh == (
            "新增日均 1500000.00 达到 1000000.00 起的档位，全额按该档计：1500000.00 × 0.2% = 3000.00"
        )
        assert evaluate(by_slice, inputs).formula == "Σ slice × bracket rate"

    def test_counts_at_money_per_unit(self):
        # 60 accounts: marginal 50 × 10 + 10 × 15 = 650; whole 60 × 15 = 900.
        brackets = [{"from": 0, "to": 50, "rate": 10}, {"from": 50, "rate": 15}]
        for mode, expected in (("marginal", "650.00"), ("whole", "900.00")):
            tiers = rule(id="t", kind="tiered", mode=mode, measure="accounts_opened", brackets=brackets)
            line = evaluate(tiers, RuleInputs(value=D(60)))
            assert line.amount == D(expected)
        assert (
            "50 × 10.00 + 10 × 15.00"
            in evaluate(
                rule(id="t", kind="tiered", mode="marginal", measure="accounts_opened", brackets=brackets),
                RuleInputs(value=D(60)),
            ).explanation
        )

    def test_first_bracket_above_zero(self):
        # Nothing below 100 000; at exactly 100 000 whole mode has reached the bracket, marginal has no slice.
        brackets = [{"from": 100000, "rate": "0.01"}]
        whole = rule(id="t", kind="tiered", mode="whole", measure="new_deposits", brackets=brackets)
        marginal = rule(id="t", kind="tiered", mode="marginal", measure="new_deposits", brackets=brackets)
        assert evaluate(whole, RuleInputs(value=D("100000.00"))).amount == D("1000.00")
        assert evaluate(marginal, RuleInputs(value=D("100000.00"))).amount == D("0.00")
        assert evaluate(whole, RuleInputs(value=D("99999.99"))).amount == D("0.00")
        assert evaluate(marginal, RuleInputs(value=D("150000.00"))).amount == D("500.00")


BONUS = {
    "id": "bonus",
    "kind": "attainment_bonus",
    "measure": "new_deposits",
    "thresholds": [{"at": "1.0", "amount": 500}, {"at": "1.2", "amount": 800}],
}


class TestAttainmentBonus:
    @pytest.mark.parametrize(
        ("value", "bonus"),
        [
            ("1199000.00", "500.00"),  # 119.9 %
            ("1199999.99", "500.00"),  # 119.999999 %: still below 120 %
            ("1200000.00", "800.00"),  # 120 %
            ("1500000.00", "800.00"),
            ("1000000.00", "500.00"),  # 100 %
            ("999999.99", "0.00"),
            ("-10.00", "0.00"),
        ],
    )
    def test_highest_threshold_reached(self, value, bonus):
        line = evaluate(parse_rule(BONUS), RuleInputs(value=D(value), target=D("1000000")))
        assert line.amount == D(bonus)

    def test_explanation_shows_attainment(self):
        bonus = parse_rule(BONUS)
        line = evaluate(bonus, RuleInputs(value=D("1199000.00"), target=D("1000000")))
        assert line.explanation == (
            "attainment of new deposits (daily average) 1199000.00 / 1000000.00 = 119.9% ≥ 100% → 500.00"
        )
        assert line.explanation_zh == "新增日均完成率 1199000.00 / 1000000.00 = 119.9% ≥ 100% → 奖励 500.00"
        # Displayed attainment is cut, not rounded, so it never shows a threshold that was missed.
        nearly = evaluate(bonus, RuleInputs(value=D("1199999.99"), target=D("1000000")))
        assert "= 119.99% ≥ 100%" in nearly.explanation

    @pytest.mark.parametrize("target", [None, D(0)])
    def test_no_target_no_bonus(self, target):
        line = evaluate(parse_rule(BONUS), RuleInputs(value=D("5000000.00"), target=target))
        assert line.amount == D("0.00")
        assert "no target" in line.explanation
        assert "无任务指标" in line.explanation_zh

    def test_thresholds_may_be_written_as_percentages(self):
        parsed = parse_rule(
            BONUS | {"thresholds": [{"at": "100%", "amount": 500}, {"at": "120%", "amount": 800}]}
        )
        assert parsed.thresholds == parse_rule(BONUS).thresholds


class TestPenalty:
    def test_minus_rate_per_overdue_task(self):
        late = rule(id="late", kind="penalty", measure="tasks_overdue", rate=20)
        line = evaluate(late, RuleInputs(value=D(3)))
        assert line.amount == D("-60.00")
        assert line.explanation == "tasks overdue 3 × -20.00 = -60.00"
        assert line.explanation_zh == "逾期任务数 3 × -20.00 = -60.00"
        assert line.formula == "−rate × count"

    def test_nothing_overdue_deducts_nothing(self):
        late = rule(id="late", kind="penalty", measure="tasks_overdue", rate=20)
        assert str(evaluate(late, RuleInputs(value=D(0))).amount) == "0.00"

    def test_floor_limits_what_is_deducted(self):
        # 4 × −20 = −80, but at most 50 is deducted.
        late = rule(id="late", kind="penalty", measure="tasks_overdue", rate=20, floor=50)
        line = evaluate(late, RuleInputs(value=D(4)))
        assert (line.computed, line.amount, line.limited_by) == (D("-80.00"), D("-50.00"), "floor")
        assert (
            line.explanation
            == "tasks overdue 4 × -20.00 = -80.00, limited to -50.00 (at most 50.00 deducted)"
        )
        assert line.explanation_zh == "逾期任务数 4 × -20.00 = -80.00，最多扣减 50.00，计 -50.00"
        # A floor above the deduction changes nothing.
        assert evaluate(late, RuleInputs(value=D(2))).amount == D("-40.00")

    def test_cap_does_not_touch_a_penalty(self):
        late = rule(id="late", kind="penalty", measure="tasks_overdue", rate=20, cap=10)
        assert evaluate(late, RuleInputs(value=D(3))).amount == D("-60.00")

    @pytest.mark.parametrize(
        ("value", "target", "amount"),
        [
            ("799999.99", "1000000", "-300.00"),  # 79.99 % < 80 %
            ("800000.00", "1000000", "0.00"),  # 80 % is not below 80 %
            ("0.00", "1000000", "-300.00"),
            ("0.00", None, "0.00"),  # no target: no attainment penalty
        ],
    )
    def test_fixed_amount_below_an_attainment(self, value, target, amount):
        low = rule(id="low", kind="penalty", measure="new_deposits", below="0.8", amount=300)
        line = evaluate(low, RuleInputs(value=D(value), target=None if target is None else D(target)))
        assert line.amount == D(amount)
        assert low.fixed_penalty == D("300.00")

    def test_fixed_penalty_explanation(self):
        low = rule(id="low", kind="penalty", measure="new_deposits", below="0.8", amount=300)
        line = evaluate(low, RuleInputs(value=D("700000.00"), target=D("1000000")))
        assert line.explanation == (
            "attainment of new deposits (daily average) 700000.00 / 1000000.00 = 70% < 80% → -300.00"
        )
        assert line.explanation_zh == "新增日均完成率 700000.00 / 1000000.00 = 70% < 80% → 扣罚 300.00"


class TestBountyAndPool:
    def test_sole_winner_takes_the_bounty(self):
        win = rule(id="win", kind="bounty", amount=5000)
        line = evaluate(win, RuleInputs())
        assert line.amount == D("5000.00")
        assert line.explanation == "bounty 5000.00 × 100% = 5000.00"

    def test_posted_amount_overrides_the_rules(self):
        win = rule(id="win", kind="bounty", amount=5000)
        assert evaluate(win, RuleInputs(amount=D("8000.00"), share=D("0.5"))).amount == D("4000.00")

    def test_three_winners_split_exactly(self):
        win = rule(id="win", kind="bounty", amount=10000)
        lines = evaluate_group(win, {s: RuleInputs(share=D(1)) for s in ("S3", "S1", "S2")})
        assert {s: line.amount for s, line in lines.items()} == {
            "S1": D("3333.34"),
            "S2": D("3333.33"),
            "S3": D("3333.33"),
        }
        assert lines["S1"].explanation.startswith("bounty 10000.00 × share 1 / 3 = 3333.34")
        assert "largest remainder" in lines["S1"].explanation

    def test_winners_must_agree_on_the_amount(self):
        win = rule(id="win", kind="bounty")
        with pytest.raises(ValueError, match="different amounts"):
            evaluate_group(win, {"S1": RuleInputs(amount=D(100)), "S2": RuleInputs(amount=D(200))})
        with pytest.raises(ValueError, match="no amount"):
            evaluate(win, RuleInputs())

    def test_pool_by_score(self):
        # 10 000 by 90 : 80 : 85 (sum 255): 3529.411…, 3137.254…, 3333.333…; floors sum 9999.99 and the
        # fen left goes to the largest remainder (S2, .49 fen).
        pool = rule(id="pool", kind="pool", amount=10000)
        scores = {"S1": RuleInputs(value=D(90)), "S2": RuleInputs(value=D(80)), "S3": RuleInputs(value=D(85))}
        lines = evaluate_group(pool, scores)
        assert {s: line.amount for s, line in lines.items()} == {
            "S1": D("3529.41"),
            "S2": D("3137.26"),
            "S3": D("3333.33"),
        }
        assert pool.pool_amount == D("10000.00")
        assert lines["S3"].explanation_zh.startswith("奖励池 10000.00 × 综合考核得分 85 / 255 = 3333.33")

    def test_pool_with_a_cap(self):
        pool = rule(id="pool", kind="pool", amount=1000, cap=600)
        lines = evaluate_group(pool, {"S1": RuleInputs(value=D(3)), "S2": RuleInputs(value=D(1))})
        assert (lines["S1"].amount, lines["S2"].amount) == (D("600.00"), D("250.00"))

    def test_pool_needs_everyone(self):
        with pytest.raises(ValueError, match="evaluate_group"):
            evaluate(rule(id="pool", kind="pool", amount=1000), RuleInputs(value=D(1)))

    def test_pool_shares_and_split_by_shares(self):
        assert pool_shares(D("100.00"), {"S1": D(0), "S2": D(0)}) == {"S1": D("0.00"), "S2": D("0.00")}
        assert pool_shares(D("100.00"), {"S2": D(1), "S1": D(1), "S3": D(1)})["S1"] == D("33.34")
        assert split_by_shares(D("1000.00"), [("S1", D("0.5")), ("S2", D("0.5"))]) == {
            "S1": D("500.00"),
            "S2": D("500.00"),
        }
        assert split_by_shares(D("0.01"), [("S2", D("0.5")), ("S1", D("0.5"))]) == {
            "S1": D("0.01"),
            "S2": D("0.00"),
        }
        with pytest.raises(ValueError, match="sum to 0"):
            split_by_shares(D("1.00"), [("S1", D(0))])
        with pytest.raises(ValueError, match="negative"):
            pool_shares(D("1.00"), {"S1": D(-1)})


class TestOtherKindsEvaluateOneByOne:
    def test_evaluate_group_of_a_piece_rate(self):
        acc = rule(id="acc", kind="piece_rate", measure="accounts_opened", rate=20)
        lines = evaluate_group(acc, {"S2": RuleInputs(value=D(1)), "S1": RuleInputs(value=D(2))})
        assert list(lines) == ["S1", "S2"]
        assert [line.amount for line in lines.values()] == [D("40.00"), D("20.00")]


# ---------------------------------------------------------------------------------------------
# Statements: budget scaling and totals
# ---------------------------------------------------------------------------------------------


def statement_line(staff_no, campaign, parsed_rule, **inputs):
    return StatementLine(staff_no, campaign, evaluate(parsed_rule, RuleInputs(**inputs)))


class TestComputeStatement:
    def lines(self):
        dep = rule(id="dep", kind="piece_rate", measure="accounts_opened", rate=100)
        late = rule(id="late", kind="penalty", measure="tasks_overdue", rate=20)
        acc = rule(id="acc", kind="piece_rate", measure="accounts_opened", rate=20)
        return [
            statement_line("S3", "DEP", dep, value=D(4)),  # 400.00
            statement_line("S1", "DEP", dep, value=D(4)),  # 400.00
            statement_line("S2", "DEP", dep, value=D(4)),  # 400.00
            statement_line("S1", "DEP", late, value=D(3)),  # −60.00
            statement_line("S1", "ACC", acc, value=D(7)),  # 140.00, campaign without budget
        ]

    def test_budget_scaling_with_a_fen_left_over(self):
        # DEP's positive lines sum to 1200.00 > 1000.00 left: each 400 × 1000/1200 = 333.333…; floors
        # 999.99, the fen left goes to S1 (equal remainders, lower staff_no). The penalty is not scaled.
        result = compute_statement(self.lines(), {"DEP": D("1000.00")})
        amounts = {sl.key: sl.line.amount for sl in result.lines}
        assert amounts == {
            ("S1", "ACC", "acc"): D("140.00"),
            ("S1", "DEP", "dep"): D("333.34"),
            ("S1", "DEP", "late"): D("-60.00"),
            ("S2", "DEP", "dep"): D("333.33"),
            ("S3", "DEP", "dep"): D("333.33"),
        }
        assert result.totals == {"S1": D("413.34"), "S2": D("333.33"), "S3": D("333.33")}
        assert result.campaign_totals == {"ACC": D("140.00"), "DEP": D("940.00")}
        assert set(result.scaled) == {"DEP"}
        s1 = next(sl.line for sl in result.lines if sl.key == ("S1", "DEP", "dep"))
        s2 = next(sl.line for sl in result.lines if sl.key == ("S2", "DEP", "dep"))
        assert s1.budget_scaled_from == D("400.00")
        assert "scaled: 400.00 × 1000.00 / 1200.00 → 333.34 (rounded down, plus one fen" in s1.explanation
        assert s2.explanation.endswith("scaled: 400.00 × 1000.00 / 1200.00 → 333.33")
        assert "按比例缩放" in s1.explanation_zh

    def test_budget_not_reached_changes_nothing(self):
        result = compute_statement(self.lines(), {"DEP": D("1200.00"), "ACC": None})
        assert result.totals == {"S1": D("480.00"), "S2": D("400.00"), "S3": D("400.00")}
        assert result.scaled == {}
        assert all(sl.line.budget_scaled_from is None for sl in result.lines)

    def test_budget_spent_pays_no_more(self):
        result = compute_statement(self.lines(), {"DEP": D("-5.00")})
        assert result.totals == {"S1": D("80.00"), "S2": D("0.00"), "S3": D("0.00")}

    def test_same_result_in_any_order(self):
        lines = self.lines()
        forward = compute_statement(lines, {"DEP": D("1000.00")})
        backward = compute_statement(list(reversed(lines)), {"DEP": D("1000.00")})
        assert forward == backward
        assert [sl.key for sl in forward.lines] == sorted(sl.key for sl in forward.lines)
        assert forward.lines_of("S2") == tuple(sl for sl in forward.lines if sl.staff_no == "S2")

    def test_refuses_duplicates_and_unrounded_lines(self):
        lines = self.lines()
        with pytest.raises(ValueError, match="two lines"):
            compute_statement([*lines, lines[0]])
        odd = Line(
            "x", RuleKind.PIECE_RATE, "accounts_opened", D(1), None, D("1.005"), D("1.005"), "", "", ""
        )
        with pytest.raises(ValueError, match="not rounded"):
            compute_statement([StatementLine("S1", "DEP", odd)])


# ---------------------------------------------------------------------------------------------
# Parsing: bad rules are refused with every problem listed
# ---------------------------------------------------------------------------------------------


class TestParseErrors:
    def test_every_problem_at_once_with_path_expected_found(self):
        problems = errors_of(
            {
                "id": "bad id!",
                "kind": "tiered",
                "measure": "deposits",
                "mode": "both",
                "brackets": [{"from": 0, "to": 10, "rate": "a"}, {"from": 20, "rate": 1}],
                "capp": 3,
                "floor": "-5",
            },
            path="rules[2]",
        )
        assert set(problems) == {
            "rules[2].id",
            "rules[2].measure",
            "rules[2].mode",
            "rules[2].brackets[0].rate",
            "rules[2].brackets[1].from",
            "rules[2].capp",
            "rules[2].floor",
        }
        assert problems["rules[2].mode"] == ("marginal or whole", "'both'")
        assert problems["rules[2].measure"][1] == "'deposits'"
        assert "new_deposits" in problems["rules[2].measure"][0]
        assert problems["rules[2].brackets[1].from"][1] == "20"
        assert "gaps" in problems["rules[2].brackets[1].from"][0]
        assert "allowed: id, kind, measure, cap, floor, mode, brackets" in problems["rules[2].capp"][0]
        assert problems["rules[2].floor"] == ("an amount with at most two decimals of at least 0", "'-5'")

    def test_message_names_path_expected_and_found(self):
        with pytest.raises(RuleErrors) as caught:
            parse_rule({"id": "acc", "kind": "piece_rate", "measure": "accounts_opened", "rate": "twenty"})
        assert caught.value.to_list() == [
            {"path": "rules[0].rate", "expected": caught.value.errors[0].expected, "found": "'twenty'"}
        ]
        assert str(caught.value.errors[0]).startswith("rules[0].rate: expected a decimal number")
        assert str(caught.value.errors[0]).endswith("found 'twenty'")
        assert str(caught.value).startswith("1 problem in rules:")

    def test_missing_keys_are_found_as_nothing(self):
        assert errors_of({}) == {
            "rules[0].id": ("an id of letters, digits, '_', '.' or '-' (at most 64)", "nothing"),
            "rules[0].kind": (
                "one of piece_rate, percentage, tiered, attainment_bonus, penalty, bounty, pool",
                "nothing",
            ),
            "rules[0].measure": (errors_of({})["rules[0].measure"][0], "nothing"),
        }

    def test_binary_fractions_are_refused(self):
        problems = errors_of({"id": "dep", "kind": "percentage", "measure": "new_deposits", "rate": 0.002})
        expected, found = problems["rules[0].rate"]
        assert found.startswith("0.002")
        assert "binary fractions are not accepted" in expected

    def test_kind_specific_problems(self):
        assert set(errors_of({"id": "p", "kind": "penalty", "measure": "tasks_overdue"})) == {"rules[0].rate"}
        assert set(
            errors_of({"id": "p", "kind": "penalty", "measure": "new_deposits", "rate": 20, "below": "0.8"})
        ) == {"rules[0]"}
        assert set(errors_of({"id": "p", "kind": "penalty", "measure": "new_deposits", "below": "0.8"})) == {
            "rules[0].amount"
        }
        assert set(errors_of({"id": "p", "kind": "penalty", "measure": "tasks_overdue", "rate": -20})) == {
            "rules[0].rate"
        }
        assert set(
            errors_of(
                {
                    "id": "b",
                    "kind": "attainment_bonus",
                    "measure": "new_deposits",
                    "thresholds": [{"at": "1.2", "amount": 800}, {"at": "1.0", "amount": "5.001"}],
                }
            )
        ) == {"rules[0].thresholds[1].at", "rules[0].thresholds[1].amount"}
        assert set(errors_of({"id": "b", "kind": "attainment_bonus", "measure": "new_deposits"})) == {
            "rules[0].thresholds"
        }
        assert set(
            errors_of(
                {
                    "id": "t",
                    "kind": "tiered",
                    "mode": "whole",
                    "measure": "new_deposits",
                    "brackets": [{"from": 0, "rate": 1}, {"from": 10, "to": 5, "rate": 2}],
                }
            )
        ) == {"rules[0].brackets[0].to", "rules[0].brackets[1].to"}
        assert set(
            errors_of(
                {
                    "id": "d",
                    "kind": "percentage",
                    "measure": "new_deposits",
                    "rate": 1,
                    "allow_negative": "yes",
                }
            )
        ) == {"rules[0].allow_negative"}
        assert set(errors_of({"id": "pool", "kind": "pool"})) == {"rules[0].amount"}
        assert set(
            errors_of(
                {"id": "a", "kind": "piece_rate", "measure": "accounts_opened", "rate": 1, "mode": "whole"}
            )
        ) == {"rules[0].mode"}

    def test_not_a_mapping(self):
        assert errors_of(["id", "acc"]) == {
            "rules[0]": ("a mapping with id, kind, measure and the kind's settings", "a list")
        }

    def test_parse_rules_collects_across_rules_and_refuses_duplicate_ids(self):
        with pytest.raises(RuleErrors) as caught:
            parse_rules(
                [
                    {"id": "acc", "kind": "piece_rate", "measure": "accounts_opened", "rate": 20},
                    {"id": "acc", "kind": "piece_rate", "measure": "accounts_opened", "rate": 30},
                    {"id": "x", "kind": "nonsense"},
                ]
            )
        paths = [e.path for e in caught.value.errors]
        assert paths == ["rules[1].id", "rules[2].kind", "rules[2].measure"]
        assert "already used at rules[0]" in caught.value.errors[0].expected
        with pytest.raises(RuleErrors):
            parse_rules({"id": "acc"})


PRODUCT_YAML = """
rules:
  - {id: dep, kind: percentage, measure: new_deposits, rate: 0.002, cap: 5000}
  - {id: acc, kind: piece_rate, measure: accounts_opened, rate: 20}
  - {id: dep-tiers, kind: tiered, mode: marginal, measure: new_deposits,
     brackets: [{from: 0, to: 1000000, rate: 0.001}, {from: 1000000, rate: 0.002}]}
  - {id: bonus, kind: attainment_bonus, measure: new_deposits,
     thresholds: [{at: 1.0, amount: 500}, {at: 1.2, amount: 800}]}
  - {id: late, kind: penalty, measure: tasks_overdue, rate: 20}
"""


class DecimalLoader(yaml.SafeLoader):
    """A YAML loader that reads decimal numbers as Decimal, exactly as written."""


DecimalLoader.add_constructor(
    "tag:yaml.org,2002:float", lambda loader, node: Decimal(loader.construct_scalar(node))
)


class TestCampaignYaml:
    def test_the_product_example_parses(self):
        rules = parse_rules(yaml.load(PRODUCT_YAML, Loader=DecimalLoader)["rules"])
        assert [r.id for r in rules] == ["dep", "acc", "dep-tiers", "bonus", "late"]
        dep, acc, tiers, bonus, late = rules
        assert (dep.rate, dep.cap) == (D("0.002"), D("5000.00"))
        assert tiers.mode is TierMode.MARGINAL
        assert [(b.lower, b.upper, b.rate) for b in tiers.brackets] == [
            (0, 1000000, D("0.001")),
            (1000000, None, D("0.002")),
        ]
        assert [(t.at, t.amount) for t in bonus.thresholds] == [
            (D("1.0"), D("500.00")),
            (D("1.2"), D("800.00")),
        ]
        assert late.rate == 20

    def test_rules_round_trip_through_to_dict(self):
        for parsed in parse_rules(yaml.load(PRODUCT_YAML, Loader=DecimalLoader)["rules"]):
            assert parse_rule(parsed.to_dict()) == parsed
        low = rule(id="low", kind="penalty", measure="new_deposits", below="0.8", amount=300, floor=300)
        assert parse_rule(low.to_dict()) == low
        neg = rule(id="n", kind="percentage", measure="new_deposits", rate="0.01", allow_negative=True)
        assert parse_rule(neg.to_dict()) == neg

    def test_plain_yaml_floats_are_refused_loudly(self):
        with pytest.raises(RuleErrors) as caught:
            parse_rules(yaml.safe_load(PRODUCT_YAML)["rules"])
        assert "rules[0].rate" in [e.path for e in caught.value.errors]


class TestMeasures:
    def test_the_product_measures_are_known(self):
        assert {
            "accounts_opened",
            "payroll_accounts",
            "agreements_signed",
            "digital_activations",
            "referrals",
            "new_deposits",
            "payroll_volume",
            "follow_ups_logged",
            "tasks_done",
            "tasks_overdue",
            "complaints",
            "training_missed",
        } <= set(MEASURES)

    def test_a_deployment_adds_its_own(self):
        name = "insurance_sold_test"
        try:
            with pytest.raises(RuleErrors):
                rule(id="ins", kind="piece_rate", measure=name, rate=5)
            register_measure(name, "count", "insurance policies sold", "保险销售件数")
            register_measure(name, "count", "insurance policies sold", "保险销售件数")  # idempotent
            line = evaluate(rule(id="ins", kind="piece_rate", measure=name, rate=5), RuleInputs(value=D(3)))
            assert line.explanation_zh == "保险销售件数 3 × 5.00 = 15.00"
            with pytest.raises(ValueError, match="already registered"):
                register_measure(name, "sum")
            with pytest.raises(ValueError, match="lower-case"):
                register_measure("Bad Name")
        finally:
            MEASURES.pop(name, None)


class TestLine:
    def test_to_dict_is_json_with_amounts_as_text(self):
        dep = rule(id="dep", kind="percentage", measure="new_deposits", rate="0.0015", cap=1200)
        data = evaluate(dep, RuleInputs(value=D("1248300.00"), target=D("2000000"))).to_dict()
        assert json.loads(json.dumps(data))["amount"] == "1200.00"
        assert data["computed"] == "1872.45"
        assert data["target"] == "2000000"

    def test_inputs_refuse_binary_fractions(self):
        with pytest.raises(TypeError):
            RuleInputs(value=1.5)


class TestPurity:
    def test_no_binary_fractions_in_the_money_code(self):
        for name in ("money.py", "rules.py"):
            assert "float" not in (APPRAISAL / name).read_text(encoding="utf-8").lower(), name

    def test_imports_neither_flask_nor_the_database(self):
        code = (
            "import sys, appraisal.rules, appraisal.money; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('flask', 'sqlalchemy', 'celery')]; "
            "assert not bad, bad"
        )
        subprocess.run([sys.executable, "-c", code], check=True, cwd=APPRAISAL.parent)

    def test_fen(self):
        assert D("0.01") == FEN


def test_a_share_of_a_branch_target_shows_rounded_in_the_explanation():
    """8 000 000 split over 7 managers is shown as ≈1142857.14, not 40 digits; the figure is exact."""
    rule = parse_rule(
        {
            "id": "bonus",
            "kind": "attainment_bonus",
            "measure": "new_deposits",
            "thresholds": [{"at": "1.0", "amount": "500"}],
        }
    )
    target = Decimal("8000000") / Decimal("7")
    line = evaluate(rule, RuleInputs(value=Decimal("1142857.15"), target=target))
    assert "≈1142857.14" in line.explanation and "142857142857" not in line.explanation
    assert line.amount == Decimal("500.00")  # 1142857.15 ≥ 8000000/7 exactly
