"""Free text must not carry authentication data or card numbers (RELIABILITY PII-02).

Managers type notes everywhere — a follow-up, a failure reason, a claim's evidence, a dispute.
campaignflow never stores C3 information (passwords, PINs, verification codes, card security
codes) and keeps card and ID numbers out of free text: :func:`findings` looks for a Luhn-valid
card number, a resident ID number with a valid check digit, and a password/PIN/code word followed
by digits. A form or API that finds one refuses the text with a message naming the field and the
kind of data (never repeating it) and stores nothing.
"""

from __future__ import annotations

import re

_CARD = re.compile(r"(?<![\d])(?:\d[ -]?){12,18}\d(?![\d])")
_ID = re.compile(r"(?<![\dA-Za-z])\d{17}[\dXx](?![\dA-Za-z])")
_SECRET = re.compile(
    r"(密码|口令|验证码|动态码|校验码|PIN|CVV2?|CVN2?|password|passcode|pwd)\s*[:：是为=]?\s*\d{3,8}(?!\d)",
    re.IGNORECASE,
)
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _id_ok(value: str) -> bool:
    s = sum(int(c) * w for c, w in zip(value[:17], _ID_WEIGHTS, strict=True))
    return _ID_CHECK[s % 11] == value[17].upper()


def findings(text: str | None, *, cards: bool = True) -> list[str]:
    """What in ``text`` must not be stored, in words (empty: nothing found). ``cards=False`` where
    the field asks for an account number (a claim's evidence)."""
    if not text:
        return []
    found: list[str] = []
    if _SECRET.search(text):
        found.append("a password, PIN or verification code")
    for m in _ID.finditer(text):
        if _id_ok(m.group(0)):
            found.append("a resident ID number")
            break
    for m in _CARD.finditer(text) if cards else ():
        digits = re.sub(r"[ -]", "", m.group(0))
        if 13 <= len(digits) <= 19 and _luhn(digits) and not (len(digits) == 18 and _ID.fullmatch(digits)):
            found.append("a bank card number")
            break
    return found


def problem(text: str | None, *, cards: bool = True) -> str | None:
    """The message for a refused ``text`` (the caller's error names the field), or None when it
    may be stored."""
    kinds = findings(text, cards=cards)
    if not kinds:
        return None
    return (
        f"this text seems to contain {' and '.join(kinds)}: such data must not be written in notes "
        "(keep card and ID numbers in their own fields, and never record passwords or codes)"
    )
