"""Properties of the reward arithmetic that must hold for any input (PRODUCT.md §6, RELIABILITY LED-03/04)."""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from appraisal.money import FEN, allocate_largest_remainder, scale_to_budget, to_fen
from appraisal.rules import (
    RuleInputs,
    StatementLine,
    compute_statement,
    evaluate,
    evaluate_group,
    parse_rule,
)

MANY = settings(max_examples=1000, deadline=None)
SOME = settings(max_examples=300, deadline=None)

staff_nos = st.sampled_from([f"S{n:04d}" for n in range(1, 13)])
fen_amounts = st.decimals(min_value=Decimal("-50000"), max_value=Decimal("50000"), places=2)
positive_fen = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("50000"), places=2)
weights = st.decimals(min_value=Decimal(0), max_value=Decimal("1000"), places=3)


def is_rounded(amount: Decimal) -> bool:
    """A figure on a statement has exactly two decimals."""
    return amount.as_tuple().exponent == -2


@st.composite
def weighted_keys(draw, min_size=1):
    keys = draw(st.lists(staff_nos, min_size=min_size, unique=True))
    pairs = [(key, draw(weights)) for key in keys]
    if all(weight == 0 for _key, weight in pairs):
        pairs[0] = (pairs[0][0], Decimal(1))
    return pairs


def shuffled(draw, items):
    return draw(st.permutations(items))


@MANY
@given(total=fen_amounts, pairs=weighted_keys(), data=st.data())
def test_allocation_sums_exactly_and_stays_within_a_fen(total, pairs, data):
    parts = allocate_largest_remainder(total, pairs)
    assert sum(parts.values()) == total
    assert all(is_rounded(part) for part in parts.values())
    weight_sum = sum(Fraction(weight) for _key, weight in pairs)
    for key, weight in pairs:
        exact = Fraction(total) * Fraction(weight) / weight_sum
        # Each part is its exact share rounded down, plus at most the one leftover fen.
        assert abs(Fraction(parts[key]) - exact) < Fraction(1, 100)
        if weight == 0:
            assert parts[key] == 0
    assert allocate_largest_remainder(total, shuffled(data.draw, pairs)) == parts
    assert list(allocate_largest_remainder(total, shuffled(data.draw, pairs))) == sorted(parts)


@MANY
@given(
    lines=st.lists(st.tuples(staff_nos, fen_amounts), min_size=1, unique_by=lambda pair: pair[0]),
    budget=st.decimals(min_value=Decimal(0), max_value=Decimal("200000"), places=2),
    data=st.data(),
)
def test_budget_scaling_sums_to_the_budget_and_never_raises_a_line(lines, budget, data):
    scaled = scale_to_budget(lines, budget)
    original = dict(lines)
    positive_sum = sum((amount for amount in original.values() if amount > 0), Decimal(0))
    assert set(scaled) == set(original)
    for key, amount in original.items():
        assert is_rounded(scaled[key]) or scaled[key] == amount
        assert scaled[key] <= amount  # never raised
        if amount <= 0:
            assert scaled[key] == amount  # penalties and zero lines are never scaled
        else:
            assert scaled[key] >= 0
    new_positive_sum = sum((scaled[key] for key, amount in original.items() if amount > 0), Decimal(0))
    if positive_sum > budget:
        assert new_positive_sum == budget
    else:
        assert scaled == original
    assert scale_to_budget(shuffled(data.draw, lines), budget) == scaled


@MANY
@given(amount=st.decimals(min_value=Decimal("-1e9"), max_value=Decimal("1e9"), places=6))
def test_rounding_is_to_the_fen_and_half_up(amount):
    rounded = to_fen(amount)
    assert is_rounded(rounded)
    assert abs(rounded - amount) <= FEN / 2
    # Half a fen goes away from zero.
    if abs(rounded - amount) == FEN / 2:
        assert abs(rounded) > abs(amount)


RULES = [
    parse_rule({"id": "acc", "kind": "piece_rate", "measure": "accounts_opened", "rate": "20", "cap": "500"}),
    parse_rule({"id": "dep", "kind": "percentage", "measure": "new_deposits", "rate": "0.0015", "cap": 1200}),
    parse_rule(
        {
            "id": "neg",
            "kind": "percentage",
            "measure": "new_deposits",
            "rate": "0.00333",
            "allow_negative": True,
            "floor": 800,
        }
    ),
    parse_rule(
        {
            "id": "tiers",
            "kind": "tiered",
            "mode": "marginal",
            "measure": "new_deposits",
            "brackets": [{"from": 0, "to": 1000000, "rate": "0.0011"}, {"from": 1000000, "rate": "0.0023"}],
        }
    ),
    parse_rule(
        {
            "id": "accel",
            "kind": "tiered",
            "mode": "whole",
            "measure": "new_deposits",
            "brackets": [{"from": 0, "to": 1000000, "rate": "0.0011"}, {"from": 1000000, "rate": "0.0023"}],
        }
    ),
    parse_rule(
        {
            "id": "bonus",
            "kind": "attainment_bonus",
            "measure": "new_deposits",
            "thresholds": [{"at": 1, "amount": 500}, {"at": "1.2", "amount": 800}],
        }
    ),
    parse_rule({"id": "late", "kind": "penalty", "measure": "tasks_overdue", "rate": "20", "floor": 100}),
    parse_rule({"id": "low", "kind": "penalty", "measure": "new_deposits", "below": "0.8", "amount": 300}),
]

measure_values = st.decimals(min_value=Decimal("-3000000"), max_value=Decimal("3000000"), places=2)
targets = st.none() | st.decimals(min_value=Decimal(0), max_value=Decimal("3000000"), places=2)


@MANY
@given(rule=st.sampled_from(RULES), value=measure_values, target=targets)
def test_every_line_is_rounded_capped_and_floored(rule, value, target):
    line = evaluate(rule, RuleInputs(value=value, target=target))
    assert is_rounded(line.amount) and is_rounded(line.computed)
    if rule.cap is not None:
        assert line.amount <= rule.cap
    if rule.floor is not None:
        assert line.amount >= -rule.floor
    if rule.kind in ("penalty",):
        assert line.amount <= 0
    if rule.kind in ("piece_rate", "tiered", "attainment_bonus") or (
        rule.kind == "percentage" and not rule.allow_negative
    ):
        assert line.amount >= 0
    assert line.explanation and line.explanation_zh and line.formula
    assert evaluate(rule, RuleInputs(value=value, target=target)) == line


@SOME
@given(value=st.decimals(min_value=Decimal(0), max_value=Decimal("5000000"), places=2))
def test_marginal_never_pays_more_than_whole_with_rising_rates(value):
    marginal, whole = RULES[3], RULES[4]
    assert (
        evaluate(marginal, RuleInputs(value=value)).amount <= evaluate(whole, RuleInputs(value=value)).amount
    )


@SOME
@given(
    scores=st.dictionaries(staff_nos, st.integers(min_value=0, max_value=100), min_size=1),
    amount=positive_fen,
)
def test_pools_and_bounties_pay_out_exactly(scores, amount):
    pool = parse_rule({"id": "pool", "kind": "pool", "amount": amount})
    lines = evaluate_group(pool, {staff: RuleInputs(value=score) for staff, score in scores.items()})
    paid = sum(line.amount for line in lines.values())
    assert paid == (amount if any(scores.values()) else 0)
    if any(scores.values()):
        bounty = parse_rule({"id": "win", "kind": "bounty", "amount": amount})
        shares = {staff: RuleInputs(share=score) for staff, score in scores.items()}
        assert sum(line.amount for line in evaluate_group(bounty, shares).values()) == amount


@st.composite
def statement_inputs(draw):
    """Evaluated lines of random staff, campaigns and rules, with random budgets left."""
    campaigns = ["C1", "C2", "C3"]
    keys = draw(
        st.lists(
            st.tuples(staff_nos, st.sampled_from(campaigns), st.sampled_from(RULES)),
            min_size=1,
            max_size=40,
            unique_by=lambda key: (key[0], key[1], key[2].id),
        )
    )
    lines = [
        StatementLine(
            staff, campaign, evaluate(rule, RuleInputs(value=draw(measure_values), target=draw(targets)))
        )
        for staff, campaign, rule in keys
    ]
    budgets = {
        campaign: draw(st.none() | st.decimals(min_value=Decimal(-100), max_value=Decimal("20000"), places=2))
        for campaign in campaigns
    }
    return lines, budgets


def digest(result) -> str:
    """SHA-256 of a run's result, the way a stored run would be fingerprinted."""
    rows = [
        [sl.staff_no, sl.campaign, sl.line.rule_id, str(sl.line.amount), sl.line.explanation]
        for sl in result.lines
    ]
    rows.append(sorted((staff, str(total)) for staff, total in result.totals.items()))
    return hashlib.sha256(json.dumps(rows, ensure_ascii=False).encode()).hexdigest()


@MANY
@given(generated=statement_inputs(), data=st.data())
def test_statement_totals_are_the_sum_of_lines_in_any_order(generated, data):
    lines, budgets = generated
    result = compute_statement(lines, budgets)
    for staff_no, total in result.totals.items():
        assert total == sum(sl.line.amount for sl in result.lines if sl.staff_no == staff_no)
        assert is_rounded(total)
    assert sum(result.totals.values()) == sum(result.campaign_totals.values())
    for campaign, budget in budgets.items():
        positive = [sl.line.amount for sl in result.lines if sl.campaign == campaign and sl.line.amount > 0]
        if budget is not None:
            assert sum(positive, Decimal(0)) <= max(budget, Decimal(0))
    # Penalties are never scaled, and no line is raised by the budget.
    before = {sl.key: sl.line.amount for sl in lines}
    for sl in result.lines:
        assert sl.line.amount <= before[sl.key]
        if before[sl.key] <= 0:
            assert sl.line.amount == before[sl.key]
    again = compute_statement(shuffled(data.draw, lines), dict(reversed(list(budgets.items()))))
    assert again == result
    assert digest(again) == digest(result)
