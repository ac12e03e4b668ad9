"""Reward rules: parse them, evaluate them into explained statement lines, apply campaign budgets.

This module is the pure heart of the incentive run (PRODUCT.md §6): no database, no Flask, money
in ``Decimal`` only. The incentive run gathers measures and targets per staff member, campaign
and rule, calls :func:`evaluate` (or :func:`evaluate_group` for bounties and pools, which must
split a fixed amount exactly), and hands every line to :func:`compute_statement`, which applies
each campaign's budget (step 4) and adds up the totals (step 5).

Each line carries its arithmetic in English and Chinese, in figures a staff member can check on
a calculator: "new deposits (daily average) 1248300.00 × 0.15% = 1872.45, capped at 1200.00".
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import ROUND_DOWN, Decimal, InvalidOperation, localcontext
from enum import StrEnum
from fractions import Fraction
from typing import Any

from appraisal.money import (
    FEN,
    MONEY_CONTEXT,
    allocate_largest_remainder,
    as_decimal,
    fen_down,
    is_fen,
    scale_to_budget,
    sum_fen,
    to_fen,
)

__all__ = [
    "MEASURES",
    "Bracket",
    "Line",
    "Measure",
    "Rule",
    "RuleError",
    "RuleErrors",
    "RuleInputs",
    "RuleKind",
    "StatementLine",
    "StatementResult",
    "Threshold",
    "TierMode",
    "compute_statement",
    "evaluate",
    "evaluate_group",
    "parse_rule",
    "parse_rules",
    "pool_shares",
    "register_measure",
    "split_by_shares",
]


# --------------------------------------------------------------------------------------------
# Measures
# --------------------------------------------------------------------------------------------


class MeasureUnit(StrEnum):
    """How a measure is counted, which decides how its figures are shown."""

    COUNT = "count"  # accounts opened, tasks overdue …: shown as plain numbers
    SUM = "sum"  # yuan: shown with two decimals


@dataclass(frozen=True)
class Measure:
    """A measure a rule can be written on, with the labels statements show beside its figure."""

    name: str
    unit: MeasureUnit
    label_en: str
    label_zh: str


MEASURES: dict[str, Measure] = {}

_MEASURE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


def register_measure(
    name: str,
    unit: MeasureUnit | str = MeasureUnit.COUNT,
    label_en: str | None = None,
    label_zh: str | None = None,
) -> Measure:
    """Make a measure known to rule parsing (a deployment may add its own); registering the same twice is harmless."""
    if not _MEASURE_NAME.match(name):
        raise ValueError(f"a measure name is lower-case letters, digits and _, found {name!r}")
    measure = Measure(name, MeasureUnit(unit), label_en or name.replace("_", " "), label_zh or name)
    existing = MEASURES.get(name)
    if existing is not None and existing != measure:
        # Two modules disagreeing about what a measure is would silently change statements.
        raise ValueError(f"measure {name!r} is already registered as {existing}")
    MEASURES[name] = measure
    return measure


for _name, _unit, _en, _zh in (
    ("accounts_opened", "count", "accounts opened", "开户数"),
    ("payroll_accounts", "count", "payroll accounts", "代发工资开户数"),
    ("agreements_signed", "count", "agreements signed", "签约协议数"),
    ("digital_activations", "count", "digital activations", "电子渠道激活数"),
    ("referrals", "count", "referrals", "转介数"),
    ("new_deposits", "sum", "new deposits (daily average)", "新增日均"),
    ("payroll_volume", "sum", "payroll volume", "代发工资金额"),
    ("follow_ups_logged", "count", "follow-ups logged", "跟进记录数"),
    ("tasks_done", "count", "tasks done", "完成任务数"),
    ("tasks_overdue", "count", "tasks overdue", "逾期任务数"),
    ("complaints", "count", "verified complaints", "有效投诉数"),
    ("training_missed", "count", "training sessions missed", "培训缺勤次数"),
):
    register_measure(_name, _unit, _en, _zh)

# What a pool is shared by when its rule names no measure.
_SCORE = Measure("score", MeasureUnit.COUNT, "scorecard score", "综合考核得分")


# --------------------------------------------------------------------------------------------
# Parsed rules
# --------------------------------------------------------------------------------------------


class RuleKind(StrEnum):
    """The kinds of reward rule (PRODUCT.md §6 table)."""

    PIECE_RATE = "piece_rate"  # rate × count
    PERCENTAGE = "percentage"  # rate × sum
    TIERED = "tiered"  # brackets, marginal or whole
    ATTAINMENT_BONUS = "attainment_bonus"  # bonus of the highest threshold reached
    PENALTY = "penalty"  # −rate × count, or a fixed amount below an attainment threshold
    BOUNTY = "bounty"  # the bounty amount split by the winners' shares
    POOL = "pool"  # a fixed pool shared in proportion to score


class TierMode(StrEnum):
    """How a tiered rule applies its brackets."""

    MARGINAL = "marginal"  # each slice of the measure at its own bracket's rate
    WHOLE = "whole"  # the whole measure at the rate of the highest bracket reached (accelerator)


@dataclass(frozen=True)
class Bracket:
    """One bracket of a tiered rule: from ``lower`` (inclusive) to ``upper`` (exclusive, None = no end)."""

    lower: Decimal
    upper: Decimal | None
    rate: Decimal


@dataclass(frozen=True)
class Threshold:
    """One step of an attainment bonus: at attainment ``at`` (1.2 = 120 %) the bonus is ``amount``."""

    at: Decimal
    amount: Decimal


@dataclass(frozen=True)
class Rule:
    """A validated reward rule; fields a kind does not use are None or empty.

    ``rate`` is money per unit for piece_rate, penalty and tiered rules on counts, and a fraction
    (0.0015 = 0.15 %) for percentage rules and tiered rules on sums. ``amount`` is the bounty amount,
    the pool amount, or the fixed penalty taken when attainment is ``below`` a threshold. ``cap`` is
    the most a line pays and ``floor`` the most it deducts (a positive figure: floor 100 stops a
    line at −100.00). ``allow_negative`` (piece_rate, percentage) lets a negative measure deduct;
    without it a negative measure pays 0.
    """

    id: str
    kind: RuleKind
    measure: str | None = None
    rate: Decimal | None = None
    mode: TierMode | None = None
    brackets: tuple[Bracket, ...] = ()
    thresholds: tuple[Threshold, ...] = ()
    amount: Decimal | None = None
    below: Decimal | None = None
    cap: Decimal | None = None
    floor: Decimal | None = None
    allow_negative: bool = False

    @property
    def pool_amount(self) -> Decimal | None:
        """The amount a pool rule shares out."""
        return self.amount if self.kind is RuleKind.POOL else None

    @property
    def fixed_penalty(self) -> Decimal | None:
        """The amount a penalty rule deducts when attainment is below its threshold."""
        return self.amount if self.kind is RuleKind.PENALTY and self.below is not None else None

    def to_dict(self) -> dict[str, Any]:
        """Return the rule as written in campaign YAML (numbers as Decimal), so ``parse_rule(r.to_dict()) == r``."""
        data: dict[str, Any] = {"id": self.id, "kind": self.kind.value}
        if self.measure is not None:
            data["measure"] = self.measure
        if self.mode is not None:
            data["mode"] = self.mode.value
        if self.rate is not None:
            data["rate"] = self.rate
        if self.brackets:
            data["brackets"] = [
                {"from": b.lower, "rate": b.rate} | ({"to": b.upper} if b.upper is not None else {})
                for b in self.brackets
            ]
        if self.thresholds:
            data["thresholds"] = [{"at": t.at, "amount": t.amount} for t in self.thresholds]
        if self.below is not None:
            data["below"] = self.below
        if self.amount is not None:
            data["amount"] = self.amount
        if self.cap is not None:
            data["cap"] = self.cap
        if self.floor is not None:
            data["floor"] = self.floor
        if self.allow_negative:
            data["allow_negative"] = True
        return data


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


class RuleError(ValueError):
    """One problem in a rule: where it is, what was expected there and what was found."""

    def __init__(self, path: str, expected: str, found: str) -> None:
        self.path, self.expected, self.found = path, expected, found
        super().__init__(f"{path}: expected {expected}, found {found}")

    def to_dict(self) -> dict[str, str]:
        return {"path": self.path, "expected": self.expected, "found": self.found}


class RuleErrors(ValueError):
    """Every problem found in one or more rules; a bad rule set is refused as a whole."""

    def __init__(self, errors: Sequence[RuleError]) -> None:
        self.errors = list(errors)
        count = len(self.errors)
        lines = "\n".join(f"  {error}" for error in self.errors)
        super().__init__(f"{count} problem{'s' if count != 1 else ''} in rules:\n{lines}")

    def to_list(self) -> list[dict[str, str]]:
        return [error.to_dict() for error in self.errors]


_MISSING = object()


def _found(value: Any) -> str:
    """Describe what was found, short enough for an error list."""
    if value is _MISSING:
        return "nothing"
    if value is None:
        return "an empty value"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value) if len(value) <= 60 else repr(value[:57] + "...")
    if isinstance(value, Decimal | int):
        return str(value)
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    # Typically a binary fraction from a YAML loader that does not build Decimals.
    return f"{value!r} ({type(value).__name__})"


# --------------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------------

_RULE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")

_COMMON_KEYS = ("id", "kind", "measure", "cap", "floor")
_KIND_KEYS: dict[RuleKind, tuple[str, ...]] = {
    RuleKind.PIECE_RATE: ("rate", "allow_negative"),
    RuleKind.PERCENTAGE: ("rate", "allow_negative"),
    RuleKind.TIERED: ("mode", "brackets"),
    RuleKind.ATTAINMENT_BONUS: ("thresholds",),
    RuleKind.PENALTY: ("rate", "below", "amount"),
    RuleKind.BOUNTY: ("amount",),
    RuleKind.POOL: ("amount",),
}
# Bounty and pool rules share a fixed amount; the rest are computed from a measure.
_MEASURE_OPTIONAL = {RuleKind.BOUNTY, RuleKind.POOL}

_NUMBER = "a decimal number (an integer, a Decimal or text such as '0.15'; binary fractions are not accepted)"


class _Collector:
    """Collects errors while a rule is parsed, so all of them are reported at once."""

    def __init__(self) -> None:
        self.errors: list[RuleError] = []

    def add(self, path: str, expected: str, found: Any) -> None:
        self.errors.append(RuleError(path, expected, _found(found)))

    def number(
        self,
        path: str,
        value: Any,
        *,
        minimum: Decimal | None = None,
        above: Decimal | None = None,
        money: bool = False,
        percent: bool = False,
    ) -> Decimal | None:
        """Read a decimal number, checking bounds and (for money) at most two decimals."""
        if value is _MISSING or value is None:
            self.add(path, _describe_number(minimum, above, money), value)
            return None
        number: Decimal | None = None
        if isinstance(value, bool):
            number = None
        elif isinstance(value, Decimal | int):
            number = Decimal(value)
        elif isinstance(value, str):
            text = value.strip().replace(",", "")
            scale = Decimal(1)
            if percent and text.endswith("%"):
                text, scale = text[:-1].strip(), Decimal("0.01")
            try:
                number = Decimal(text) * scale
            except InvalidOperation:
                number = None
        if number is None or not number.is_finite():
            self.add(path, _describe_number(minimum, above, money), value)
            return None
        if money and not is_fen(number):
            self.add(path, "an amount with at most two decimals", value)
            return None
        if minimum is not None and number < minimum:
            self.add(path, _describe_number(minimum, above, money), value)
            return None
        if above is not None and number <= above:
            self.add(path, _describe_number(minimum, above, money), value)
            return None
        return number.quantize(FEN, context=MONEY_CONTEXT) if money else number


def _describe_number(minimum: Decimal | None, above: Decimal | None, money: bool) -> str:
    what = "an amount with at most two decimals" if money else _NUMBER
    if above is not None:
        return f"{what} greater than {above}"
    if minimum is not None:
        return f"{what} of at least {minimum}"
    return what


def _keys_of(data: Mapping[str, Any], path: str, allowed: Sequence[str], what: str, errs: _Collector) -> None:
    """Report every key that has no meaning here (a typo such as ``capp`` must not pass silently)."""
    for key in sorted(data, key=str):
        if key not in allowed:
            errs.add(f"{path}.{key}", f"no key '{key}' in {what} (allowed: {', '.join(allowed)})", data[key])


def parse_rule(data: Any, path: str = "rules[0]") -> Rule:
    """Validate one rule as written in campaign YAML (PRODUCT.md §8) and return it, or raise RuleErrors listing every problem."""
    errs = _Collector()
    rule = _parse_rule(data, path, errs)
    if errs.errors or rule is None:
        raise RuleErrors(errs.errors)
    return rule


def parse_rules(items: Any, path: str = "rules") -> tuple[Rule, ...]:
    """Validate a campaign's list of rules (ids unique) and return them, or raise RuleErrors listing every problem."""
    errs = _Collector()
    if not isinstance(items, list | tuple):
        errs.add(path, "a list of rules", items)
        raise RuleErrors(errs.errors)
    rules: list[Rule] = []
    seen: dict[str, str] = {}
    for index, item in enumerate(items):
        item_path = f"{path}[{index}]"
        rule = _parse_rule(item, item_path, errs)
        rule_id = item.get("id") if isinstance(item, Mapping) else None
        if isinstance(rule_id, str) and rule_id in seen:
            errs.add(
                f"{item_path}.id",
                f"an id not used by another rule (already used at {seen[rule_id]})",
                rule_id,
            )
        elif isinstance(rule_id, str):
            seen[rule_id] = item_path
        if rule is not None:
            rules.append(rule)
    if errs.errors:
        raise RuleErrors(errs.errors)
    return tuple(rules)


def _parse_rule(data: Any, path: str, errs: _Collector) -> Rule | None:
    """Parse one rule into ``errs``; return None when anything is wrong."""
    if not isinstance(data, Mapping):
        errs.add(path, "a mapping with id, kind, measure and the kind's settings", data)
        return None
    before = len(errs.errors)

    rule_id = data.get("id", _MISSING)
    if not isinstance(rule_id, str) or not _RULE_ID.match(rule_id):
        errs.add(f"{path}.id", "an id of letters, digits, '_', '.' or '-' (at most 64)", rule_id)

    raw_kind = data.get("kind", _MISSING)
    kind: RuleKind | None = None
    if isinstance(raw_kind, str) and raw_kind in RuleKind._value2member_map_:
        kind = RuleKind(raw_kind)
    else:
        errs.add(f"{path}.kind", "one of " + ", ".join(k.value for k in RuleKind), raw_kind)

    allowed = _COMMON_KEYS + (
        _KIND_KEYS[kind] if kind else tuple(k for ks in _KIND_KEYS.values() for k in ks)
    )
    _keys_of(data, path, tuple(dict.fromkeys(allowed)), f"a {kind.value} rule" if kind else "a rule", errs)

    measure = data.get("measure", _MISSING)
    if measure is _MISSING and kind in _MEASURE_OPTIONAL:
        measure = None
    elif not isinstance(measure, str) or measure not in MEASURES:
        errs.add(f"{path}.measure", "one of the known measures: " + ", ".join(sorted(MEASURES)), measure)
        measure = None

    cap = floor = None
    if "cap" in data:
        cap = errs.number(f"{path}.cap", data["cap"], minimum=Decimal(0), money=True)
    if "floor" in data:
        # The most a line deducts, written as a positive amount: floor 100 stops a penalty at −100.00.
        floor = errs.number(f"{path}.floor", data["floor"], minimum=Decimal(0), money=True)

    fields: dict[str, Any] = {}
    if kind in (RuleKind.PIECE_RATE, RuleKind.PERCENTAGE):
        fields["rate"] = errs.number(
            f"{path}.rate",
            data.get("rate", _MISSING),
            minimum=Decimal(0),
            percent=kind is RuleKind.PERCENTAGE,
        )
        allow_negative = data.get("allow_negative", False)
        if not isinstance(allow_negative, bool):
            errs.add(f"{path}.allow_negative", "true or false", allow_negative)
        else:
            fields["allow_negative"] = allow_negative
    elif kind is RuleKind.TIERED:
        raw_mode = data.get("mode", _MISSING)
        if isinstance(raw_mode, str) and raw_mode in TierMode._value2member_map_:
            fields["mode"] = TierMode(raw_mode)
        else:
            errs.add(f"{path}.mode", "marginal or whole", raw_mode)
        fields["brackets"] = _parse_brackets(data.get("brackets", _MISSING), f"{path}.brackets", errs)
    elif kind is RuleKind.ATTAINMENT_BONUS:
        fields["thresholds"] = _parse_thresholds(data.get("thresholds", _MISSING), f"{path}.thresholds", errs)
    elif kind is RuleKind.PENALTY:
        _parse_penalty(data, path, errs, fields)
    elif kind is RuleKind.BOUNTY:
        # The amount may instead be posted with the bounty itself and passed in RuleInputs.amount.
        if "amount" in data:
            fields["amount"] = errs.number(f"{path}.amount", data["amount"], above=Decimal(0), money=True)
    elif kind is RuleKind.POOL:
        fields["amount"] = errs.number(
            f"{path}.amount", data.get("amount", _MISSING), above=Decimal(0), money=True
        )

    if len(errs.errors) > before or kind is None:
        return None
    return Rule(id=rule_id, kind=kind, measure=measure, cap=cap, floor=floor, **fields)


def _parse_penalty(data: Mapping[str, Any], path: str, errs: _Collector, fields: dict[str, Any]) -> None:
    """A penalty is either ``rate`` per unit, or ``below`` + ``amount`` (fixed, when attainment is below)."""
    has_rate = "rate" in data
    has_fixed = "below" in data or "amount" in data
    if has_rate and has_fixed:
        errs.add(
            path,
            "either rate (deducted per unit) or below and amount (a fixed deduction below an attainment), not both",
            "rate and " + " and ".join(k for k in ("below", "amount") if k in data),
        )
        return
    if has_rate:
        fields["rate"] = errs.number(f"{path}.rate", data["rate"], above=Decimal(0))
        return
    if not has_fixed:
        errs.add(f"{path}.rate", "a rate (deducted per unit), or below and amount", _MISSING)
        return
    fields["below"] = errs.number(
        f"{path}.below", data.get("below", _MISSING), above=Decimal(0), percent=True
    )
    fields["amount"] = errs.number(
        f"{path}.amount", data.get("amount", _MISSING), above=Decimal(0), money=True
    )


def _parse_brackets(raw: Any, path: str, errs: _Collector) -> tuple[Bracket, ...]:
    """Brackets ascend without gaps or overlaps; only the last may be open-ended."""
    if not isinstance(raw, list | tuple) or not raw:
        errs.add(path, "a non-empty list of brackets {from, to, rate}", raw)
        return ()
    # Bounds are read one by one and the order is checked on whatever could be read, so a bad rate
    # in one bracket does not hide a gap between two others.
    bounds: list[tuple[Decimal | None, Decimal | None, bool]] = []  # (from, to, has to)
    brackets: list[Bracket] = []
    ok = True
    for index, item in enumerate(raw):
        item_path = f"{path}[{index}]"
        if not isinstance(item, Mapping):
            errs.add(item_path, "a bracket {from, to, rate}", item)
            bounds.append((None, None, True))
            ok = False
            continue
        _keys_of(item, item_path, ("from", "to", "rate"), "a bracket", errs)
        lower = errs.number(f"{item_path}.from", item.get("from", _MISSING), minimum=Decimal(0))
        has_upper = item.get("to") is not None
        upper = errs.number(f"{item_path}.to", item["to"], minimum=Decimal(0)) if has_upper else None
        rate = errs.number(f"{item_path}.rate", item.get("rate", _MISSING), minimum=Decimal(0), percent=True)
        if lower is not None and upper is not None and upper <= lower:
            errs.add(f"{item_path}.to", f"a bound greater than from ({lower})", item["to"])
            upper = None
            ok = False
        bounds.append((lower, upper, has_upper))
        if lower is None or rate is None or (has_upper and upper is None):
            ok = False
            continue
        brackets.append(Bracket(lower, upper, rate))
    for index in range(1, len(bounds)):
        _lower, previous_upper, previous_has_upper = bounds[index - 1]
        current_lower = bounds[index][0]
        if not previous_has_upper:
            errs.add(
                f"{path}[{index - 1}].to",
                "an upper bound (only the last bracket may be open-ended)",
                _MISSING,
            )
            ok = False
        elif previous_upper is not None and current_lower is not None and current_lower != previous_upper:
            errs.add(
                f"{path}[{index}].from",
                f"the previous bracket's to ({previous_upper}), so brackets have no gaps or overlaps",
                raw[index].get("from"),
            )
            ok = False
    return tuple(brackets) if ok else ()


def _parse_thresholds(raw: Any, path: str, errs: _Collector) -> tuple[Threshold, ...]:
    """Thresholds are attainments (1.0 = 100 %) in strictly ascending order, each with its bonus."""
    if not isinstance(raw, list | tuple) or not raw:
        errs.add(path, "a non-empty list of thresholds {at, amount}", raw)
        return ()
    thresholds: list[Threshold] = []
    previous_at: Decimal | None = None  # the order is checked even when an amount is bad
    for index, item in enumerate(raw):
        item_path = f"{path}[{index}]"
        if not isinstance(item, Mapping):
            errs.add(item_path, "a threshold {at, amount}", item)
            continue
        _keys_of(item, item_path, ("at", "amount"), "a threshold", errs)
        at = errs.number(f"{item_path}.at", item.get("at", _MISSING), above=Decimal(0), percent=True)
        amount = errs.number(
            f"{item_path}.amount", item.get("amount", _MISSING), minimum=Decimal(0), money=True
        )
        if at is not None and previous_at is not None and at <= previous_at:
            errs.add(
                f"{item_path}.at", f"an attainment above the previous threshold ({previous_at})", item["at"]
            )
            continue
        if at is not None:
            previous_at = at
        if at is not None and amount is not None:
            thresholds.append(Threshold(at, amount))
    return tuple(thresholds)


# --------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RuleInputs:
    """What a rule needs for one staff member: the measure value (already credited by share) and the target.

    For a bounty: ``amount`` is the posted bounty (else the rule's amount) and ``share`` this
    winner's share of it (1 = sole winner). For a pool, ``value`` is the staff member's score.
    Integers are accepted and turned into Decimal; binary fractions are refused.
    """

    value: Decimal = Decimal(0)
    target: Decimal | None = None
    amount: Decimal | None = None
    share: Decimal = Decimal(1)

    def __post_init__(self) -> None:
        object.__setattr__(self, "value", as_decimal(self.value, "value"))
        object.__setattr__(self, "share", as_decimal(self.share, "share"))
        if self.target is not None:
            object.__setattr__(self, "target", as_decimal(self.target, "target"))
        if self.amount is not None:
            object.__setattr__(self, "amount", as_decimal(self.amount, "amount"))
        if self.share < 0:
            raise ValueError(f"share must not be negative, found {self.share}")


@dataclass(frozen=True)
class Line:
    """One statement line: the amount a rule gives one staff member, with its arithmetic in words.

    ``computed`` is the amount rounded to the fen before cap and floor; ``amount`` is after cap and
    floor (and after budget scaling, once :func:`compute_statement` has run, when ``budget_scaled_from``
    holds the amount before scaling). ``limited_by`` is "cap", "floor" or None.
    """

    rule_id: str
    kind: RuleKind
    measure: str | None
    value: Decimal | None
    target: Decimal | None
    computed: Decimal
    amount: Decimal
    formula: str
    explanation: str
    explanation_zh: str
    limited_by: str | None = None
    budget_scaled_from: Decimal | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the line as JSON-able values (amounts as text, so no precision is lost)."""

        def text(number: Decimal | None) -> str | None:
            return None if number is None else f"{number:f}"

        return {
            "rule_id": self.rule_id,
            "kind": self.kind.value,
            "measure": self.measure,
            "value": text(self.value),
            "target": text(self.target),
            "computed": text(self.computed),
            "amount": text(self.amount),
            "formula": self.formula,
            "explanation": self.explanation,
            "explanation_zh": self.explanation_zh,
            "limited_by": self.limited_by,
            "budget_scaled_from": text(self.budget_scaled_from),
        }


_FORMULAS: dict[tuple[RuleKind, TierMode | str | None], str] = {
    (RuleKind.PIECE_RATE, None): "rate × count",
    (RuleKind.PERCENTAGE, None): "rate × sum",
    (RuleKind.TIERED, TierMode.MARGINAL): "Σ slice × bracket rate",
    (RuleKind.TIERED, TierMode.WHOLE): "measure × rate of highest bracket reached",
    (RuleKind.ATTAINMENT_BONUS, None): "bonus of highest threshold reached by measure / target",
    (RuleKind.PENALTY, "rate"): "−rate × count",
    (RuleKind.PENALTY, "below"): "−amount if measure / target < below",
    (RuleKind.BOUNTY, None): "bounty amount × share",
    (RuleKind.POOL, None): "pool × score / total score",
}


_HUNDRED = Decimal(100)


def _money(number: Decimal) -> str:
    """Show an amount with two decimals, or with all its decimals when it is not a whole fen yet."""
    if number.is_finite():
        rounded = number.quantize(FEN, context=MONEY_CONTEXT)
        if rounded == number:  # a whole number of fen (is_fen, with one quantize instead of two)
            return f"{rounded:f}"
    return f"{number.normalize(context=MONEY_CONTEXT):f}"


def _plain(number: Decimal) -> str:
    """Show a count or a weight without trailing zeros (3, 1.5)."""
    if number == 0:
        return "0"
    return f"{number.normalize(context=MONEY_CONTEXT):f}"


def _percent(fraction: Decimal) -> str:
    """Show a fraction as a percentage (0.0015 → 0.15%)."""
    return _plain(MONEY_CONTEXT.multiply(fraction, _HUNDRED)) + "%"


def _attainment(value: Decimal, target: Decimal) -> str:
    """Show attainment as a percentage cut (not rounded) to 0.01 %, so 119.999 % never shows as 120 %."""
    ctx = MONEY_CONTEXT
    shown = ctx.divide(ctx.multiply(value, _HUNDRED), target).quantize(FEN, rounding=ROUND_DOWN, context=ctx)
    return _plain(shown) + "%"


def _measure_of(rule: Rule) -> Measure:
    if rule.measure is None:
        return _SCORE
    # A rule parsed before a deployment's measure was registered still explains itself.
    return MEASURES.get(rule.measure) or Measure(rule.measure, MeasureUnit.COUNT, rule.measure, rule.measure)


def _figure(measure: Measure, value: Decimal) -> str:
    return _money(value) if measure.unit is MeasureUnit.SUM else _plain(value)


def _target_figure(measure: Measure, target: Decimal) -> str:
    """A target as people read it: a share of a branch target (8 000 000 / 7) shows rounded to
    the fen with "≈"; the attainment itself is still computed from the exact value."""
    if target.is_finite() and target != target.quantize(FEN, context=MONEY_CONTEXT):
        return "≈" + f"{target.quantize(FEN, context=MONEY_CONTEXT):f}"
    return _figure(measure, target)


def _rate_figure(rule: Rule, measure: Measure, rate: Decimal) -> str:
    """Fractions of a sum show as percentages; money per unit shows as money."""
    if rule.kind is RuleKind.PERCENTAGE or (rule.kind is RuleKind.TIERED and measure.unit is MeasureUnit.SUM):
        return _percent(rate)
    return _money(rate)


def _finish(
    rule: Rule,
    inputs: RuleInputs,
    exact: Decimal,
    text_en: str,
    text_zh: str,
    formula: str,
    value: Decimal | None,
) -> Line:
    """Round the exact amount to the fen, then apply cap and floor (PRODUCT.md §6 step 3), and say so."""
    computed = to_fen(exact)
    if computed != exact:
        text_en += f", rounded to {_money(computed)}"
        text_zh += f"，四舍五入为 {_money(computed)}"
    amount, limited_by = computed, None
    if rule.cap is not None and amount > rule.cap:
        amount, limited_by = rule.cap, "cap"
        text_en += f", capped at {_money(rule.cap)}"
        text_zh += f"，封顶 {_money(rule.cap)}"
    if rule.floor is not None and amount < -rule.floor:
        amount, limited_by = -rule.floor, "floor"
        text_en += f", limited to {_money(amount)} (at most {_money(rule.floor)} deducted)"
        text_zh += f"，最多扣减 {_money(rule.floor)}，计 {_money(amount)}"
    return Line(
        rule_id=rule.id,
        kind=rule.kind,
        measure=rule.measure,
        value=value,
        target=inputs.target,
        computed=computed,
        amount=amount if amount != 0 else Decimal("0.00"),
        formula=formula,
        explanation=text_en,
        explanation_zh=text_zh,
        limited_by=limited_by,
    )


def evaluate(rule: Rule, inputs: RuleInputs | Mapping[str, Any]) -> Line:
    """Compute one rule for one staff member (PRODUCT.md §6 step 3): exact amount, rounded to the fen, then cap and floor.

    Pools share a fixed amount among everyone and must go through :func:`evaluate_group`; a bounty
    with several winners should too, so its parts sum exactly to the bounty.
    """
    if inputs.__class__ is not RuleInputs and isinstance(inputs, Mapping):  # the exact-type test is cheap
        inputs = RuleInputs(**inputs)
    with localcontext(MONEY_CONTEXT):
        return _EVALUATORS[rule.kind](rule, inputs)


def _piece_rate(rule: Rule, inputs: RuleInputs) -> Line:
    return _rate_times(rule, inputs, _money(_require(rule.rate, rule, "rate")), "count")


def _percentage(rule: Rule, inputs: RuleInputs) -> Line:
    return _rate_times(rule, inputs, _percent(_require(rule.rate, rule, "rate")), "sum")


def _rate_times(rule: Rule, inputs: RuleInputs, rate_shown: str, what: str) -> Line:
    """rate × measure; a negative measure (reversals exceeding results) pays 0 unless the rule allows it."""
    measure, rate, value = _measure_of(rule), _require(rule.rate, rule, "rate"), inputs.value
    formula = _FORMULAS[rule.kind, None]
    shown = _figure(measure, value)
    if value < 0 and not rule.allow_negative:
        return _finish(
            rule,
            inputs,
            Decimal(0),
            f"{measure.label_en} {shown} is negative; a negative {what} pays 0.00",
            f"{measure.label_zh} {shown} 为负数，不计奖励 0.00",
            formula,
            value,
        )
    exact = value * rate
    figures = f"{shown} × {rate_shown} = {_money(exact)}"
    return _finish(
        rule, inputs, exact, f"{measure.label_en} {figures}", f"{measure.label_zh} {figures}", formula, value
    )


def _tiered(rule: Rule, inputs: RuleInputs) -> Line:
    measure, value = _measure_of(rule), inputs.value
    mode = rule.mode or TierMode.MARGINAL
    formula = _FORMULAS[rule.kind, mode]
    shown = _figure(measure, value)
    first = rule.brackets[0]
    # Below the first bracket nothing is paid in either mode, and a negative sum pays nothing.
    # "Reached" means from ≤ measure, so a measure exactly at the first bound pays in whole mode.
    if value <= 0 or value < first.lower or (mode is TierMode.MARGINAL and value == first.lower):
        return _finish(
            rule,
            inputs,
            Decimal(0),
            f"{measure.label_en} {shown} does not pass the first bracket from {_figure(measure, first.lower)}: 0.00",
            f"{measure.label_zh} {shown} 未超过第一档起点 {_figure(measure, first.lower)}：0.00",
            formula,
            value,
        )
    if mode is TierMode.WHOLE:
        reached = [b for b in rule.brackets if b.lower <= value][-1]
        exact = value * reached.rate
        figures = f"{shown} × {_rate_figure(rule, measure, reached.rate)} = {_money(exact)}"
        start = _figure(measure, reached.lower)
        return _finish(
            rule,
            inputs,
            exact,
            f"{measure.label_en} {shown} reaches the bracket from {start}, whole amount at its rate: {figures}",
            f"{measure.label_zh} {shown} 达到 {start} 起的档位，全额按该档计：{figures}",
            formula,
            value,
        )
    slices: list[tuple[Decimal, Bracket, Decimal]] = []
    for bracket in rule.brackets:
        top = value if bracket.upper is None else min(value, bracket.upper)
        if top > bracket.lower:
            part = top - bracket.lower
            slices.append((part, bracket, part * bracket.rate))
    exact = sum((product for _part, _bracket, product in slices), Decimal(0))
    terms = " + ".join(
        f"{_figure(measure, part)} × {_rate_figure(rule, measure, b.rate)}" for part, b, _ in slices
    )
    figures = f"{terms} = "
    if len(slices) > 1:
        figures += " + ".join(_money(product) for _part, _bracket, product in slices) + " = "
    figures += _money(exact)
    return _finish(
        rule,
        inputs,
        exact,
        f"{measure.label_en} {shown} by slices: {figures}",
        f"{measure.label_zh} {shown} 分段累进：{figures}",
        formula,
        value,
    )


def _no_target(rule: Rule, inputs: RuleInputs, what_en: str, what_zh: str, formula: str) -> Line | None:
    """No target (or a target of 0): no attainment, so no attainment bonus or penalty (§6 step 2)."""
    if inputs.target is not None and inputs.target > 0:
        return None
    measure = _measure_of(rule)
    return _finish(
        rule,
        inputs,
        Decimal(0),
        f"{measure.label_en}: no target, so no {what_en}: 0.00",
        f"{measure.label_zh}：无任务指标，不计{what_zh} 0.00",
        formula,
        inputs.value,
    )


def _attainment_bonus(rule: Rule, inputs: RuleInputs) -> Line:
    formula = _FORMULAS[rule.kind, None]
    missing = _no_target(rule, inputs, "attainment bonus", "达标奖励", formula)
    if missing is not None:
        return missing
    measure, value = _measure_of(rule), inputs.value
    target = _require(inputs.target, rule, "target")
    ratio = f"{_figure(measure, value)} / {_target_figure(measure, target)} = {_attainment(value, target)}"
    # value ≥ at × target decides exactly; value / target could round up to a threshold it misses.
    reached = [t for t in rule.thresholds if value >= t.at * target]
    if not reached:
        lowest = _percent(rule.thresholds[0].at)
        return _finish(
            rule,
            inputs,
            Decimal(0),
            f"attainment of {measure.label_en} {ratio} < {lowest}: no bonus, 0.00",
            f"{measure.label_zh}完成率 {ratio} < {lowest}：无奖励 0.00",
            formula,
            value,
        )
    best = reached[-1]
    return _finish(
        rule,
        inputs,
        best.amount,
        f"attainment of {measure.label_en} {ratio} ≥ {_percent(best.at)} → {_money(best.amount)}",
        f"{measure.label_zh}完成率 {ratio} ≥ {_percent(best.at)} → 奖励 {_money(best.amount)}",
        formula,
        value,
    )


def _penalty(rule: Rule, inputs: RuleInputs) -> Line:
    measure, value = _measure_of(rule), inputs.value
    if rule.below is None:
        rate = _require(rule.rate, rule, "rate")
        # A penalty never pays out: a negative count (a data error) deducts nothing.
        count = max(value, Decimal(0))
        exact = -(count * rate)
        figures = f"{_figure(measure, count)} × -{_money(rate)} = {_money(exact)}"
        return _finish(
            rule,
            inputs,
            exact,
            f"{measure.label_en} {figures}",
            f"{measure.label_zh} {figures}",
            _FORMULAS[rule.kind, "rate"],
            value,
        )
    formula = _FORMULAS[rule.kind, "below"]
    missing = _no_target(rule, inputs, "attainment penalty", "未达标扣罚", formula)
    if missing is not None:
        return missing
    target = _require(inputs.target, rule, "target")
    amount = _require(rule.amount, rule, "amount")
    ratio = f"{_figure(measure, value)} / {_target_figure(measure, target)} = {_attainment(value, target)}"
    below = _percent(rule.below)
    if value < rule.below * target:
        return _finish(
            rule,
            inputs,
            -amount,
            f"attainment of {measure.label_en} {ratio} < {below} → -{_money(amount)}",
            f"{measure.label_zh}完成率 {ratio} < {below} → 扣罚 {_money(amount)}",
            formula,
            value,
        )
    return _finish(
        rule,
        inputs,
        Decimal(0),
        f"attainment of {measure.label_en} {ratio} ≥ {below}: no penalty, 0.00",
        f"{measure.label_zh}完成率 {ratio} ≥ {below}：不扣罚 0.00",
        formula,
        value,
    )


def _bounty_amount(rule: Rule, inputs: RuleInputs) -> Decimal:
    amount = inputs.amount if inputs.amount is not None else rule.amount
    if amount is None:
        raise ValueError(
            f"bounty rule {rule.id!r} has no amount: set it on the rule or pass RuleInputs.amount"
        )
    if not is_fen(amount) or amount < 0:
        raise ValueError(f"bounty amount must be a non-negative whole number of fen, found {amount}")
    return amount


def _bounty(rule: Rule, inputs: RuleInputs) -> Line:
    amount = _bounty_amount(rule, inputs)
    exact = amount * inputs.share
    figures = f"{_money(amount)} × {_percent(inputs.share)} = {_money(exact)}"
    return _finish(
        rule, inputs, exact, f"bounty {figures}", f"悬赏 {figures}", _FORMULAS[rule.kind, None], inputs.share
    )


def _pool(rule: Rule, inputs: RuleInputs) -> Line:
    raise ValueError(
        f"pool rule {rule.id!r} shares a fixed amount among all staff: evaluate it with evaluate_group"
    )


def _require(value: Any, rule: Rule, what: str) -> Any:
    if value is None:
        raise ValueError(f"rule {rule.id!r} ({rule.kind.value}) needs {what}")
    return value


_EVALUATORS = {
    RuleKind.PIECE_RATE: _piece_rate,
    RuleKind.PERCENTAGE: _percentage,
    RuleKind.TIERED: _tiered,
    RuleKind.ATTAINMENT_BONUS: _attainment_bonus,
    RuleKind.PENALTY: _penalty,
    RuleKind.BOUNTY: _bounty,
    RuleKind.POOL: _pool,
}


def split_by_shares(amount: Decimal, shares: Iterable[tuple[str, Decimal | int]]) -> dict[str, Decimal]:
    """Split an amount (a bounty, split credit) among staff by their shares, exactly to the fen by largest remainder.

    Shares are proportions (normally summing to 1); ties go to the lower staff_no first.
    """
    shares = list(shares)
    if sum((as_decimal(share, "share") for _staff, share in shares), Decimal(0)) <= 0:
        raise ValueError(f"cannot split {amount}: the shares sum to 0")
    return allocate_largest_remainder(amount, shares)


def pool_shares(pool_amount: Decimal, scores: Mapping[str, Decimal | int]) -> dict[str, Decimal]:
    """Share a pool among staff in proportion to their scores, exactly to the fen (nobody scoring: nobody is paid)."""
    for staff_no, score in scores.items():
        if as_decimal(score, f"score of {staff_no}") < 0:
            raise ValueError(f"score of {staff_no} must not be negative, found {score}")
    if all(Decimal(score) == 0 for score in scores.values()):
        return {staff_no: Decimal("0.00") for staff_no in sorted(scores)}
    return allocate_largest_remainder(pool_amount, scores.items())


def evaluate_group(rule: Rule, inputs_by_staff: Mapping[str, RuleInputs]) -> dict[str, Line]:
    """Compute one rule for every staff member at once; bounties and pools are split exactly to the fen.

    For a bounty, each winner's ``RuleInputs.share`` weighs their part (all must name the same
    amount, or none and the rule's); for a pool, ``RuleInputs.value`` is the score. Cap and floor
    apply to each part after the split. Other kinds are evaluated one by one. Ordered by staff_no.
    """
    staff = sorted(inputs_by_staff)
    if rule.kind not in (RuleKind.BOUNTY, RuleKind.POOL):
        return {staff_no: evaluate(rule, inputs_by_staff[staff_no]) for staff_no in staff}
    if not staff:
        return {}
    with localcontext(MONEY_CONTEXT):
        if rule.kind is RuleKind.BOUNTY:
            amounts = {_bounty_amount(rule, inputs_by_staff[s]) for s in staff}
            if len(amounts) != 1:
                raise ValueError(f"bounty rule {rule.id!r}: winners name different amounts {sorted(amounts)}")
            total = amounts.pop()
            weights = {s: inputs_by_staff[s].share for s in staff}
            parts = split_by_shares(total, weights.items())
            label_en, label_zh = "bounty", "悬赏"
            weight_en, weight_zh = "share", "份额"
        else:
            total = _require(rule.amount, rule, "amount")
            weights = {s: inputs_by_staff[s].value for s in staff}
            parts = pool_shares(total, weights)
            label_en, label_zh = "pool", "奖励池"
            measure = _measure_of(rule)
            weight_en, weight_zh = measure.label_en, measure.label_zh
        weight_sum = sum(weights.values(), Decimal(0))
        formula = _FORMULAS[rule.kind, None]
        lines: dict[str, Line] = {}
        for staff_no in staff:
            part, weight = parts[staff_no], weights[staff_no]
            exact = Fraction(total) * Fraction(weight) / Fraction(weight_sum) if weight_sum else Fraction(0)
            figures = (
                f"{_money(total)} × {weight_en} {_plain(weight)} / {_plain(weight_sum)} = {_money(part)}"
            )
            figures_zh = (
                f"{_money(total)} × {weight_zh} {_plain(weight)} / {_plain(weight_sum)} = {_money(part)}"
            )
            if Fraction(part) != exact:
                figures += " (split to the fen; the fen left over go by largest remainder)"
                figures_zh += "（精确到分，尾差按最大余额法分配）"
            # The split is already fen-exact, so _finish only adds cap and floor.
            lines[staff_no] = _finish(
                rule,
                inputs_by_staff[staff_no],
                part,
                f"{label_en} {figures}",
                f"{label_zh} {figures_zh}",
                formula,
                weight,
            )
        return lines


# --------------------------------------------------------------------------------------------
# Statements: budget scaling and totals (PRODUCT.md §6 steps 4 and 5)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StatementLine:
    """An evaluated line of one staff member in one campaign."""

    staff_no: str
    campaign: str
    line: Line

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.staff_no, self.campaign, self.line.rule_id)


@dataclass(frozen=True)
class BudgetScaling:
    """How one campaign's positive lines were scaled down to its budget left."""

    campaign: str
    budget_left: Decimal
    positive_sum: Decimal


@dataclass(frozen=True)
class StatementResult:
    """The final lines of a run (sorted by staff_no, campaign, rule), each staff member's total and each campaign's."""

    lines: tuple[StatementLine, ...]
    totals: dict[str, Decimal]
    campaign_totals: dict[str, Decimal]
    scaled: dict[str, BudgetScaling] = field(default_factory=dict)

    def lines_of(self, staff_no: str) -> tuple[StatementLine, ...]:
        """The lines of one staff member's statement."""
        return tuple(line for line in self.lines if line.staff_no == staff_no)


def compute_statement(
    lines: Iterable[StatementLine],
    budgets_left: Mapping[str, Decimal | None] | None = None,
) -> StatementResult:
    """Apply each campaign's budget left to its positive lines (step 4) and total each statement (step 5).

    ``lines`` are evaluated lines (rounded, capped and floored), one per staff member, campaign and
    rule. A campaign missing from ``budgets_left`` (or mapped to None) has no budget. When the
    positive lines of a campaign sum to more than its budget left, each is scaled by budget / sum,
    rounded down to the fen, leftover fen by largest remainder (ties: lower staff_no, then rule id);
    penalties are never scaled. A total is the sum of its rounded lines. The result is the same
    whatever the order of ``lines``.
    """
    budgets_left = budgets_left or {}
    by_key: dict[tuple[str, str, str], StatementLine] = {}
    for statement_line in lines:
        if statement_line.key in by_key:
            raise ValueError(f"two lines for staff, campaign and rule {statement_line.key}")
        if not is_fen(statement_line.line.amount):
            raise ValueError(
                f"line {statement_line.key} is not rounded to the fen: {statement_line.line.amount}"
            )
        by_key[statement_line.key] = statement_line
    ordered = [by_key[key] for key in sorted(by_key)]

    scaled: dict[str, BudgetScaling] = {}
    final: dict[tuple[str, str, str], StatementLine] = {sl.key: sl for sl in ordered}
    by_campaign: dict[str, list[StatementLine]] = {}
    for sl in ordered:
        by_campaign.setdefault(sl.campaign, []).append(sl)
    for campaign in sorted(by_campaign):
        budget = budgets_left.get(campaign)
        if budget is None:
            continue
        budget = as_decimal(budget, f"budget left of {campaign}")
        # A budget lowered below what was already paid leaves nothing more to pay, not a clawback.
        budget = max(budget, Decimal("0.00"))
        campaign_lines = by_campaign[campaign]
        positive_sum = sum_fen(sl.line.amount for sl in campaign_lines if sl.line.amount > 0)
        if positive_sum <= budget:
            continue
        scaled[campaign] = BudgetScaling(campaign, budget, positive_sum)
        # Keys (staff_no, rule_id) sort ties to the lower staff_no first, as §6 step 4 asks.
        new_amounts = scale_to_budget(
            [((sl.staff_no, sl.line.rule_id), sl.line.amount) for sl in campaign_lines], budget
        )
        for sl in campaign_lines:
            old = sl.line.amount
            if old <= 0:
                continue
            new = new_amounts[(sl.staff_no, sl.line.rule_id)]
            final[sl.key] = replace(sl, line=scaled_line(sl.line, old, new, budget, positive_sum))

    result_lines = tuple(final[key] for key in sorted(final))
    totals: dict[str, list[Decimal]] = {}
    campaign_amounts: dict[str, list[Decimal]] = {}
    for sl in result_lines:
        totals.setdefault(sl.staff_no, []).append(sl.line.amount)
        campaign_amounts.setdefault(sl.campaign, []).append(sl.line.amount)
    return StatementResult(
        lines=result_lines,
        totals={staff_no: _sum_checked_fen(amounts) for staff_no, amounts in sorted(totals.items())},
        campaign_totals={
            campaign: _sum_checked_fen(amounts) for campaign, amounts in sorted(campaign_amounts.items())
        },
        scaled=scaled,
    )


def _sum_checked_fen(amounts: list[Decimal]) -> Decimal:
    """``sum_fen`` of amounts already checked to be whole fen: an exact Decimal sum, shown with two decimals."""
    with localcontext(MONEY_CONTEXT):
        total = sum(amounts, Decimal("0.00"))
    return total.quantize(FEN, context=MONEY_CONTEXT)


def scaled_line(line: Line, old: Decimal, new: Decimal, budget: Decimal, positive_sum: Decimal) -> Line:
    """Return the line scaled to the budget, its explanation extended with the scaling arithmetic."""
    exact = MONEY_CONTEXT.divide(MONEY_CONTEXT.multiply(old, budget), positive_sum)
    budget_text, sum_text = _money(budget), _money(positive_sum)
    arithmetic = f"{_money(old)} × {budget_text} / {sum_text} → {_money(new)}"
    note_en = note_zh = ""
    if new != fen_down(exact):
        note_en = " (rounded down, plus one fen left over by largest remainder)"
        note_zh = "（向下取整后按最大余额法补 1 分）"
    return replace(
        line,
        amount=new,
        budget_scaled_from=old,
        explanation=(
            f"{line.explanation}; campaign budget left {budget_text} < positive lines {sum_text}, "
            f"scaled: {arithmetic}{note_en}"
        ),
        explanation_zh=(
            f"{line.explanation_zh}；活动剩余预算 {budget_text} < 正向合计 {sum_text}，"
            f"按比例缩放：{arithmetic}{note_zh}"
        ),
    )
