"""The file-format layer of imports (PRODUCT.md §8): reading CSV/XLSX rows and checking their values.

Two steps, both free of the database:

* :func:`read_rows` streams ``(row_number, {column: raw value})`` from a CSV (UTF-8 with or
  without BOM, or GB18030) or XLSX file, mapping English or Chinese headers to the English
  column names of :data:`HEADERS`. A file that cannot be read as a whole raises
  :class:`FileError` (empty, undecodable, not an XLSX, bad or missing headers).
* ``validate_<kind>_row(raw, row=n)`` turns one raw row into a clean dict of typed values
  (``Decimal`` money, ``date`` dates, canonical enum values) or reports every problem as a
  :class:`RowError` (row, column, value, reason).

Row numbers are those a user sees in a spreadsheet: the header is row 1. Keys of columns the
file does not have are absent from both the raw and the clean dict, so an importer can tell
"not supplied" from "supplied empty" (``None``).

Text is stored as given: HTML or ``<script>`` is plain text (escaping is the templates' job), and
a value starting with ``=``, ``+``, ``-`` or ``@`` is kept as is — exports neutralise such cells
(:func:`looks_like_formula`).

Memory: CSV is read in chunks, one row at a time. XLSX is read with python-calamine, which
holds one worksheet in compact native memory (it has no lazy row reader) while rows are turned
into Python objects one at a time; for very large extracts CSV is the format to ask for.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import datetime as dt
import io
import os
import re
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import IO, Any

import python_calamine

from customers.contact import format_window, normalise_channel
from customers.identity import (
    birth_date_from_id,
    gender_from_id,
    normalise_credit_code,
    normalise_id_number,
    normalise_mobile,
    validate_credit_code,
    validate_id_number,
    validate_mobile,
)
from customers.masking import mask_id_number, mask_phone

#: Columns of each import file, in order: (English name, Chinese name), PRODUCT.md §8.
HEADERS: dict[str, list[tuple[str, str]]] = {
    "branches": [("branch_code", "网点编号"), ("name", "网点名称"), ("parent_code", "上级网点编号")],
    "staff": [
        ("staff_no", "员工编号"),
        ("name", "姓名"),
        ("branch_code", "网点编号"),
        ("roles", "角色"),
        ("email", "邮箱"),
        ("phone", "手机号"),
        ("hired_on", "入职日期"),
    ],
    "customers": [
        ("customer_no", "客户号"),
        ("type", "客户类型"),
        ("name", "姓名"),
        ("id_number", "证件号码"),
        ("phone", "手机号"),
        ("gender", "性别"),
        ("birth_date", "出生日期"),
        ("occupation", "职业"),
        ("area", "城乡"),
        ("grid", "网格"),
        ("tags", "标签"),
        ("branch_code", "网点编号"),
        ("manager_staff_no", "管户客户经理"),
        ("preferred_channel", "偏好渠道"),
        ("contact_window", "联系时段"),
        ("do_not_contact", "拒绝营销"),
        ("marketing_consent", "营销同意"),
    ],
    "snapshots": [
        ("customer_no", "客户号"),
        ("as_of", "日期"),
        ("deposit_demand", "活期存款"),
        ("deposit_time", "定期存款"),
        ("loan", "贷款"),
        ("wealth", "理财"),
        ("avg_daily_deposit", "月日均存款"),
        ("risk_status", "风险状态"),
    ],
    "holdings": [
        ("customer_no", "客户号"),
        ("product", "产品"),
        ("opened_on", "开立日期"),
        ("closed_on", "销户日期"),
        ("branch_code", "网点编号"),
    ],
    "events": [
        ("event_id", "事件编号"),
        ("occurred_on", "发生日期"),
        ("staff_no", "员工编号"),
        ("customer_no", "客户号"),
        ("campaign_code", "活动编号"),
        ("measure", "指标"),
        ("quantity", "数量"),
        ("amount", "金额"),
    ],
}

#: Columns a file of each kind must have (the others may be left out).
REQUIRED_COLUMNS: dict[str, frozenset[str]] = {
    "branches": frozenset({"branch_code", "name"}),
    "staff": frozenset({"staff_no", "name", "branch_code", "roles"}),
    "customers": frozenset({"customer_no", "type", "name", "branch_code"}),
    "snapshots": frozenset({"customer_no", "as_of"}),
    "holdings": frozenset({"customer_no", "product"}),
    "events": frozenset({"event_id", "occurred_on", "staff_no", "measure"}),
}
#: Groups of which a file must have at least one column.
ONE_OF_COLUMNS: dict[str, list[tuple[str, ...]]] = {
    "staff": [("email", "phone")],
    "snapshots": [("deposit_demand", "deposit_time", "loan", "wealth")],
    "events": [("quantity", "amount")],
}

#: Key of the raw row holding values found right of the last header column.
EXTRA_KEY = "_extra"
FORMULA_PREFIXES = ("=", "+", "-", "@")
MAX_MONEY = Decimal("1e16")  # NUMERIC(18, 2)

_CSV_CHUNK = 64 * 1024
_COPY_CHUNK = 1024 * 1024
_UNDECODED_RE = re.compile("[\udc80-\udcff]")
# a line as a text file with newline="" yields it: ended by \r\n, \r or \n (or the end of the text)
_LINE_RE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+")
_CONTROL_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_MAX_DISPLAYED_VALUE = 80


class FileError(Exception):
    """The file is refused as a whole; ``problems`` lists every reason found."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        self.problems = problems or [message]
        super().__init__(message if problems is None else f"{message}: {'; '.join(problems)}")


@dataclass(frozen=True, slots=True)
class RowError:
    """One problem of one row: spreadsheet row number, column (English name), value as shown, reason."""

    row: int
    column: str
    value: str
    reason: str


# ---------------------------------------------------------------------------------------------
# Reading


def read_rows(
    source: str | os.PathLike[str] | IO[bytes], filename: str, kind: str | None = None
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Stream the data rows of a CSV or XLSX file as ``(row_number, {column: raw value})``.

    ``source`` is a path or a binary file object (not closed here); ``filename`` decides the
    format by its extension. With ``kind`` (a key of :data:`HEADERS`) headers are mapped to
    English column names and checked; without it the keys are the header cells as written.
    Raw values are ``str`` for CSV and python-calamine values (``str``, ``float``, ``bool``,
    ``date``, ``datetime``) for XLSX; empty cells are ``""``. Rows with no value are skipped.
    This is a generator: :class:`FileError` is raised by the first ``next()`` when the file
    cannot be used, or later when a CSV turns out undecodable or malformed further down.
    """
    if kind is not None and kind not in HEADERS:
        raise ValueError(f"unknown file kind {kind!r}; expected one of {', '.join(HEADERS)}")
    suffix = Path(filename).suffix.lower()
    if suffix == ".csv":
        yield from _read_csv(source, kind)
    elif suffix == ".xlsx":
        yield from _read_xlsx(source, kind)
    else:
        raise FileError(f"unsupported file type {suffix or filename!r}: upload a .csv or .xlsx file")


def _read_csv(
    source: str | os.PathLike[str] | IO[bytes], kind: str | None
) -> Iterator[tuple[int, dict[str, Any]]]:
    cells = csv_cells(source, kind)
    columns: list[str] = next(cells)
    for row_number, row in cells:
        record = _record(columns, row)
        if record is not None:
            yield row_number, record


def csv_cells(source: str | os.PathLike[str] | IO[bytes], kind: str | None) -> Iterator[Any]:
    """The rows of a CSV file as lists of cells: first the column names (mapped as by
    :func:`read_rows`), then ``(row_number, cells)`` for every row after the header, blank ones
    included. :class:`FileError` as in :func:`read_rows`."""
    owned = isinstance(source, str | os.PathLike)
    stream: IO[bytes] = open(source, "rb") if isinstance(source, str | os.PathLike) else source
    try:
        first = stream.read(_CSV_CHUNK)
        if isinstance(first, str):
            raise TypeError("read_rows needs a binary file object (open the file with 'rb')")
        if not first:
            raise FileError("empty file")
        if first.startswith(b"PK\x03\x04"):
            raise FileError("this is an XLSX (zip) file named .csv")
        encoding, prefix_text = _detect_encoding(first)
        header_line = prefix_text.lstrip("\ufeff").partition("\n")[0]
        delimiter = "\t" if "\t" in header_line and "," not in header_line else ","
        # undecodable bytes become lone surrogates, so that the row holding them can be named
        text = io.TextIOWrapper(
            io.BufferedReader(_PrefixedReader(first, stream)),
            encoding=encoding,
            errors="surrogateescape",
            newline="",
        )
        suspect = [False]
        reader = csv.reader(_checked_lines(text, suspect), delimiter=delimiter, strict=True)
        row_number = 0
        undecoded = _UNDECODED_RE.search
        try:
            header: list[str] | None = None
            for row_number, cells in enumerate(reader, start=1):
                if suspect[0] and undecoded("".join(cells)):
                    label = "UTF-8" if encoding == "utf-8-sig" else "GB18030"
                    raise FileError(f"row {row_number} is not valid {label} text; save the file as CSV UTF-8")
                if header is None:
                    header = cells
                    yield _map_header(header, kind, spreadsheet=False)
                    continue
                yield row_number, cells
            if header is None:
                raise FileError("empty file")
        except csv.Error as exc:
            raise FileError(f"malformed CSV near row {row_number + 1}: {exc}") from exc
    finally:
        if owned:
            stream.close()


def _checked_lines(text: IO[str], suspect: list[bool]) -> Iterator[str]:
    """The lines of a text stream, read in large chunks; ``suspect[0]`` turns true (for good)
    once a chunk holds an undecodable byte, so that rows are checked one by one only from there
    on (a row is parsed after the chunk holding it has been read)."""
    tail = ""
    while True:
        chunk = text.read(_CSV_CHUNK)
        if not chunk:
            if tail:
                yield tail
            return
        if not suspect[0] and _UNDECODED_RE.search(chunk):
            suspect[0] = True
        lines = _LINE_RE.findall(tail + chunk)
        # the last piece may be cut in the middle of a line (or between \r and \n)
        tail = lines.pop()
        yield from lines


def _detect_encoding(first: bytes) -> tuple[str, str]:
    """UTF-8 (with or without BOM) when the first chunk decodes as such, else GB18030; and the text."""
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = codecs.getincrementaldecoder(encoding)().decode(first, final=False)
        except UnicodeDecodeError:
            continue
        return encoding, text
    raise FileError("the file is neither UTF-8 nor GB18030 text; save it as CSV UTF-8 or XLSX")


class _PrefixedReader(io.RawIOBase):
    """The already-read first chunk followed by the rest of a stream, without closing the stream."""

    def __init__(self, prefix: bytes, rest: IO[bytes]) -> None:
        self._prefix = memoryview(prefix)
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if self._prefix:
            count = min(len(view), len(self._prefix))
            view[:count] = self._prefix[:count]
            self._prefix = self._prefix[count:]
            return count
        data = self._rest.read(len(view))
        view[: len(data)] = data
        return len(data)


def _read_xlsx(
    source: str | os.PathLike[str] | IO[bytes], kind: str | None
) -> Iterator[tuple[int, dict[str, Any]]]:
    with contextlib.ExitStack() as stack:
        if isinstance(source, str | os.PathLike):
            path = Path(source)
        else:
            # calamine reads a file object whole into Python memory; from a path it reads the zip from disk
            path = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="cf-import-"))) / "upload.xlsx"
            with open(path, "wb") as copy:
                shutil.copyfileobj(source, copy, _COPY_CHUNK)
        if path.stat().st_size == 0:
            raise FileError("empty file")
        if not zipfile.is_zipfile(path):
            raise FileError("not a valid XLSX file (an .xlsx file is a zip archive)")
        try:
            workbook = python_calamine.CalamineWorkbook.from_path(str(path))
        except Exception as exc:  # calamine raises several unrelated types for a broken workbook
            raise FileError(f"not a valid XLSX file: {exc}") from exc
        with workbook:
            if not workbook.sheet_names:
                raise FileError("the workbook has no worksheet")
            try:
                sheet = workbook.get_sheet_by_index(0)
            except Exception as exc:
                raise FileError(f"the first worksheet cannot be read: {exc}") from exc
            if sheet.height == 0 or sheet.start is None:
                raise FileError("empty file: the first worksheet has no rows")
            first_row, first_col = sheet.start
            for (top, left), (bottom, right) in sheet.merged_cell_ranges or ():
                if top <= first_row <= bottom and right > left:
                    raise FileError(
                        f"merged cells in the header row ({_column_letter(left)}–{_column_letter(right)}):"
                        " give every column its own header"
                    )
            rows = sheet.iter_rows()
            header = [_header_text(cell) for cell in next(rows)]
            columns = _map_header(header, kind, spreadsheet=True, first_col=first_col)
            for index, cells in enumerate(rows, start=first_row + 2):
                record = _record(columns, cells)
                if record is not None:
                    yield index, record


def _header_text(cell: Any) -> str:
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))
    return "" if cell is None else str(cell)


def _record(columns: list[str], cells: list[Any]) -> dict[str, Any] | None:
    """Cells keyed by column; ``None`` for a row without any value."""
    if not any(not _is_blank(cell) for cell in cells):
        return None
    record = {column: (cells[i] if i < len(cells) else "") for i, column in enumerate(columns)}
    extra = [cell for cell in cells[len(columns) :] if not _is_blank(cell)]
    if extra:
        record[EXTRA_KEY] = extra
    return record


def _column_letter(index: int, offset: int = 0) -> str:
    """Spreadsheet column letter of a 0-based column index (after ``offset`` leading columns)."""
    number = index + offset + 1
    letters = ""
    while number:
        number, remainder = divmod(number - 1, 26)
        letters = chr(65 + remainder) + letters
    return letters


def _header_key(text: str) -> str:
    return re.sub(r"[\s\-]+", "_", text.replace("\ufeff", "").strip()).lower()


_HEADER_LOOKUP: dict[str, dict[str, str]] = {
    kind: {
        key: english for english, chinese in columns for key in (_header_key(english), _header_key(chinese))
    }
    for kind, columns in HEADERS.items()
}


def _map_header(header: list[str], kind: str | None, *, spreadsheet: bool, first_col: int = 0) -> list[str]:
    """Column names for the header cells, or :class:`FileError` listing every header problem."""
    cells = [str(cell).replace("\ufeff", "").strip() for cell in header]
    while cells and not cells[-1]:
        cells.pop()
    if not cells:
        raise FileError("the first row must hold the column headers; it is empty")

    def where(index: int) -> str:
        return f"column {_column_letter(index, first_col)}" if spreadsheet else f"column {index + 1}"

    problems: list[str] = []
    columns: list[str] = []
    seen: dict[str, int] = {}
    lookup = _HEADER_LOOKUP.get(kind or "")
    for index, cell in enumerate(cells):
        if not cell:
            problems.append(f"{where(index)} has no header (empty or merged header cell)")
            columns.append("")
            continue
        if lookup is None:
            column = cell
        else:
            column = lookup.get(_header_key(cell), "")
            if not column:
                problems.append(f"unknown column {cell!r} in {where(index)}")
        if column and column in seen:
            problems.append(f"column {column!r} appears twice ({where(seen[column])} and {where(index)})")
        seen.setdefault(column, index)
        columns.append(column)
    if kind is not None:
        names = dict(HEADERS[kind])
        missing = [
            f"{name} ({names[name]})"
            for name, _ in HEADERS[kind]
            if name in REQUIRED_COLUMNS[kind] and name not in seen
        ]
        if missing:
            problems.append(f"missing required columns: {', '.join(missing)}")
        for group in ONE_OF_COLUMNS.get(kind, []):
            if not any(name in seen for name in group):
                listed = ", ".join(f"{name} ({names[name]})" for name in group)
                problems.append(f"needs at least one of the columns {listed}")
    if problems:
        raise FileError("the header row is not usable", problems)
    return columns


# ---------------------------------------------------------------------------------------------
# Values. Each parser takes a raw cell value (already known not to be blank) and returns the
# clean value or raises ValueError with the reason shown in the error report.


def _is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def looks_like_formula(value: Any) -> bool:
    """Whether a text would be taken for a formula by a spreadsheet (exports must neutralise it)."""
    return isinstance(value, str) and value.strip().startswith(FORMULA_PREFIXES)


def cell_text(value: Any) -> str:
    """A raw cell as text: spreadsheet numbers lose their ``.0``; 16+ digit numbers are refused.

    Excel keeps 15 significant digits, so an ID number typed into a number cell has lost its
    last digits and cannot be recovered.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if value.is_integer():
            if abs(value) >= 1e15:
                raise ValueError(
                    "a number of more than 15 digits was rounded by the spreadsheet; format the column as text"
                )
            return str(int(value))
        return format(value, ".15g")
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value).strip()


def parse_text(value: Any, max_length: int = 200) -> str:
    """Text as given (trimmed), at most ``max_length`` characters."""
    text = cell_text(value)
    if len(text) > max_length:
        raise ValueError(f"longer than {max_length} characters")
    if _CONTROL_RE.search(text):
        raise ValueError("contains control characters")
    return text


def parse_code(value: Any, max_length: int = 32) -> str:
    """An identifier such as a customer number or branch code: no spaces, at most ``max_length``."""
    text = parse_text(value, max_length)
    if re.search(r"\s", text):
        raise ValueError("a code may not contain spaces")
    return text


def parse_date(value: Any) -> dt.date:
    """An ISO ``YYYY-MM-DD`` date, or a spreadsheet date cell (a date-time must be at midnight)."""
    if isinstance(value, dt.datetime):
        if value.time() != dt.time(0):
            raise ValueError("expected a date without a time of day")
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise ValueError("a number, not a date: write YYYY-MM-DD or format the cell as a date")
    text = str(value).strip()
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        raise ValueError("expected a date YYYY-MM-DD")
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ValueError("not a real date") from None


_MONEY_RE = re.compile(r"[+-]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?")


def parse_money(value: Any) -> Decimal:
    """An amount with at most two decimals as ``Decimal`` (never through binary floating point).

    Accepts ``1234.5``, ``1,234.50``, a leading ``¥``; a spreadsheet number is read with the
    15 significant digits the spreadsheet shows, then checked like text.
    """
    if isinstance(value, bool):
        raise ValueError("expected an amount, found a true/false value")
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError("expected an amount")
        text = format(value, ".15g")
        if "e" in text:
            text = format(Decimal(text), "f")
    elif isinstance(value, int | Decimal):
        text = str(value)
    else:
        text = str(value).strip().lstrip("¥￥").strip()
        if not _MONEY_RE.fullmatch(text):
            raise ValueError("expected an amount such as 1234.56")
        text = text.replace(",", "")
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise ValueError("expected an amount such as 1234.56") from None
    cents = amount.quantize(Decimal("0.01"))
    if cents != amount:
        raise ValueError("more than two decimals")
    if abs(cents) >= MAX_MONEY:
        raise ValueError("amount too large")
    return cents


def parse_non_negative_money(value: Any) -> Decimal:
    """:func:`parse_money` that refuses negative amounts (balances)."""
    amount = parse_money(value)
    if amount < 0:
        raise ValueError("a balance cannot be negative")
    return amount


def parse_int(value: Any) -> int:
    """A whole number (``3``, ``3.0`` from a spreadsheet)."""
    if isinstance(value, bool):
        raise ValueError("expected a whole number")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("expected a whole number")
        return int(value)
    text = str(value).strip()
    if not re.fullmatch(r"[+-]?\d+", text):
        raise ValueError("expected a whole number")
    return int(text)


def _enum(name: str, aliases: Mapping[str, str]) -> Callable[[Any], str]:
    expected = (
        "/".join(dict.fromkeys(aliases.values())) + " or " + "/".join(k for k in aliases if not k.isascii())
    )

    def parse(value: Any) -> str:
        text = cell_text(value)
        found = aliases.get(text) or aliases.get(text.lower())
        if found is None:
            raise ValueError(f"unknown {name}: expected {expected}")
        return found

    parse.__name__ = f"normalise_{name.replace(' ', '_')}"
    parse.__doc__ = f"Canonical {name} from English or Chinese; ``ValueError`` when unknown."
    return parse


#: 个人/个体工商户/企业/事业单位 → individual/business/business/institution.
normalise_customer_type = _enum(
    "customer type",
    {
        "individual": "individual",
        "business": "business",
        "institution": "institution",
        "个人": "individual",
        "个体工商户": "business",
        "企业": "business",
        "事业单位": "institution",
    },
)
#: 男/女 → M/F.
normalise_gender = _enum("gender", {"m": "M", "f": "F", "male": "M", "female": "F", "男": "M", "女": "F"})
#: 城镇/农村 → urban/rural.
normalise_area = _enum("area", {"urban": "urban", "rural": "rural", "城镇": "urban", "农村": "rural"})
_BOOLEANS = {
    "true": True,
    "false": False,
    "yes": True,
    "no": False,
    "y": True,
    "n": False,
    "1": True,
    "0": False,
    "是": True,
    "否": False,
}


def parse_bool(value: Any) -> bool:
    """是/否, true/false, yes/no, 1/0 or a spreadsheet TRUE/FALSE cell."""
    if isinstance(value, bool):
        return value
    found = _BOOLEANS.get(cell_text(value).lower())
    if found is None:
        raise ValueError("expected 是/否 or true/false")
    return found


#: Chinese spellings of the tags that campaign populations and contact rules use.
TAG_ALIASES: dict[str, str] = {
    "返乡农民工": "returning_migrant_worker",
    "个体工商户": "self_employed",
    "个体户": "self_employed",
    "公务员": "civil_servant",
    "农户": "farmer",
    "农民": "farmer",
}


def parse_tags(value: Any) -> list[str]:
    """``返乡农民工;个体户`` → ``["returning_migrant_worker", "self_employed"]`` (``;`` or ``；``)."""
    tags: list[str] = []
    for part in re.split(r"[;；]", cell_text(value)):
        tag = part.strip()
        if not tag:
            continue
        tag = TAG_ALIASES.get(tag, tag)
        if len(tag) > 40:
            raise ValueError(f"tag {tag[:40]!r}… is longer than 40 characters")
        if tag not in tags:
            tags.append(tag)
    return tags


def parse_window(value: Any) -> str:
    """A contact window in canonical form ``HH:MM-HH:MM``."""
    return format_window(cell_text(value))


def parse_channel(value: Any) -> str:
    """A contact channel: phone/visit/branch/wechat/sms or 电话/上门/网点/微信/短信."""
    channel = normalise_channel(cell_text(value))
    if channel is None:
        raise ValueError("expected a channel")
    return channel


def parse_mobile(value: Any) -> str:
    """An 11-digit mobile number, separators and +86 removed."""
    errors = validate_mobile(cell_text(value))
    if errors:
        raise ValueError(errors[0])
    return normalise_mobile(cell_text(value))


_ROLE_ALIASES = {
    "director": "director",
    "manager": "manager",
    "checker": "checker",
    "admin": "admin",
    "联社领导": "director",
    "信用社主任": "director",
    "主任": "director",
    "客户经理": "manager",
    "员工": "manager",
    "绩效管理员": "checker",
    "复核员": "checker",
    "系统管理员": "admin",
}


def parse_roles(value: Any) -> list[str]:
    """``director;manager`` or ``信用社主任;客户经理`` → ``["director", "manager"]``."""
    roles: list[str] = []
    for part in re.split(r"[;；,，]", cell_text(value)):
        text = part.strip()
        if not text:
            continue
        role = _ROLE_ALIASES.get(text) or _ROLE_ALIASES.get(text.lower())
        if role is None:
            raise ValueError(f"unknown role {text!r}: expected director;manager;checker;admin")
        if role not in roles:
            roles.append(role)
    if not roles:
        raise ValueError("at least one role is required")
    return roles


def parse_email(value: Any) -> str:
    """An e-mail address (one ``@``, a dot in the domain)."""
    text = parse_text(value, 254)
    if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", text):
        raise ValueError("not an e-mail address")
    return text


_PRODUCT_ALIASES = {
    "手机银行": "mobile_banking",
    "网上银行": "online_banking",
    "网银": "online_banking",
    "代发工资": "payroll_account",
    "代发工资账户": "payroll_account",
    "借记卡": "debit_card",
    "定期存款": "time_deposit",
    "理财": "wealth",
    "贷款": "loan",
}


def parse_product(value: Any) -> str:
    """A product identifier (``mobile_banking``, ``payroll_account`` …) or its Chinese name."""
    text = cell_text(value)
    product = _PRODUCT_ALIASES.get(text, text.lower())
    if not re.fullmatch(r"[a-z][a-z0-9_]{0,29}", product):
        raise ValueError("expected a product such as mobile_banking, payroll_account, debit_card")
    return product


_RISK_ALIASES = {"正常": "normal", "逾期": "overdue", "冻结": "frozen", "不良": "non_performing"}


def parse_risk_status(value: Any) -> str:
    """A risk status: normal/overdue/frozen (正常/逾期/冻结) or another core-banking code."""
    text = parse_text(value, 20)
    return _RISK_ALIASES.get(text, text)


# ---------------------------------------------------------------------------------------------
# Rows


Parser = Callable[[Any], Any]


def _text(max_length: int) -> Parser:
    return lambda value: parse_text(value, max_length)


def _code(max_length: int = 32) -> Parser:
    return lambda value: parse_code(value, max_length)


# column → (parser, value required). Columns absent from this table are never present.
_FIELDS: dict[str, dict[str, tuple[Parser, bool]]] = {
    "branches": {
        "branch_code": (_code(), True),
        "name": (_text(120), True),
        "parent_code": (_code(), False),
    },
    "staff": {
        "staff_no": (_code(), True),
        "name": (_text(60), True),
        "branch_code": (_code(), True),
        "roles": (parse_roles, True),
        "email": (parse_email, False),
        "phone": (parse_mobile, False),
        "hired_on": (parse_date, False),
    },
    "customers": {
        "customer_no": (_code(), True),
        "type": (normalise_customer_type, True),
        "name": (_text(120), True),
        "id_number": (cell_text, False),  # checked against type and birth date below
        "phone": (parse_mobile, False),
        "gender": (normalise_gender, False),
        "birth_date": (parse_date, False),
        "occupation": (_text(60), False),
        "area": (normalise_area, False),
        "grid": (_text(40), False),
        "tags": (parse_tags, False),
        "branch_code": (_code(), True),
        "manager_staff_no": (_code(), False),
        "preferred_channel": (parse_channel, False),
        "contact_window": (parse_window, False),
        "do_not_contact": (parse_bool, False),
        "marketing_consent": (parse_bool, False),
    },
    "snapshots": {
        "customer_no": (_code(), True),
        "as_of": (parse_date, True),
        "deposit_demand": (parse_non_negative_money, False),
        "deposit_time": (parse_non_negative_money, False),
        "loan": (parse_non_negative_money, False),
        "wealth": (parse_non_negative_money, False),
        "avg_daily_deposit": (parse_non_negative_money, False),
        "risk_status": (parse_risk_status, False),
    },
    "holdings": {
        "customer_no": (_code(), True),
        "product": (parse_product, True),
        "opened_on": (parse_date, False),
        "closed_on": (parse_date, False),
        "branch_code": (_code(), False),
    },
    "events": {
        "event_id": (_code(64), True),
        "occurred_on": (parse_date, True),
        "staff_no": (_code(), True),
        "customer_no": (_code(), False),
        "campaign_code": (_code(), False),
        "measure": (_code(40), True),
        "quantity": (parse_int, False),
        "amount": (parse_money, False),
    },
}
# value of an empty cell, where it is not None
_EMPTY_DEFAULTS: dict[str, dict[str, Callable[[], Any]]] = {
    # a snapshot states balances: an empty balance cell is zero
    "snapshots": {
        name: lambda: Decimal("0.00") for name in ("deposit_demand", "deposit_time", "loan", "wealth")
    },
    "customers": {"tags": list},
}
_SHOWN_MASKED: dict[str, Callable[[str | None], str]] = {"id_number": mask_id_number, "phone": mask_phone}


def _shown(column: str, value: Any) -> str:
    """A raw value as it may appear in an error report: personal identifiers masked, long text cut."""
    try:
        text = cell_text(value)
    except ValueError:
        text = repr(value)
    if column in _SHOWN_MASKED:
        text = _SHOWN_MASKED[column](text)
    return text if len(text) <= _MAX_DISPLAYED_VALUE else text[: _MAX_DISPLAYED_VALUE - 1] + "…"


def _validate(kind: str, raw: Mapping[str, Any], row: int) -> tuple[dict[str, Any], list[RowError]]:
    clean: dict[str, Any] = {}
    errors: list[RowError] = []
    defaults = _EMPTY_DEFAULTS.get(kind, {})
    for column, (parse, required) in _FIELDS[kind].items():
        if column not in raw:
            continue
        value = raw[column]
        if _is_blank(value):
            if required:
                errors.append(RowError(row, column, "", "a value is required"))
            clean[column] = defaults[column]() if column in defaults else None
            continue
        try:
            clean[column] = parse(value)
        except ValueError as exc:
            errors.append(RowError(row, column, _shown(column, value), str(exc)))
    extra = raw.get(EXTRA_KEY)
    if extra:
        errors.append(RowError(row, "", _shown("", extra[0]), "value right of the last header column"))
    return clean, errors


_COLUMN_ORDER = {kind: {name: i for i, (name, _) in enumerate(columns)} for kind, columns in HEADERS.items()}


def _result(
    kind: str, clean: dict[str, Any], errors: list[RowError]
) -> tuple[dict[str, Any] | None, list[RowError]]:
    """The clean row, or ``None`` and the errors in the order of the file's columns."""
    if not errors:
        return clean, errors
    order = _COLUMN_ORDER[kind]
    return None, sorted(errors, key=lambda error: order.get(error.column, len(order)))


def validate_branch_row(raw: Mapping[str, Any], row: int = 0) -> tuple[dict[str, Any] | None, list[RowError]]:
    """Check one branches row; a branch cannot be its own parent."""
    clean, errors = _validate("branches", raw, row)
    if clean.get("parent_code") and clean.get("parent_code") == clean.get("branch_code"):
        errors.append(RowError(row, "parent_code", clean["parent_code"], "a branch cannot be its own parent"))
    return _result("branches", clean, errors)


def validate_staff_row(raw: Mapping[str, Any], row: int = 0) -> tuple[dict[str, Any] | None, list[RowError]]:
    """Check one staff row; a staff member needs an e-mail address or a mobile number."""
    clean, errors = _validate("staff", raw, row)
    failed = {error.column for error in errors}
    if not clean.get("email") and not clean.get("phone") and not failed & {"email", "phone"}:
        errors.append(RowError(row, "email", "", "an e-mail address or a mobile number is required"))
    return _result("staff", clean, errors)


def validate_customer_row(
    raw: Mapping[str, Any], row: int = 0
) -> tuple[dict[str, Any] | None, list[RowError]]:
    """Check one customers row.

    For an individual the ID number must be a valid resident ID agreeing with ``birth_date``
    and ``gender``; an empty birth date or gender is taken from it. For a business or an
    institution the ``id_number`` column may hold a resident ID (个体工商户 registered under the
    owner) or a unified social credit code, which goes to ``credit_code``.
    """
    clean, errors = _validate("customers", raw, row)
    id_number = clean.get("id_number")
    if not id_number:
        return _result("customers", clean, errors)
    shown = _shown("id_number", id_number)
    value = normalise_id_number(id_number)
    failed = {error.column for error in errors}
    if clean.get("type") == "individual":
        birth = clean.get("birth_date") if "birth_date" not in failed else None
        errors.extend(
            RowError(row, "id_number", shown, reason) for reason in validate_id_number(value, birth)
        )
        clean["id_number"] = value
        if not validate_id_number(value):
            if clean.get("birth_date") is None and "birth_date" not in failed:
                clean["birth_date"] = birth_date_from_id(value)
            id_gender = gender_from_id(value)
            if clean.get("gender") is None and "gender" not in failed:
                clean["gender"] = id_gender
            elif clean.get("gender") not in (None, id_gender):
                errors.append(
                    RowError(
                        row, "gender", cell_text(raw["gender"]), f"does not match the ID number ({id_gender})"
                    )
                )
    elif "type" not in failed:
        if not validate_id_number(value):
            clean["id_number"] = value
        elif not validate_credit_code(value):
            clean["id_number"] = None
            clean["credit_code"] = normalise_credit_code(value)
        else:
            errors.append(
                RowError(
                    row, "id_number", shown, "expected a resident ID number or a unified social credit code"
                )
            )
    return _result("customers", clean, errors)


def validate_snapshot_row(
    raw: Mapping[str, Any], row: int = 0
) -> tuple[dict[str, Any] | None, list[RowError]]:
    """Check one snapshots row: a date, non-negative balances with at most two decimals."""
    clean, errors = _validate("snapshots", raw, row)
    return _result("snapshots", clean, errors)


def validate_holding_row(
    raw: Mapping[str, Any], row: int = 0
) -> tuple[dict[str, Any] | None, list[RowError]]:
    """Check one holdings row; a product cannot be closed before it was opened."""
    clean, errors = _validate("holdings", raw, row)
    opened, closed = clean.get("opened_on"), clean.get("closed_on")
    if opened and closed and closed < opened:
        errors.append(
            RowError(row, "closed_on", closed.isoformat(), f"before the opening date {opened.isoformat()}")
        )
    return _result("holdings", clean, errors)


def validate_event_row(raw: Mapping[str, Any], row: int = 0) -> tuple[dict[str, Any] | None, list[RowError]]:
    """Check one events row; an event carries a quantity or an amount."""
    clean, errors = _validate("events", raw, row)
    failed = {error.column for error in errors}
    if clean.get("quantity") is None and clean.get("amount") is None and not failed & {"quantity", "amount"}:
        errors.append(RowError(row, "quantity", "", "a quantity or an amount is required"))
    return _result("events", clean, errors)


#: The row validator of each file kind.
VALIDATORS: dict[str, Callable[..., tuple[dict[str, Any] | None, list[RowError]]]] = {
    "branches": validate_branch_row,
    "staff": validate_staff_row,
    "customers": validate_customer_row,
    "snapshots": validate_snapshot_row,
    "holdings": validate_holding_row,
    "events": validate_event_row,
}


def iter_validated(
    source: str | os.PathLike[str] | IO[bytes], filename: str, kind: str
) -> Iterator[tuple[int, dict[str, Any] | None, list[RowError]]]:
    """:func:`read_rows` and the kind's validator together: ``(row, clean or None, errors)``."""
    validate = VALIDATORS[kind]
    for row, raw in read_rows(source, filename, kind):
        clean, errors = validate(raw, row)
        yield row, clean, errors
