"""The incentive run's fast paths give exactly what the plain definitions give (no DB)."""

from __future__ import annotations

import random
from decimal import Decimal
from fractions import Fraction

import pytest

from appraisal.money import _fen_count, _from_fen, allocate_largest_remainder, sum_fen, to_fen
from appraisal.rules import _money, _sum_checked_fen
from appraisal.runs import _LINE_COLUMNS, _CopyStream


def _reference_split(total: Decimal, weights: list[tuple[str, Decimal]]) -> dict[str, Decimal]:
    """Largest remainder with Fractions, as the rule of PRODUCT.md §6 reads."""
    fen_total = _fen_count(total, "total")
    exact = {key: Fraction(w) for key, w in weights}
    keys = sorted(exact)
    weight_sum = sum(exact.values(), Fraction(0))
    if weight_sum == 0:
        return {key: Decimal("0.00") for key in keys}
    sign, magnitude = (-1 if fen_total < 0 else 1), abs(fen_total)
    floors, remainders = {}, {}
    for key in keys:
        share = magnitude * exact[key] / weight_sum
        floors[key] = share.numerator // share.denominator
        remainders[key] = share - floors[key]
    for key in sorted(keys, key=lambda k: (-remainders[k], k))[: magnitude - sum(floors.values())]:
        floors[key] += 1
    return {key: _from_fen(sign * floors[key]) for key in keys}


def test_integer_split_equals_fraction_split() -> None:
    rng = random.Random(20261130)
    for _ in range(3000):
        weights = [
            (f"S{j:03d}", Decimal(rng.randrange(0, 10 ** rng.randrange(1, 9))).scaleb(-rng.randrange(0, 7)))
            for j in range(rng.randrange(1, 8))
        ]
        if rng.random() < 0.1:
            weights.append(("Z", Decimal("1E+3")))
        total = Decimal(rng.randrange(-(10**7), 10**7)).scaleb(-2)
        if sum(w for _, w in weights) == 0 and total != 0:
            continue
        got, want = allocate_largest_remainder(total, weights), _reference_split(total, weights)
        assert got == want
        assert [str(v) for v in got.values()] == [str(v) for v in want.values()]
        assert list(got) == list(want)


@pytest.mark.parametrize(
    "value", ["0", "0.00", "1.5", "12.345", "-0.004", "-5.025", "5.025", "1E+3", "123456789012.125"]
)
def test_fast_to_fen_and_money_text(value: str) -> None:
    number = Decimal(value)
    rounded_half_up = number.quantize(Decimal("0.01"), rounding="ROUND_HALF_UP")
    assert str(to_fen(number)) == str(rounded_half_up if rounded_half_up != 0 else Decimal("0.00"))
    rounded = number.quantize(Decimal("0.01"))
    shown = _money(number)
    if rounded == number:
        assert shown == f"{rounded:f}"
    else:
        assert Decimal(shown) == number


def test_statement_totals_equal_sum_fen() -> None:
    rng = random.Random(7)
    for _ in range(500):
        amounts = [Decimal(rng.randrange(-(10**6), 10**6)).scaleb(-2) for _ in range(rng.randrange(0, 30))]
        amounts += [Decimal("0.00"), Decimal("-0.00"), Decimal(5)]
        assert str(_sum_checked_fen(amounts)) == str(sum_fen(amounts))


def _parse_copy_text(text: str) -> list[list[str | None]]:
    """Decode PostgreSQL COPY text format (the escapes the stream writes)."""
    out = []
    for line in text.split("\n")[:-1]:
        fields: list[str | None] = []
        for raw in line.split("\t"):
            if raw == "\\N":
                fields.append(None)
                continue
            chars, i = [], 0
            while i < len(raw):
                if raw[i] == "\\":
                    chars.append({"t": "\t", "n": "\n", "r": "\r", "\\": "\\"}[raw[i + 1]])
                    i += 2
                else:
                    chars.append(raw[i])
                    i += 1
            fields.append("".join(chars))
        out.append(fields)
    return out


@pytest.mark.parametrize("size", [1, 7, 100, 1 << 16, -1])
def test_copy_stream_round_trips_awkward_text(size: int) -> None:
    rows = [
        {
            "run_id": 1,
            "staff_id": 10 + i,
            "rule_id": f"r{i}",
            "amount": Decimal("-12.50"),
            "input": Decimal("3.0000"),
            "explanation": "tab\there, line\nbreak, back\\slash, cr\r end"
            if i % 2
            else "开户数 3 × 20.00 = 60.00",
            "explanation_zh": None,
        }
        for i in range(25)
    ]
    stream = _CopyStream(rows)
    parts = []
    while chunk := stream.read(size):
        parts.append(chunk)
        if size <= 0:
            break
    decoded = _parse_copy_text("".join(parts))
    assert len(decoded) == len(rows)
    for row, fields in zip(rows, decoded, strict=True):
        by_col = dict(zip(_LINE_COLUMNS, fields, strict=True))
        assert by_col["explanation"] == row["explanation"]
        assert by_col["amount"] == "-12.50" and by_col["input"] == "3.0000"
        assert by_col["staff_id"] == str(row["staff_id"])
        assert by_col["explanation_zh"] is None and by_col["target"] is None


def test_remembered_evaluations_are_what_evaluate_gives() -> None:
    """``decide`` evaluates a rule once per distinct (value, target): every line is still evaluate's own."""
    from appraisal.rules import RuleInputs, evaluate, parse_rules
    from appraisal.runs import _Evaluations

    rules = parse_rules(
        [
            {"id": "acc", "kind": "piece_rate", "measure": "accounts_opened", "rate": "20", "cap": "3000"},
            {"id": "dep", "kind": "percentage", "measure": "new_deposits", "rate": "0.0015", "cap": "1200"},
            {
                "id": "vol",
                "kind": "tiered",
                "mode": "marginal",
                "measure": "payroll_volume",
                "brackets": [{"from": 0, "to": 100000, "rate": "0.001"}, {"from": 100000, "rate": "0.002"}],
            },
            {
                "id": "bonus",
                "kind": "attainment_bonus",
                "measure": "accounts_opened",
                "thresholds": [{"at": "1.0", "amount": "300"}, {"at": "1.2", "amount": "500"}],
            },
            {"id": "late", "kind": "penalty", "measure": "tasks_overdue", "rate": "20", "floor": "100"},
            {"id": "miss", "kind": "penalty", "measure": "payroll_accounts", "below": "0.5", "amount": "50"},
        ]
    )
    rng = random.Random(6)
    values = ["0", "0.00", "1", "1.0", "2", "2.00", "-3", "150000", "150000.00", "99999.99", "12.345"]
    targets = [None, "0", "5", "5.00", "5.000", "4.166666666666666666666666667", "250"]
    for rule in rules:
        remembered = _Evaluations(rule)
        for _ in range(300):
            value = Decimal(rng.choice(values))
            target = rng.choice(targets)
            target = None if target is None else Decimal(target)
            got = remembered.evaluate(value, target)
            want = evaluate(rule, RuleInputs(value=value, target=target))
            assert got == want
            assert got.to_dict() == want.to_dict()
