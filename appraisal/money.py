"""Money arithmetic for rewards: Decimal only, rounded to the fen, splits that sum exactly (PRODUCT.md §6).

Every figure that ends up on a statement passes through this module. Binary fractions are
refused at the door, rounding is ROUND_HALF_UP to the fen, and every split of a fixed figure
(a budget, a pool, a bounty) hands out the rounding difference by largest remainder, so the
parts add up to the figure exactly and the result never depends on the order of the input.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping
from decimal import (
    ROUND_DOWN,
    ROUND_HALF_UP,
    Context,
    Decimal,
    DivisionByZero,
    InvalidOperation,
    Overflow,
    localcontext,
)
from typing import Any, TypeVar

K = TypeVar("K", bound=Hashable)

FEN = Decimal("0.01")

# A fixed, generous context for every computation here: results must not depend on whatever
# precision or rounding a caller (or a worker thread) has set on its own decimal context.
# NUMERIC(18,2) times a rate with a dozen decimals stays far below 60 digits, so products are exact.
MONEY_CONTEXT = Context(prec=60, rounding=ROUND_HALF_UP, traps=[InvalidOperation, DivisionByZero, Overflow])


def to_fen(x: Decimal | int) -> Decimal:
    """Round an exact amount to the fen with ROUND_HALF_UP (halves go away from zero: 5.025 → 5.03, −5.025 → −5.03)."""
    if x.__class__ is Decimal and x.is_finite():  # the common case: no checks or context switch needed
        rounded = x.quantize(FEN, rounding=ROUND_HALF_UP, context=MONEY_CONTEXT)
    else:
        rounded = as_decimal(x, "amount").quantize(FEN, rounding=ROUND_HALF_UP, context=MONEY_CONTEXT)
    # −0.00 equals 0.00 but would print as "-0.00" on a statement.
    return rounded if rounded != 0 else Decimal("0.00")


def fen_down(x: Decimal | int) -> Decimal:
    """Round an exact non-negative amount down to the fen (what budget scaling does before the leftover fen)."""
    value = as_decimal(x, "amount")
    with localcontext(MONEY_CONTEXT):
        rounded = value.quantize(FEN, rounding=ROUND_DOWN)
    return rounded if rounded != 0 else Decimal("0.00")


def as_decimal(value: Any, what: str = "value") -> Decimal:
    """Return ``value`` as a finite Decimal, accepting only Decimal and int (bool and binary fractions are refused)."""
    if value.__class__ is Decimal and value.is_finite():  # fast path (the run calls this per line)
        return value
    # bool is an int subclass; True as an amount is always a mistake.
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        raise TypeError(
            f"{what} must be a Decimal or an int, not {type(value).__name__} {value!r}: "
            "money and measures are never binary fractions"
        )
    result = Decimal(value)
    if not result.is_finite():
        raise ValueError(f"{what} must be a finite number, found {value!r}")
    return result


def parse_money(value: str | int | Decimal) -> Decimal:
    """Parse an amount of money written as text, an int or a Decimal with at most two decimals, to the fen."""
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise ValueError(
            f"money must be written as text, an integer or a Decimal, found {type(value).__name__} {value!r}"
        )
    if isinstance(value, str):
        text = value.strip()
        try:
            number = Decimal(text)
        except InvalidOperation:
            raise ValueError(f"money must be a number with at most two decimals, found {value!r}") from None
    else:
        number = Decimal(value)
    if not number.is_finite():
        raise ValueError(f"money must be a finite number, found {value!r}")
    exponent = number.as_tuple().exponent
    # "12.50" and "12.500" are the same amount but a third decimal that is not zero is a typo or a
    # computed figure someone forgot to round; refuse it rather than silently rounding.
    if isinstance(exponent, int) and exponent < -2 and number != number.quantize(FEN, context=MONEY_CONTEXT):
        raise ValueError(f"money has at most two decimals, found {value!r}")
    with localcontext(MONEY_CONTEXT):
        parsed = number.quantize(FEN)
    return parsed if parsed != 0 else Decimal("0.00")


def is_fen(value: Decimal) -> bool:
    """Tell whether a Decimal is a whole number of fen (at most two significant decimals)."""
    return value.is_finite() and value == value.quantize(FEN, context=MONEY_CONTEXT)


def _fen_count(total: Decimal, what: str) -> int:
    """Return a fen-exact amount as an integer number of fen, refusing anything finer."""
    total = as_decimal(total, what)
    if not is_fen(total):
        raise ValueError(f"{what} must be a whole number of fen, found {total}")
    return int(total.scaleb(2, context=MONEY_CONTEXT))


def _from_fen(count: int) -> Decimal:
    """Return an integer number of fen as a Decimal with two decimals."""
    return Decimal(count).scaleb(-2, context=MONEY_CONTEXT)


def _itself(key: Any) -> Any:
    """Order keys by themselves (staff_no, or tuples starting with it)."""
    return key


def allocate_largest_remainder(
    total: Decimal,
    weights: Iterable[tuple[K, Decimal | int]],
    tiebreak_key: Callable[[K], Any] | None = None,
) -> dict[K, Decimal]:
    """Split ``total`` in proportion to ``weights`` exactly to the fen by largest remainder.

    Each part is first the exact share rounded down to the fen; the fen left over go one each to
    the parts with the largest remainders, ties by ``tiebreak_key(key)`` ascending (default: the key
    itself, e.g. staff_no). Parts with weight 0 get 0. A negative total is split as its absolute
    value and negated, so a deduction is shared the same way as a payment. The result is ordered
    by the tiebreak key and does not depend on the order of ``weights``.
    """
    order_key: Callable[[K], Any] = tiebreak_key if tiebreak_key is not None else _itself
    fen_total = _fen_count(total, "total")
    decimal_weights: dict[K, Decimal] = {}
    for key, weight in weights:
        if key in decimal_weights:
            raise ValueError(f"allocation key {key!r} appears twice")
        weight_value = as_decimal(weight, f"weight of {key!r}")
        if weight_value < 0:
            raise ValueError(f"weight of {key!r} must not be negative, found {weight_value}")
        decimal_weights[key] = weight_value
    keys = sorted(decimal_weights, key=order_key)
    if not keys:
        if fen_total != 0:
            raise ValueError(f"cannot split {total} among nobody")
        return {}
    # Exact rationals without Fraction objects: every Decimal weight is an integer over 10**shift
    # for one common shift, and the common denominator cancels in weight / weight_sum.
    shift = max(0, max(-int(w.as_tuple().exponent) for w in decimal_weights.values()))
    int_weights = {key: _scaled_int(w, shift) for key, w in decimal_weights.items()}
    weight_sum = sum(int_weights.values())
    if weight_sum == 0:
        if fen_total != 0:
            raise ValueError(f"cannot split {total}: every weight is 0")
        return {key: Decimal("0.00") for key in keys}

    sign = -1 if fen_total < 0 else 1
    magnitude = abs(fen_total)
    floors: dict[K, int] = {}
    # each part is magnitude × weight / weight_sum = floor + remainder / weight_sum (one denominator)
    remainders: dict[K, int] = {}
    for key in keys:
        floors[key], remainders[key] = divmod(magnitude * int_weights[key], weight_sum)
    # The remainders add up to exactly the fen left over, each below one fen, so only parts with a
    # positive remainder (and so a positive weight) can receive one.
    left_over = magnitude - sum(floors.values())
    by_remainder = sorted(keys, key=lambda key: (-remainders[key], order_key(key)))
    for key in by_remainder[:left_over]:
        floors[key] += 1
    return {key: _from_fen(sign * floors[key]) for key in keys}


def _scaled_int(value: Decimal, shift: int) -> int:
    """``value × 10**shift`` as an exact int (``shift`` is at least the number of decimals of ``value``)."""
    sign, digits, exponent = value.as_tuple()
    number = int("".join(map(str, digits))) if digits else 0
    power = int(exponent) + shift
    number = number * 10**power if power >= 0 else number // 10**-power  # power < 0 never loses digits here
    return -number if sign else number


def scale_to_budget(lines: Iterable[tuple[K, Decimal]], budget: Decimal) -> dict[K, Decimal]:
    """Scale the positive lines down to ``budget`` when they sum to more than it (PRODUCT.md §6 step 4).

    Each positive line becomes line × budget / sum rounded down to the fen, and the fen left over go
    one each by largest remainder, ties lower key first, so the positive lines sum exactly to the
    budget. Lines of zero or below (penalties) are returned unchanged, and nothing changes when the
    positive lines fit in the budget. No line is ever raised. The result is ordered by key.
    """
    budget_fen = _fen_count(budget, "budget")
    if budget_fen < 0:
        raise ValueError(f"budget must not be negative, found {budget}")
    amounts: dict[K, Decimal] = {}
    for key, amount in lines:
        if key in amounts:
            raise ValueError(f"line key {key!r} appears twice")
        _fen_count(amount, f"line {key!r}")
        amounts[key] = as_decimal(amount)
    positive = [(key, amount) for key, amount in amounts.items() if amount > 0]
    positive_sum = sum((amount for _key, amount in positive), Decimal(0))
    result = {key: amounts[key] for key in sorted(amounts, key=_itself)}
    if positive_sum <= _from_fen(budget_fen):
        return result
    # floor(budget × line / sum) is exactly the floor of the proportional share of the budget with
    # the lines as weights, so the general allocation does the rounding and the leftover fen.
    result.update(allocate_largest_remainder(_from_fen(budget_fen), positive))
    return result


def sum_fen(amounts: Iterable[Decimal] | Mapping[Any, Decimal]) -> Decimal:
    """Sum fen-exact amounts (a statement total is the sum of its rounded lines), as a two-decimal Decimal."""
    values = amounts.values() if isinstance(amounts, Mapping) else amounts
    return _from_fen(sum(_fen_count(amount, "line") for amount in values))
