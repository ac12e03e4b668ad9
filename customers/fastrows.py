"""Fast path of the row validation for large CSV imports on PostgreSQL (issue 3, bench item 9).

:mod:`customers.fileformats` validates a row through a dict of raw values, one parser call per
cell and a dict of clean values; that costs ~25 µs a row, which dominates a 12 M-row snapshot
import. For the two large kinds (customers and snapshots) :func:`row_builder` returns a function
that takes the cells of one CSV row (a list of ``str``, columns in the file's order) and returns
the staging row as ``COPY`` text (``str`` or ``None`` for NULL), in the staging table's column
order without ``row_no`` — or raises :class:`Slow`.

The fast path only *accepts*: it recognises the common, clean spelling of each value (ASCII
codes, ``YYYY-MM-DD`` dates seen before, plain amounts, 11-digit mobiles, valid resident IDs)
and leaves everything else — any value it is not sure about, every bad value, every unusual
spelling — to the full validator by raising :class:`Slow`. So every error message comes from
:mod:`customers.fileformats` as before; the fast path produces, for the rows it accepts, the
same staged values (``tests/unit/test_fastrows.py`` checks it against the plain path).

Low-cardinality columns (type, gender, area, tags, risk status, dates, channels …) go through
the plain parser once per distinct spelling and are then looked up in a bounded cache.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Sequence
from operator import itemgetter, mul
from typing import Any

from customers import fileformats as ff
from customers.identity import _ID_CHECK_CHARS, _ID_WEIGHTS, _PROVINCES

__all__ = ["FAST_KINDS", "Slow", "line_builder", "row_builder"]


class Slow(Exception):
    """This row needs the full validator."""


#: Kinds with a fast path (the others always use the full validator).
FAST_KINDS = ("customers", "snapshots")

_CACHE_LIMIT = 4096  # distinct spellings remembered per column (memory stays bounded)
_CODE_RE = re.compile(r"[!-~]{1,32}")  # printable ASCII, no space: what parse_code(…, 32) keeps as is
_MONEY_RE = re.compile(r"[0-9]{1,16}(?:\.[0-9]{1,2})?")  # non-negative, ≤ 2 decimals, < 1e16
_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_MOBILE_RE = re.compile(r"1[3-9][0-9]{9}")
_ID_RE = re.compile(r"[0-9]{17}[0-9X]")
_ID_WEIGHT_SUM = sum(_ID_WEIGHTS) * ord("0")

Cell = Callable[[str], str | None]


def _blank(value: str) -> bool:
    return not value or value.isspace()  # the same as fileformats._is_blank for a str


def _code(required: bool, max_length: int = 32) -> Cell:
    match = re.compile(rf"[!-~]{{1,{max_length}}}").fullmatch if max_length != 32 else _CODE_RE.fullmatch

    def cell(value: str) -> str | None:
        if match(value):
            return value
        if not required and _blank(value):
            return None
        raise Slow

    return cell


def _text(required: bool, max_length: int) -> Cell:
    control = ff._CONTROL_RE.search

    def cell(value: str) -> str | None:
        text = value.strip()
        if not text:
            if required:
                raise Slow
            return None
        if len(text) > max_length or control(text):
            raise Slow
        return text

    return cell


def _money(default: str | None) -> Cell:
    match = _MONEY_RE.fullmatch

    def cell(value: str) -> str | None:
        if match(value):
            return value
        if _blank(value):
            return default
        raise Slow

    return cell


def _date(required: bool) -> Cell:
    cache: dict[str, str] = {}
    match = _DATE_RE.fullmatch

    def cell(value: str) -> str | None:
        known = cache.get(value)
        if known is not None:
            return known
        if not match(value):
            if not required and _blank(value):
                return None
            raise Slow
        try:
            dt.date.fromisoformat(value)
        except ValueError:
            raise Slow from None
        if len(cache) < _CACHE_LIMIT:
            cache[value] = value
        return value

    return cell


def _mobile(value: str) -> str | None:
    if _MOBILE_RE.fullmatch(value):
        return value
    if _blank(value):
        return None
    raise Slow


def _copy_text(value: Any) -> str:
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _memo(parse: Callable[[Any], Any], required: bool, empty: str | None = None) -> Cell:
    """The plain parser once per distinct spelling; its ``COPY`` text remembered."""
    cache: dict[str, str] = {}

    def cell(value: str) -> str | None:
        known = cache.get(value)
        if known is not None:
            return known
        if _blank(value):
            if required:
                raise Slow
            return empty
        try:
            text = _copy_text(parse(value))
        except ValueError:
            raise Slow from None
        if len(cache) < _CACHE_LIMIT:
            cache[value] = text
        return text

    return cell


def _fields(kind: str) -> dict[str, tuple[Any, bool]]:
    return ff._FIELDS[kind]


def _snapshot_cells() -> dict[str, Cell]:
    fields = _fields("snapshots")
    return {
        "customer_no": _code(True),
        "as_of": _date(True),
        "deposit_demand": _money("0.00"),
        "deposit_time": _money("0.00"),
        "loan": _money("0.00"),
        "wealth": _money("0.00"),
        "avg_daily_deposit": _money(None),
        "risk_status": _memo(fields["risk_status"][0], False),
    }


def _customer_cells() -> dict[str, Cell]:
    fields = _fields("customers")
    return {
        "customer_no": _code(True),
        "type": _memo(fields["type"][0], True),
        "name": _text(True, 120),
        "id_number": _id_cell,
        "phone": _mobile,
        "gender": _memo(fields["gender"][0], False),
        "birth_date": _date(False),
        "occupation": _text(False, 60),
        "area": _memo(fields["area"][0], False),
        "grid": _text(False, 40),
        "tags": _tags_cell(),
        "branch_code": _code(True),
        "manager_staff_no": _code(False),
        "preferred_channel": _memo(fields["preferred_channel"][0], False),
        "contact_window": _memo(fields["contact_window"][0], False),
        "do_not_contact": _memo(fields["do_not_contact"][0], False),
        "marketing_consent": _memo(fields["marketing_consent"][0], False),
    }


def _id_cell(value: str) -> str | None:
    # checked with type, birth date and gender in the row function
    if _ID_RE.fullmatch(value):
        return value
    if _blank(value):
        return None
    raise Slow


def _tags_cell() -> Cell:
    parse = _fields("customers")["tags"][0]
    return _memo(lambda value: json.dumps(parse(value)), False, "[]")


def _check(kind: str, columns: Sequence[str]) -> None:
    unknown = [name for name in columns if name not in ff._FIELDS[kind]]
    if unknown:
        raise ValueError(f"no fast path for columns {unknown}")


def row_builder(
    kind: str, columns: Sequence[str], stage_columns: Sequence[str]
) -> Callable[..., tuple[Any, ...]] | None:
    """The fast row function for a file of ``kind`` with ``columns`` (English names, file order),
    producing values for ``stage_columns`` (the staging table's columns after ``row_no``);
    ``None`` when ``kind`` has no fast path.

    The function takes ``(cells, lists)`` and returns the staged row as ``COPY`` text (customer
    tags are also appended to ``lists`` as ``(customer_no, tag)``), or raises :class:`Slow`.
    """
    if kind not in FAST_KINDS:
        return None
    _check(kind, columns)
    width = len(columns)
    if kind == "snapshots":
        cells = _snapshot_cells()
        parsers = [cells[name] for name in columns]
        place = itemgetter(*[columns.index(name) if name in columns else width for name in stage_columns])

        def snapshot_row(raw: list[str], lists: list[tuple[str, str]]) -> tuple[Any, ...]:
            if len(raw) != width:
                raise Slow
            values = [parse(value) for parse, value in zip(parsers, raw, strict=True)]
            values.append(None)
            return place(values)  # type: ignore[no-any-return]

        return snapshot_row
    return _customer_builder(columns, stage_columns)


def _customer_builder(columns: Sequence[str], stage_columns: Sequence[str]) -> Callable[..., tuple[Any, ...]]:
    cells = _customer_cells()
    width = len(columns)
    parsers = [cells[name] for name in columns]
    # derived columns live after the file's columns: [*file values, None, birth (derived), gender (derived)]
    at = {name: i for i, name in enumerate(columns)}
    none_at = width
    positions = []
    for name in stage_columns:
        if name == "birth_date":  # as given, or taken from the ID number
            positions.append(width + 1)
        elif name == "gender":
            positions.append(width + 2)
        else:
            positions.append(at.get(name, none_at))
    place = itemgetter(*positions)
    i_type = at.get("type")
    i_id = at.get("id_number")
    i_birth = at.get("birth_date")
    i_gender = at.get("gender")
    i_no = at["customer_no"]
    i_tags = at.get("tags")
    tag_lists: dict[str, list[str]] = {}
    id_births: dict[str, str] = {}
    today = dt.date.today()

    def id_birth(digits: str) -> str:
        """``YYYY-MM-DD`` of an ID number's birth digits, when real, ≥ 1900 and not in the future."""
        known = id_births.get(digits)
        if known is not None:
            return known
        try:
            born = dt.date(int(digits[0:4]), int(digits[4:6]), int(digits[6:8]))
        except ValueError:
            raise Slow from None
        if born.year < 1900 or born > today:
            raise Slow
        text = born.isoformat()
        if len(id_births) < 50_000:
            id_births[digits] = text
        return text

    def customer_row(raw: list[str], lists: list[tuple[str, str]]) -> tuple[Any, ...]:
        if len(raw) != width:
            raise Slow
        values = [parse(value) for parse, value in zip(parsers, raw, strict=True)]
        values.append(None)
        id_number = values[i_id] if i_id is not None else None
        if id_number is None:
            values.append(values[i_birth] if i_birth is not None else None)
            values.append(values[i_gender] if i_gender is not None else None)
        else:
            if i_type is None or values[i_type] != "individual":
                raise Slow  # business / institution: resident ID or credit code, decided by the full path
            if id_number[:2] not in _PROVINCES and id_number[0] != "9":
                raise Slow
            born = id_birth(id_number[6:14])
            given = values[i_birth] if i_birth is not None else None
            if given is not None and given != born:
                raise Slow
            total = sum(map(mul, id_number[:17].encode(), _ID_WEIGHTS)) - _ID_WEIGHT_SUM
            if id_number[17] != _ID_CHECK_CHARS[total % 11]:
                raise Slow
            sex = "M" if int(id_number[16]) % 2 else "F"
            stated = values[i_gender] if i_gender is not None else None
            if stated is not None and stated != sex:
                raise Slow
            values.append(born)
            values.append(sex)
        if i_tags is not None:
            tags = values[i_tags]
            if tags != "[]":
                names = tag_lists.get(tags)  # type: ignore[arg-type]
                if names is None:
                    names = json.loads(tags)  # type: ignore[arg-type]
                    if len(tag_lists) < _CACHE_LIMIT:
                        tag_lists[tags] = names  # type: ignore[index]
                no = values[i_no]
                lists.extend((no, tag) for tag in names)  # type: ignore[misc]
        return place(values)  # type: ignore[no-any-return]

    return customer_row


# Whole-row patterns: cells that need no quoting in CSV (no '"', ',', control characters).
_LINE_CODE = r"[!#-+\--~]{1,32}"
_LINE_MONEY = r"[0-9]{1,16}(?:\.[0-9]{1,2})?"
_LINE_TEXT = r"[^\",\x00-\x1f\x7f]*"


def line_builder(
    kind: str, columns: Sequence[str], copy_columns: Sequence[str]
) -> Callable[[list[str]], str | None] | None:
    """For snapshots, the fastest tier: a function taking the cells of a row and returning the
    row's own text (``","``-joined) when it can be staged as it is — every cell already in the
    form the plain path would stage, found by one regular expression over the row — else
    ``None`` (then :func:`row_builder`'s function is tried). ``copy_columns`` must start with
    ``columns`` (the text holds the file's columns; the others are NULL)."""
    if kind != "snapshots" or list(copy_columns[: len(columns)]) != list(columns):
        return None
    _check(kind, columns)
    patterns = {
        "customer_no": f"({_LINE_CODE})",
        "as_of": "([0-9]{4}-[0-9]{2}-[0-9]{2})",
        "deposit_demand": _LINE_MONEY,  # an empty cell stages 0.00, not NULL: left to row_builder
        "deposit_time": _LINE_MONEY,
        "loan": _LINE_MONEY,
        "wealth": _LINE_MONEY,
        "avg_daily_deposit": f"(?:{_LINE_MONEY})?",  # empty: NULL, as on the plain path
        "risk_status": f"({_LINE_TEXT})",
    }
    match = re.compile(",".join(patterns[name] for name in columns)).fullmatch
    groups = [name for name in columns if patterns[name].startswith("([")]  # the capturing ones
    date_group = groups.index("as_of") + 1
    risk_group = groups.index("risk_status") + 1 if "risk_status" in groups else None
    cells = _snapshot_cells()
    as_of, risk = cells["as_of"], cells["risk_status"]
    suffix = "," * (len(copy_columns) - len(columns))  # NULL for the staging columns the file lacks

    dates: set[str] = set()  # real dates seen (bounded like the caches)
    statuses: set[str] = set()  # risk statuses that stage as written

    def snapshot_line(raw: list[str]) -> str | None:
        text = ",".join(raw)
        found = match(text)
        if found is None:
            return None
        day = found[date_group]
        if day not in dates:
            try:
                as_of(day)
            except Slow:
                return None
            if len(dates) < _CACHE_LIMIT:
                dates.add(day)
        if risk_group is not None:
            status = found[risk_group]
            if status and status not in statuses:
                try:
                    if risk(status) != status:
                        return None  # an alias (正常 → normal) or spaces: staged differently
                except Slow:
                    return None
                if len(statuses) < _CACHE_LIMIT:
                    statuses.add(status)
        return text + suffix if suffix else text

    return snapshot_line
