"""Resident ID numbers (GB 11643), unified social credit codes (GB 32100) and mobile numbers.

Validators return a list of errors (empty when the value is fine) so that an import can
report every problem of a row at once; helpers that read a value return ``None`` for bad input.
"""

from __future__ import annotations

import datetime as dt
import re

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK_CHARS = "10X98765432"
_ID_FORMAT_RE = re.compile(r"\d{17}[\dX]")
# Province-level codes (first two digits); 71/81/82/83 are residence permits of Taiwan, Hong Kong
# and Macao residents; a leading 9 is the 2023 foreigner's permanent residence ID card.
_PROVINCES = frozenset(
    "11 12 13 14 15 21 22 23 31 32 33 34 35 36 37 41 42 43 44 45 46 50 51 52 53 54 "
    "61 62 63 64 65 71 81 82 83".split()
)

_USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_USCC_FORMAT_RE = re.compile(rf"[{_USCC_CHARS}]{{18}}")

_MOBILE_RE = re.compile(r"1[3-9]\d{9}")
_MOBILE_SEPARATORS_RE = re.compile(r"[\s\-()]")


def normalise_id_number(id_number: object) -> str:
    """Strip spaces and upper-case a trailing ``x``; ``None`` becomes ``""``."""
    return "" if id_number is None else re.sub(r"\s", "", str(id_number)).upper()


def id_check_char(first17: str) -> str:
    """The GB 11643 check character of the first 17 digits of an ID number."""
    total = sum(int(digit) * weight for digit, weight in zip(first17, _ID_WEIGHTS, strict=True))
    return _ID_CHECK_CHARS[total % 11]


def birth_date_from_id(id_number: object) -> dt.date | None:
    """The birth date embedded in an 18-character ID number (digits 7–14), or ``None``."""
    value = normalise_id_number(id_number)
    if not _ID_FORMAT_RE.fullmatch(value):
        return None
    try:
        return dt.date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return None


def gender_from_id(id_number: object) -> str | None:
    """``"M"`` or ``"F"`` from the sequence digit (17th: odd is male), or ``None`` for a malformed ID."""
    value = normalise_id_number(id_number)
    if not _ID_FORMAT_RE.fullmatch(value):
        return None
    return "M" if int(value[16]) % 2 else "F"


def validate_id_number(
    id_number: object, birth_date: dt.date | str | None = None, *, today: dt.date | None = None
) -> list[str]:
    """Errors of an 18-character resident ID number; empty when it is valid.

    Checks length, characters (17 digits then a digit or ``X``), region, the embedded birth
    date (a real date, not before 1900, not in the future), agreement with ``birth_date``
    when given (a ``date`` or ISO ``YYYY-MM-DD`` string) and the GB 11643 checksum.
    """
    value = normalise_id_number(id_number)
    if not value:
        return ["ID number is empty"]
    if len(value) != 18:
        return [f"ID number must have 18 characters, found {len(value)}"]
    if not _ID_FORMAT_RE.fullmatch(value):
        return ["ID number must be 17 digits followed by a digit or X"]
    errors: list[str] = []
    if value[:2] not in _PROVINCES and value[0] != "9":
        errors.append(f"ID number region code {value[:6]} is not a valid region")
    embedded = birth_date_from_id(value)
    if today is None:  # the union's date, not the server's (a server on UTC is 8 hours behind)
        from config import clock

        today = clock.today()
    if embedded is None:
        errors.append(f"ID number has an impossible birth date {value[6:10]}-{value[10:12]}-{value[12:14]}")
    elif embedded.year < 1900 or embedded > today:
        errors.append(f"ID number birth date {embedded.isoformat()} is out of range")
    elif birth_date is not None and birth_date != "":
        expected = birth_date if isinstance(birth_date, dt.date) else _parse_iso(str(birth_date))
        if expected != embedded:
            errors.append(
                f"ID number birth date {embedded.isoformat()} does not match birth date {birth_date}"
            )
    check = id_check_char(value[:17])
    if value[17] != check:
        errors.append(f"ID number checksum fails: last character should be {check}, found {value[17]}")
    return errors


def make_id_number(region6: str, birth_date: dt.date, seq3: int | str) -> str:
    """Build a valid ID number from a 6-digit region, a birth date and a 3-digit sequence (odd: male).

    For demo data and tests: ``make_id_number("511902", date(1990, 1, 1), 123)``.
    """
    region = str(region6)
    seq = f"{int(seq3):03d}"
    if not re.fullmatch(r"\d{6}", region) or not re.fullmatch(r"\d{3}", seq):
        raise ValueError("region6 must be 6 digits and seq3 0–999")
    first17 = f"{region}{birth_date:%Y%m%d}{seq}"
    return first17 + id_check_char(first17)


def normalise_credit_code(code: object) -> str:
    """Strip spaces and upper-case a unified social credit code; ``None`` becomes ``""``."""
    return normalise_id_number(code)


def validate_credit_code(code: object) -> list[str]:
    """Errors of an 18-character unified social credit code (统一社会信用代码, GB 32100-2015)."""
    value = normalise_credit_code(code)
    if not value:
        return ["credit code is empty"]
    if len(value) != 18:
        return [f"credit code must have 18 characters, found {len(value)}"]
    if not _USCC_FORMAT_RE.fullmatch(value):
        return ["credit code may contain only digits and the letters ABCDEFGHJKLMNPQRTUWXY"]
    total = sum(
        _USCC_CHARS.index(char) * weight for char, weight in zip(value[:17], _USCC_WEIGHTS, strict=True)
    )
    check = _USCC_CHARS[(31 - total % 31) % 31]
    if value[17] != check:
        return [f"credit code checksum fails: last character should be {check}, found {value[17]}"]
    return []


def normalise_mobile(phone: object) -> str:
    """Remove spaces, dashes and brackets and a ``+86``/``0086``/``86`` country prefix."""
    value = "" if phone is None else _MOBILE_SEPARATORS_RE.sub("", str(phone))
    for prefix in ("+86", "0086", "86"):
        if value.startswith(prefix) and len(value) == len(prefix) + 11:
            return value[len(prefix) :]
    return value


def validate_mobile(phone: object) -> list[str]:
    """Errors of a mainland mobile number: 11 digits starting with 13–19 (after :func:`normalise_mobile`)."""
    value = normalise_mobile(phone)
    if not value:
        return ["mobile number is empty"]
    if not _MOBILE_RE.fullmatch(value):
        return ["mobile number must be 11 digits starting with 13–19"]
    return []


def _parse_iso(text: str) -> dt.date | None:
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text.strip()):
        return None
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        return None
