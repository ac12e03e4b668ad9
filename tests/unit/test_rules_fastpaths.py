"""The incentive run's fast paths give exactly what the plain definitions give (no DB)."""

from __future__ import annotations

import random
from dataclasses import replace
from decimal import Decimal
from fractions import Fraction

import pytest

from appraisal.money import _fen_count, _from_fen, allocate_largest_remainder, sum_fen, to_fen
from appraisal.rules import Line, RuleKind, _money, _sum_checked_fen
from appraisal.runs import _LINE_COLUMNS, _CopyStream, _Tail


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


def _line(i: int, explanation: str, amount: str = "-12.50") -> Line:
    return Line(
        rule_id=f"r{i}",
        kind=RuleKind.PIECE_RATE,
        measure="accounts_opened",
        value=Decimal("3"),
        target=None if i % 3 else Decimal("4.166666666666666666666666667"),
        computed=Decimal(amount),
        amount=Decimal(amount),
        formula="rate × count",
        explanation=explanation,
        explanation_zh="开户数 3 × 20.00 = 60.00",
        limited_by="cap" if i % 5 == 0 else None,
    )


@pytest.mark.parametrize("size", [1, 7, 100, 1 << 16, -1])
def test_copy_stream_round_trips_awkward_text(size: int) -> None:
    texts = ["tab\there, line\nbreak, back\\slash, cr\r end", "开户数 3 × 20.00 = 60.00", "\\N literally"]
    rows = [
        (
            f"S{i:03d}",
            "C1",
            f"r{i}",
            10 + i,
            3,
            None if i % 4 == 0 else 7,
            _Tail(_line(i, texts[i % 3]), 2, None),
        )
        for i in range(25)
    ]
    stream = _CopyStream(99, rows)
    parts = []
    while chunk := stream.read(size):
        parts.append(chunk)
        if size <= 0:
            break
    decoded = _parse_copy_text("".join(parts))
    assert len(decoded) == len(rows)
    for (_no, _code, _rule, sid, bid, cid, tail), fields in zip(rows, decoded, strict=True):
        by_col = dict(zip(_LINE_COLUMNS, fields, strict=True))
        assert by_col["run_id"] == "99" and by_col["staff_id"] == str(sid) and by_col["branch_id"] == str(bid)
        assert by_col["campaign_id"] == (None if cid is None else str(cid))
        assert by_col["explanation"] == tail.line.explanation
        assert by_col["explanation_zh"] == "开户数 3 × 20.00 = 60.00"
        assert by_col["amount"] == "-12.50" and by_col["input"] == "3.0000"
        assert by_col["target"] == (None if tail.line.target is None else "4.1667")
        assert by_col["limited_by"] == tail.line.limited_by and by_col["rule_version"] == "2"
        assert by_col["what_if"] is None and by_col["dispute_id"] is None


def test_summary_hash_is_the_json_of_the_lines() -> None:
    """The hash written piece by piece is SHA-256 of json.dumps of the canonical lines, as it always was."""
    import hashlib
    import json

    from appraisal.runs import _summarise

    rng = random.Random(11)
    texts = ['quote " and backslash \\', "开户数 3 × 20.00 = 60.00", "tab\t", "plain"]
    tails = [_Tail(_line(i, texts[i % 4], f"{rng.randrange(-5000, 90000) / 100:.2f}"), 1) for i in range(9)]
    rows = sorted(
        (
            f"S{rng.randrange(30):03d}",
            rng.choice(["C1", "C2", "~"]),
            f"k{i}",
            i % 7,
            1,
            None,
            rng.choice(tails),
        )
        for i in range(200)
    )
    branch_of = {i: f"B{i % 3}" for i in range(7)}
    by_branch, by_campaign, digest = _summarise(rows, branch_of)
    canon = [
        [
            no,
            code,
            t.line.rule_id,
            t.line.kind.value,
            t.line.measure,
            f"{t.line.value.quantize(Decimal('0.0001')):f}",
            f"{t.line.amount:.2f}",
            t.line.explanation,
        ]
        for no, code, _r, _s, _b, _c, t in rows
    ]
    assert digest == hashlib.sha256(json.dumps(canon, ensure_ascii=False).encode()).hexdigest()
    assert _summarise([], branch_of)[2] == hashlib.sha256(b"[]").hexdigest()
    assert sum(by_branch.values()) == sum(by_campaign.values()) == sum(r[6].amount for r in rows)
    for code in ("C1", "C2", "~"):
        assert by_campaign.get(code, 0) == sum((r[6].amount for r in rows if r[1] == code), Decimal(0))


def test_budget_scaling_is_what_compute_statement_gives() -> None:
    """``decide`` scales budget campaigns' lines in place; compute_statement is the definition (§6 step 4)."""
    from appraisal.rules import StatementLine, compute_statement
    from appraisal.runs import _scale_to_budgets

    rng = random.Random(12)
    for _ in range(150):
        codes = ["A", "B", "C"][: rng.randrange(1, 4)]
        shared = [
            _Tail(_line(j, f"shared {j}", f"{rng.randrange(-3000, 30000) / 100:.2f}"), 1) for j in range(4)
        ]
        by_code: dict[str, list] = {}
        for code in codes:
            for n in range(rng.randrange(0, 12)):
                for rule in ("r1", "r2"):
                    base = (
                        rng.choice(shared).line
                        if rng.random() < 0.5
                        else _line(n, f"own {n}", f"{rng.randrange(-3000, 30000) / 100:.2f}")
                    )
                    line = replace(base, rule_id=rule)
                    by_code.setdefault(code, []).append((f"S{n:02d}", code, rule, n, 1, None, _Tail(line, 1)))
        budgets = {
            code: rng.choice(
                [None, Decimal("0.00"), Decimal("-5.00"), Decimal(rng.randrange(0, 200000)) / 100]
            )
            for code in codes
        }
        reference = compute_statement(
            [StatementLine(r[0], r[1], r[6].line) for lines in by_code.values() for r in lines], budgets
        )
        scaled = _scale_to_budgets(by_code, budgets)
        got = {(r[0], r[1], r[2]): r[6].line for lines in by_code.values() for r in lines}
        want = {sl.key: sl.line for sl in reference.lines}
        assert got == want
        assert scaled == reference.scaled


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
            got = remembered.tail(value, target).line
            want = evaluate(rule, RuleInputs(value=value, target=target))
            assert got == want
            assert got.to_dict() == want.to_dict()
