"""Imports of branches, staff, customers, snapshots and holdings (PRODUCT.md §4.2, §8).

:func:`import_file` reads a CSV or XLSX file through :mod:`customers.fileformats`, validates
every row and applies the valid ones, set-based:

1. **Stage.** Rows stream from the file; each is validated in Python and the clean ones go into
   a temporary staging table of the caller's connection. SQLite: ``BATCH_SIZE`` rows at a time
   by ``executemany``. PostgreSQL: one ``COPY`` fed as the rows are validated (the server loads
   while Python validates), into a staging table without indexes; CSV rows of customers and
   snapshots first try :mod:`customers.fastrows`, which accepts clean values fast and leaves
   every other row to the full validator. Memory holds one chunk, never the file.
2. **Check.** Set-based SQL over the staging table finds duplicate keys within the file and
   references to unknown branches, staff or customers; those rows are reported and dropped.
   (PostgreSQL skips the duplicate query when the staged keys came strictly increasing, as
   exported files do: then no key can repeat.)
3. **Apply.** One ``INSERT … SELECT … ON CONFLICT (natural key) DO UPDATE … WHERE changed`` per
   target table (customer tags and staff roles are kept in sync the same way). Re-importing the
   same file matches every row and updates nothing. On PostgreSQL a target table that is empty
   (checked, locked against concurrent writers, checked again) gets a plain ``INSERT … SELECT``.

Default mode applies the valid rows and reports the others row by row; ``strict=True`` applies
nothing when any row is bad. A file that cannot be used as a whole (empty, undecodable, bad
headers, malformed CSV further down) raises :class:`~customers.fileformats.FileError` before
anything is applied. Nothing here commits: the caller's transaction decides.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import json
import os
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from operator import itemgetter
from pathlib import Path
from typing import IO, Any
from xml.etree import ElementTree

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    and_,
    case,
    cast,
    delete,
    exists,
    func,
    literal,
    not_,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from config.database import now_local
from customers.fastrows import Slow, line_builder, row_builder
from customers.fileformats import (
    EXTRA_KEY,
    HEADERS,
    VALIDATORS,
    FileError,
    RowError,
    _record,
    csv_cells,
    read_rows,
)
from customers.models import Customer, CustomerTag, Holding, Snapshot
from org.models import Branch, Staff, StaffRole

__all__ = [
    "BATCH_SIZE",
    "KINDS",
    "FileError",
    "ImportResult",
    "RowError",
    "import_file",
    "write_report",
]

#: Rows per staging batch.
BATCH_SIZE = 5000
#: File kinds this module imports (events belong to appraisal/).
KINDS = ("branches", "staff", "customers", "snapshots", "holdings")

#: ``progress(rows_read, phase)``; phases are "reading", "checking", "applying".
Progress = Callable[[int, str], None]


@dataclass
class ImportResult:
    """What an import did: rows applied, rows rejected and every problem found (row order)."""

    kind: str
    applied: int = 0
    rejected: int = 0
    errors: list[RowError] = field(default_factory=list)
    rows: int = 0
    strict: bool = False

    @property
    def refused(self) -> bool:
        """Strict mode found a bad row, so nothing was applied."""
        return self.strict and bool(self.errors)

    def summary(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "rows": self.rows,
            "applied": self.applied,
            "rejected": self.rejected,
            "errors": len(self.errors),
            "strict": self.strict,
            "refused": self.refused,
        }


REPORT_COLUMNS = ("row", "column", "value", "reason")


def write_report(errors: Iterable[RowError], out: IO[str]) -> None:
    """The row-by-row report as CSV (row, column, value, reason); cells that a spreadsheet
    would read as a formula are prefixed with ``'``."""
    writer = csv.writer(out)
    writer.writerow(REPORT_COLUMNS)
    for error in errors:
        writer.writerow([error.row, error.column, _neutral(error.value), _neutral(error.reason)])


def _neutral(text: str) -> str:
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


# ---------------------------------------------------------------------------------------------
# Staging tables: one per kind, temporary, on the caller's connection.

_stage_meta = MetaData()


def _stage_table(name: str, *columns: Column[Any]) -> Table:
    return Table(
        name,
        _stage_meta,
        Column("row_no", Integer, primary_key=True, autoincrement=False),
        *columns,
        prefixes=["TEMPORARY"],
    )


def _s(name: str) -> Column[Any]:
    return Column(name, String)


_MONEY = Numeric(18, 2, asdecimal=True)

STAGES: dict[str, Table] = {
    "branches": _stage_table("cf_stage_branches", _s("branch_code"), _s("name"), _s("parent_code")),
    "staff": _stage_table(
        "cf_stage_staff",
        _s("staff_no"),
        _s("name"),
        _s("branch_code"),
        _s("roles"),
        _s("email"),
        _s("phone"),
        Column("hired_on", Date),
    ),
    "customers": _stage_table(
        "cf_stage_customers",
        _s("customer_no"),
        _s("type"),
        _s("name"),
        _s("id_number"),
        _s("credit_code"),
        _s("phone"),
        _s("gender"),
        Column("birth_date", Date),
        _s("occupation"),
        _s("area"),
        _s("grid"),
        Column("tags", Text),
        _s("branch_code"),
        _s("manager_staff_no"),
        _s("preferred_channel"),
        _s("contact_window"),
        Column("do_not_contact", Boolean),
        Column("marketing_consent", Boolean),
    ),
    "snapshots": _stage_table(
        "cf_stage_snapshots",
        _s("customer_no"),
        Column("as_of", Date),
        Column("deposit_demand", _MONEY),
        Column("deposit_time", _MONEY),
        Column("loan", _MONEY),
        Column("wealth", _MONEY),
        Column("avg_daily_deposit", _MONEY),
        _s("risk_status"),
    ),
    "holdings": _stage_table(
        "cf_stage_holdings",
        _s("customer_no"),
        _s("product"),
        Column("opened_on", Date),
        Column("closed_on", Date),
        _s("branch_code"),
    ),
}
#: (key, value) lists of a staged row: customer tags, staff roles.
STAGE_LIST = Table(
    "cf_stage_list",
    _stage_meta,
    Column("key", String, primary_key=True),
    Column("value", String, primary_key=True),
    prefixes=["TEMPORARY"],
)

#: The table each kind lands in, and the row count from which PostgreSQL re-analyses it.
TARGETS = {
    "branches": "branch",
    "staff": "staff",
    "customers": "customer",
    "snapshots": "snapshot",
    "holdings": "holding",
}
ANALYZE_AFTER = 10_000

#: Natural key columns of each kind (in the staging table).
KEYS: dict[str, tuple[str, ...]] = {
    "branches": ("branch_code",),
    "staff": ("staff_no",),
    "customers": ("customer_no",),
    "snapshots": ("customer_no", "as_of"),
    "holdings": ("customer_no", "product"),
}


@dataclass(frozen=True)
class _Reference:
    """A staged column that must name an existing row (or, for ``also_staged``, a row of the file)."""

    column: str
    target: Any  # a Column of the referenced table
    reason: str
    also_staged: str | None = None


REFERENCES: dict[str, list[_Reference]] = {
    "branches": [
        _Reference("parent_code", Branch.__table__.c.code, "unknown parent branch", also_staged="branch_code")
    ],
    "staff": [_Reference("branch_code", Branch.__table__.c.code, "unknown branch")],
    "customers": [
        _Reference("branch_code", Branch.__table__.c.code, "unknown branch"),
        _Reference(
            "manager_staff_no",
            Staff.__table__.c.staff_no,
            "unknown manager (no staff member with this number)",
        ),
    ],
    "snapshots": [_Reference("customer_no", Customer.__table__.c.customer_no, "unknown customer")],
    "holdings": [
        _Reference("customer_no", Customer.__table__.c.customer_no, "unknown customer"),
        _Reference("branch_code", Branch.__table__.c.code, "unknown branch"),
    ],
}


# ---------------------------------------------------------------------------------------------
# The import


def import_file(
    session: Session,
    kind: str,
    source: str | os.PathLike[str] | IO[bytes],
    filename: str,
    *,
    strict: bool = False,
    progress: Progress | None = None,
    batch_size: int = BATCH_SIZE,
) -> ImportResult:
    """Import one file of ``kind`` into the caller's transaction (flushes, never commits).

    ``filename`` decides the format (``.csv`` or ``.xlsx``). Raises
    :class:`~customers.fileformats.FileError` when the file is unusable as a whole; nothing is
    applied then. After a snapshots import the contribution/alerts recompute is enqueued once
    the caller commits.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown import kind {kind!r}; expected one of {', '.join(KINDS)}")
    session.flush()
    if str(filename).lower().endswith(".xlsx"):
        with _as_path(source) as path:
            check_xlsx_archive(path)
            refuse_formulas(path)
            return _import(session, kind, path, filename, strict, progress, batch_size)
    return _import(session, kind, source, filename, strict, progress, batch_size)


def _import(
    session: Session,
    kind: str,
    source: str | os.PathLike[str] | IO[bytes],
    filename: str,
    strict: bool,
    progress: Progress | None,
    batch_size: int,
) -> ImportResult:
    conn = session.connection()
    pg = conn.dialect.name == "postgresql"
    stage = STAGES[kind]
    validate = VALIDATORS[kind]
    result = ImportResult(kind=kind, strict=strict)
    supplied: set[str] | None = None
    staged, in_order = 0, False
    _create_stage(conn, stage, pg)
    try:
        batch: list[tuple[Any, ...]] = []
        lists: list[tuple[str, str]] = []
        names = [column.name for column in stage.columns]
        # SQLite binds neither Decimal nor (without deprecated adapters) date: text, as SQLAlchemy stores them
        as_text = (
            None if pg else [i for i, c in enumerate(stage.columns) if isinstance(c.type, Date | Numeric)]
        )
        if pg:
            staged, supplied, in_order = _stream_pg(
                conn, kind, stage, source, filename, result, progress, batch_size
            )
            rows_in: Iterable[tuple[int, dict[str, Any]]] = ()
        else:
            rows_in = read_rows(source, filename, kind)
        for row, raw in rows_in:
            if supplied is None:
                supplied = {name for name in raw if name != EXTRA_KEY}
            result.rows += 1
            clean, errors = validate(raw, row)
            if clean is None:
                result.errors.extend(errors)
                result.rejected += 1
            else:
                batch.append(_staged(kind, names, row, clean, lists, as_text))
            if len(batch) >= batch_size:
                _stage_rows(conn, stage, batch, lists, pg)
                batch, lists = [], []
            if progress is not None and result.rows % batch_size == 0:
                progress(result.rows, "reading")
        if batch:
            _stage_rows(conn, stage, batch, lists, pg)
        if progress is not None:
            progress(result.rows, "checking")
        if supplied is None:  # a header and no data rows
            return result
        # a file whose keys come in strictly increasing order cannot repeat one: no duplicate check
        duplicates = not (pg and in_order)
        if duplicates:
            _index_stage(conn, kind, stage)
        bad = _check(conn, kind, stage, result, duplicates=duplicates)
        if bad:
            _drop_rows(conn, stage, bad, pg)
            result.rejected += len(bad)
        result.errors.sort(key=lambda e: (e.row, _column_order(kind, e.column)))
        if strict and result.errors:
            return result
        if progress is not None:
            progress(result.rows, "applying")
        if pg:
            result.applied = staged - len(bad)
        else:
            result.applied = conn.scalar(select(func.count()).select_from(stage)) or 0
        if result.applied:
            APPLY[kind](conn, stage, supplied, pg)
            if pg and result.applied >= ANALYZE_AFTER:
                # a bulk load leaves the planner without statistics until autovacuum comes by;
                # the recompute job that follows a snapshots import needs them
                conn.exec_driver_sql(f"ANALYZE {TARGETS[kind]}")
            if kind == "snapshots":
                _after_snapshots(session, conn, stage)
        return result
    finally:
        _drop_stage(conn, stage)
        session.expire_all()


@contextlib.contextmanager
def _as_path(source: str | os.PathLike[str] | IO[bytes]) -> Iterator[Path]:
    """A path to the file: itself, or a temporary copy of a file object."""
    if isinstance(source, str | os.PathLike):
        yield Path(source)
        return
    with tempfile.TemporaryDirectory(prefix="cf-import-") as tmp:
        path = Path(tmp) / "upload.xlsx"
        with open(path, "wb") as copy:
            shutil.copyfileobj(source, copy, 1024 * 1024)
        yield path


#: Limits checked on an XLSX archive before anything parses it (RELIABILITY.md IO-02).
XLSX_MAX_PARTS = 2000
XLSX_MAX_EXPANDED = 1024**3
XLSX_MAX_RATIO = 100
_RATIO_FROM = 16 * 1024**2


def check_xlsx_archive(path: str | os.PathLike[str]) -> None:
    """Refuse, before parsing, an XLSX that is a zip bomb (too many parts, too large expanded, or
    a large part compressed beyond ``XLSX_MAX_RATIO``:1), carries macros, or has a DTD in any XML
    part (real workbooks never do; DTDs are how entity-expansion and XXE attacks come in)."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError):
        return  # read_rows gives the precise message
    with archive:
        parts = archive.infolist()
        if len(parts) > XLSX_MAX_PARTS:
            raise FileError(f"the XLSX archive has {len(parts)} parts (a workbook has a few dozen); refused")
        expanded = sum(part.file_size for part in parts)
        if expanded > XLSX_MAX_EXPANDED:
            raise FileError(
                f"the XLSX would expand to {expanded // 1024**2} MB; refused (save large extracts as CSV)"
            )
        for part in parts:
            name = part.filename.lower()
            if part.file_size > _RATIO_FROM and part.file_size > XLSX_MAX_RATIO * max(part.compress_size, 1):
                raise FileError(
                    f"the XLSX part {part.filename!r} is compressed more than {XLSX_MAX_RATIO}:1;"
                    " refused as a possible zip bomb"
                )
            if name.endswith("vbaproject.bin") or "/activex/" in name:
                raise FileError("the workbook contains macros or ActiveX controls; save it as a plain .xlsx")
            if name.endswith((".xml", ".rels", ".vml")):
                with archive.open(part) as stream:
                    head = stream.read(4096).upper()
                if b"<!DOCTYPE" in head or b"<!ENTITY" in head:
                    raise FileError(
                        f"the XLSX part {part.filename!r} declares a DTD, which workbooks never do; refused"
                    )


_SHEET_NS = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_REL_NS = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"


def refuse_formulas(path: str | os.PathLike[str]) -> None:
    """Refuse an XLSX whose first worksheet holds formulas (their cached results may be stale or
    missing): :class:`FileError` naming the first such cell. Streams the sheet's XML."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError):
        return  # read_rows gives the precise message
    with archive:
        sheet = _first_sheet_path(archive)
        if sheet is None:
            return
        with archive.open(sheet) as stream:
            cell_ref = ""
            for event, element in ElementTree.iterparse(stream, events=("start", "end")):
                if event == "start" and element.tag == f"{_SHEET_NS}c":
                    cell_ref = element.get("r", "")
                elif event == "start" and element.tag == f"{_SHEET_NS}f":
                    where = f"cell {cell_ref}" if cell_ref else "a cell"
                    raise FileError(
                        f"{where} holds a formula: formulas are not imported; copy the sheet and"
                        " paste values only, or save it as CSV"
                    )
                elif event == "end" and element.tag == f"{_SHEET_NS}row":
                    element.clear()


def _first_sheet_path(archive: zipfile.ZipFile) -> str | None:
    try:
        workbook = ElementTree.fromstring(archive.read("xl/workbook.xml"))
        rels = ElementTree.fromstring(archive.read("xl/_rels/workbook.xml.rels"))
    except (KeyError, ElementTree.ParseError):
        return None
    first = workbook.find(f"{_SHEET_NS}sheets/{_SHEET_NS}sheet")
    if first is None:
        return None
    rel_id = first.get(f"{_REL_NS}id")
    for rel in rels:
        if rel.get("Id") == rel_id:
            target = rel.get("Target", "")
            path = target.lstrip("/") if target.startswith("/") else "xl/" + target
            return path if path in archive.namelist() else None
    return None


def _column_order(kind: str, column: str) -> int:
    names = [name for name, _ in HEADERS[kind]]
    return names.index(column) if column in names else len(names)


def _create_stage(conn: Connection, stage: Table, pg: bool = False) -> None:
    for table in (stage, STAGE_LIST):
        table.drop(conn, checkfirst=True)
        if pg and table is stage:
            # no primary key: COPY fills a bare heap; row numbers are unique by construction
            columns = ", ".join(f"{c.name} {c.type.compile(dialect=conn.dialect)}" for c in table.columns)
            conn.exec_driver_sql(f"CREATE TEMPORARY TABLE {table.name} ({columns})")
        else:
            table.create(conn)


def _drop_stage(conn: Connection, stage: Table) -> None:
    try:
        for table in (stage, STAGE_LIST):
            table.drop(conn, checkfirst=True)
    except Exception:  # noqa: BLE001 - an aborted transaction drops its temp tables on rollback
        return


def _index_stage(conn: Connection, kind: str, stage: Table) -> None:
    from sqlalchemy import Index

    name = f"ix_{stage.name}_key"
    index = Index(name, *(stage.c[k] for k in KEYS[kind]))
    index.create(conn)
    stage.indexes.discard(index)


def _staged(
    kind: str,
    names: list[str],
    row: int,
    clean: dict[str, Any],
    lists: list[tuple[str, str]],
    as_text: list[int] | None,
) -> tuple[Any, ...]:
    """The staging row of a clean row, in the stage's column order; list values go to ``lists``."""
    if kind == "customers" and "tags" in clean:
        tags = clean.get("tags") or []
        clean = {**clean, "tags": json.dumps(tags)}
        lists.extend((clean["customer_no"], tag) for tag in tags)
    elif kind == "staff":
        roles = clean.get("roles") or []
        clean = {**clean, "roles": ";".join(roles)}
        lists.extend((clean["staff_no"], role) for role in roles)
    get = clean.get
    if as_text is None:
        return (row, *(get(name) for name in names[1:]))
    values = [get(name) for name in names]
    values[0] = row
    for i in as_text:
        if values[i] is not None:
            values[i] = str(values[i])
    return tuple(values)


class _Chunks:
    """A read-only text stream over a generator of chunks, for ``copy_expert``."""

    def __init__(self, chunks: Iterator[str]) -> None:
        self._chunks = chunks
        #: what the generator raised (the driver only reports that ``read`` failed)
        self.error: BaseException | None = None

    def read(self, size: int = -1) -> str:
        try:
            return next(self._chunks, "")
        except BaseException as exc:
            self.error = exc
            raise

    readline = read


#: Characters of COPY text sent to PostgreSQL at a time (the server parses while we validate).
STREAM_CHUNK = 256 * 1024


def _stream_pg(
    conn: Connection,
    kind: str,
    stage: Table,
    source: str | os.PathLike[str] | IO[bytes],
    filename: str,
    result: ImportResult,
    progress: Progress | None,
    batch_size: int,
) -> tuple[int, set[str] | None, bool]:
    """PostgreSQL: validate the rows and stream the clean ones into the staging table through one
    ``COPY`` (the server loads while Python validates the next rows). CSV rows of the large kinds
    go through :mod:`customers.fastrows` first and fall back to the full validator.

    Returns the rows staged, the columns supplied (``None`` without data rows) and whether the
    staged keys came in strictly increasing order (then no key can repeat).
    """
    validate = VALIDATORS[kind]
    state: dict[str, Any] = {"staged": 0, "supplied": None, "in_order": True}

    fast: Callable[..., tuple[Any, ...]] | None = None
    line: Callable[[list[str]], str | None] | None = None
    rows: Iterator[Any]
    columns: list[str] = []
    names = [column.name for column in stage.columns]
    if str(filename).lower().endswith(".csv"):
        rows = csv_cells(source, kind)
        columns = next(rows)  # an unusable header fails here, before the COPY starts
        state["supplied"] = set(columns)
        # COPY column order: row_no, the file's columns, then the staging columns it lacks
        names = ["row_no", *columns, *(name for name in names[1:] if name not in columns)]
        fast = row_builder(kind, columns, names[1:])
        line = line_builder(kind, columns, names[1:])
    else:
        rows = read_rows(source, filename, kind)
    keyget = itemgetter(*(names.index(key) for key in KEYS[kind]))
    # a line of the file's own text: its key, from the cells
    rawkey = itemgetter(*(names.index(key) - 1 for key in KEYS[kind]))

    def chunks() -> Iterator[str]:
        buffer = io.StringIO()
        write = csv.writer(buffer, lineterminator="\n").writerow
        lists: list[tuple[str, str]] = []
        staged, counted, in_order, last = 0, 0, True, None
        for row_no, raw in rows:
            if line is not None:
                text = line(raw)
                if text is not None:
                    buffer.write(f"{row_no},{text}\n")
                    counted += 1
                    staged += 1
                    if in_order:
                        key = rawkey(raw)
                        if last is not None and not key > last:
                            in_order = False
                        last = key
                    if progress is not None and counted % batch_size == 0:
                        result.rows = counted
                        progress(counted, "reading")
                    if buffer.tell() >= STREAM_CHUNK:
                        yield buffer.getvalue()
                        buffer.seek(0)
                        buffer.truncate()
                    continue
            values: tuple[Any, ...] | None = None
            if fast is not None:
                try:
                    values = (row_no, *fast(raw, lists))
                except Slow:
                    values = None
            if values is None:
                record = _record(columns, raw) if isinstance(raw, list) else raw
                if record is None:
                    continue
                if state["supplied"] is None:
                    state["supplied"] = {name for name in record if name != EXTRA_KEY}
                clean, errors = validate(record, row_no)
                if clean is None:
                    result.errors.extend(errors)
                    result.rejected += 1
                else:
                    values = tuple(map(_copy_value, _staged(kind, names, row_no, clean, lists, None)))
            counted += 1
            if values is not None:
                write(values)
                staged += 1
                if in_order:
                    key = keyget(values)
                    if last is not None and not key > last:
                        in_order = False
                    last = key
                if buffer.tell() >= STREAM_CHUNK:
                    yield buffer.getvalue()
                    buffer.seek(0)
                    buffer.truncate()
                    if lists:
                        lists_writer.writerows(dict.fromkeys(lists))
                        lists.clear()
            if progress is not None and counted % batch_size == 0:
                result.rows = counted
                progress(counted, "reading")
        result.rows = counted
        state["staged"], state["in_order"] = staged, in_order
        if counted == 0:
            state["supplied"] = None
        if lists:
            lists_writer.writerows(dict.fromkeys(lists))
        if buffer.tell():
            yield buffer.getvalue()

    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        with tempfile.SpooledTemporaryFile(
            max_size=8 * 1024 * 1024, mode="w+", encoding="utf-8", newline=""
        ) as lists_file:
            lists_writer = csv.writer(lists_file, lineterminator="\n")
            # a file found unusable half-way aborts the COPY: keep the caller's transaction usable
            cursor.execute("SAVEPOINT cf_stage_copy")
            stream = _Chunks(chunks())
            try:
                cursor.copy_expert(
                    f"COPY {stage.name} ({', '.join(names)}) FROM STDIN WITH (FORMAT csv)", stream
                )
            except BaseException as exc:
                error, stream.error = stream.error, None  # (no reference cycle through the traceback)
                with contextlib.suppress(Exception):  # a broken connection: the first error tells
                    cursor.execute("ROLLBACK TO SAVEPOINT cf_stage_copy")
                if error is None or error is exc:
                    raise
                try:
                    raise error from None
                finally:
                    del error
            cursor.execute("RELEASE SAVEPOINT cf_stage_copy")
            if lists_file.tell():
                lists_file.seek(0)
                _copy_text(cursor, STAGE_LIST, lists_file)
    finally:
        cursor.close()
    return state["staged"], state["supplied"], state["in_order"]


def _copy_text(cursor: Any, table: Table, text: IO[str]) -> None:
    """COPY CSV text into a staging table with a primary key, skipping repeated keys."""
    names = ", ".join(column.name for column in table.columns)
    cursor.execute(f"CREATE TEMP TABLE IF NOT EXISTS cf_stage_copy (LIKE {table.name})")
    cursor.execute("TRUNCATE cf_stage_copy")
    cursor.copy_expert(f"COPY cf_stage_copy ({names}) FROM STDIN WITH (FORMAT csv)", text)
    cursor.execute(f"INSERT INTO {table.name} SELECT * FROM cf_stage_copy ON CONFLICT DO NOTHING")  # noqa: S608


def _stage_rows(
    conn: Connection, stage: Table, rows: list[tuple[Any, ...]], lists: list[tuple[str, str]], pg: bool
) -> None:
    """Write one batch into the staging tables on the driver connection (no per-row SQLAlchemy)."""
    # a key appearing twice in the file puts its list twice: keep the set (the row is refused anyway)
    unique = list(dict.fromkeys(lists))
    if pg:
        _copy(conn, stage, rows)
        if unique:
            _copy(conn, STAGE_LIST, unique, conflict_free=False)
        return
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        columns = [column.name for column in stage.columns]
        marks = ", ".join("?" * len(columns))
        cursor.executemany(
            f"INSERT INTO {stage.name} ({', '.join(columns)}) VALUES ({marks})",  # noqa: S608 - constant names
            rows,
        )
        if unique:
            cursor.executemany(f"INSERT OR IGNORE INTO {STAGE_LIST.name} (key, value) VALUES (?, ?)", unique)  # noqa: S608
    finally:
        cursor.close()


def _copy(conn: Connection, table: Table, rows: list[tuple[Any, ...]], conflict_free: bool = True) -> None:
    """PostgreSQL ``COPY … FROM STDIN`` of ``rows`` into a staging table."""
    names = [column.name for column in table.columns]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerows(tuple(map(_copy_value, row)) for row in rows)
    buffer.seek(0)
    target = table.name
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        if not conflict_free:
            # the list table has a primary key; go through a scratch table to skip repeats
            cursor.execute(f"CREATE TEMP TABLE IF NOT EXISTS cf_stage_copy (LIKE {target})")
            cursor.execute("TRUNCATE cf_stage_copy")
            target = "cf_stage_copy"
        cursor.copy_expert(f"COPY {target} ({', '.join(names)}) FROM STDIN WITH (FORMAT csv)", buffer)
        if not conflict_free:
            cursor.execute(f"INSERT INTO {table.name} SELECT * FROM cf_stage_copy ON CONFLICT DO NOTHING")  # noqa: S608
    finally:
        cursor.close()


def _copy_value(value: Any) -> Any:
    if value is None:
        return ""  # unquoted empty field = NULL in COPY csv; validators never yield ""
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, dt.date | Decimal):
        return str(value)
    return value


def _drop_rows(conn: Connection, stage: Table, rows: set[int], pg: bool = False) -> None:
    ordered = sorted(rows)
    if pg:  # one pass over the (unindexed) staging table; PostgreSQL hashes a long ANY array
        conn.exec_driver_sql(f"DELETE FROM {stage.name} WHERE row_no = ANY(%(rows)s)", {"rows": ordered})  # noqa: S608
        return
    for start in range(0, len(ordered), 500):
        conn.execute(delete(stage).where(stage.c.row_no.in_(ordered[start : start + 500])))


# ---------------------------------------------------------------------------------------------
# Checks over the whole file


def _check(
    conn: Connection, kind: str, stage: Table, result: ImportResult, *, duplicates: bool = True
) -> set[int]:
    """Report duplicate keys (unless ``duplicates`` is false: the caller knows there are none)
    and unknown references; return the row numbers to drop."""
    bad: set[int] = set()
    keys = KEYS[kind]
    other = stage.alias("other")
    same_key = and_(*(other.c[k] == stage.c[k] for k in keys), other.c.row_no != stage.c.row_no)
    first_other = select(func.min(other.c.row_no)).where(same_key).scalar_subquery()
    dups = select(stage.c.row_no, *(stage.c[k] for k in keys), first_other).where(exists().where(same_key))
    for row in conn.execute(dups.order_by(stage.c.row_no)) if duplicates else ():
        row_no, *key, other_row = row
        shown = " / ".join(_text(v) for v in key)
        names = " + ".join(keys)
        result.errors.append(
            RowError(row_no, keys[0], shown, f"duplicate key: the same {names} is also in row {other_row}")
        )
        bad.add(row_no)
    for ref in REFERENCES[kind]:
        column = stage.c[ref.column]
        known: ColumnElement[bool] = exists().where(ref.target == column)
        if ref.also_staged:
            staged = stage.alias("staged")
            known = or_(known, exists().where(staged.c[ref.also_staged] == column))
        query = (
            select(stage.c.row_no, column).where(column.is_not(None), not_(known)).order_by(stage.c.row_no)
        )
        for row_no, value in conn.execute(query):
            result.errors.append(RowError(row_no, ref.column, _text(value), ref.reason))
            bad.add(row_no)
    return bad


def _text(value: Any) -> str:
    return value.isoformat() if isinstance(value, dt.date) else str(value)


# ---------------------------------------------------------------------------------------------
# Applying: one set-based upsert per target table


def _insert(conn: Connection, table: Table) -> Any:
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table)


def _defaults(table: Table, provided: Iterable[str]) -> dict[str, ColumnElement[Any]]:
    """Literal values of the Python-side defaults of ``table``'s columns not in ``provided``."""
    out: dict[str, ColumnElement[Any]] = {}
    given = set(provided)
    for column in table.columns:
        default = column.default
        if column.name in given or default is None:
            continue
        if getattr(default, "is_scalar", False):
            value = default.arg  # type: ignore[attr-defined]
        elif getattr(default, "is_callable", False):
            value = default.arg(None)  # type: ignore[attr-defined]
        else:
            continue
        out[column.name] = literal(value, type_=column.type)
    return out


def _upsert(
    conn: Connection,
    table: Table,
    values: dict[str, ColumnElement[Any]],
    source: Any,
    keys: Sequence[str],
    update_columns: Iterable[str],
    *,
    touch: str | None = None,
    compare: dict[str, Callable[[Any], ColumnElement[Any]]] | None = None,
) -> None:
    """``INSERT INTO table (…) SELECT … FROM source ON CONFLICT (keys) DO UPDATE SET …`` where
    a value differs (so that a re-import updates nothing)."""
    values = {**_defaults(table, values), **values}
    names = list(values)
    select_stmt = select(*(values[name].label(name) for name in names)).select_from(source).where(true())
    stmt = _insert(conn, table).from_select(names, select_stmt)
    if conn.dialect.name == "postgresql" and _empty_and_locked(conn, table):
        # nothing to conflict with (the staged keys are unique): a plain INSERT, as a bare load does
        conn.execute(stmt)
        return
    excluded = stmt.excluded
    columns = [name for name in update_columns if name not in keys]
    if columns:
        compare = compare or {}
        changed = [
            compare[name](table.c[name]).is_distinct_from(compare[name](excluded[name]))
            if name in compare
            else table.c[name].is_distinct_from(excluded[name])
            for name in columns
        ]
        set_: dict[str, Any] = {name: excluded[name] for name in columns}
        if touch:
            set_[touch] = literal(now_local(), type_=table.c[touch].type)
        stmt = stmt.on_conflict_do_update(index_elements=list(keys), set_=set_, where=or_(*changed))
    else:
        stmt = stmt.on_conflict_do_nothing(index_elements=list(keys))
    conn.execute(stmt)


def _empty_and_locked(conn: Connection, table: Table) -> bool:
    """Whether ``table`` is empty, and stays so for others until this transaction ends: when it
    looks empty it is locked against concurrent writers (``SHARE ROW EXCLUSIVE``) and checked
    again (a writer that got there first has committed by then)."""
    probe = select(literal(1)).select_from(table).limit(1)
    if conn.scalar(probe) is not None:
        return False
    conn.exec_driver_sql(f"LOCK TABLE {table.name} IN SHARE ROW EXCLUSIVE MODE")
    return conn.scalar(probe) is None


def _apply_branches(conn: Connection, stage: Table, supplied: set[str], pg: bool) -> None:
    branch = Branch.__table__
    _upsert(
        conn,
        branch,
        {"code": stage.c.branch_code, "name": stage.c.name},
        stage,
        ["code"],
        ["name"],
    )
    if "parent_code" in supplied:
        parent = branch.alias("parent")
        new_parent = (
            select(parent.c.id)
            .select_from(stage.join(parent, parent.c.code == stage.c.parent_code))
            .where(stage.c.branch_code == branch.c.code)
            .scalar_subquery()
        )
        in_file = select(stage.c.branch_code)
        conn.execute(
            update(branch)
            .where(branch.c.code.in_(in_file), branch.c.parent_id.is_distinct_from(new_parent))
            .values(parent_id=new_parent)
        )


_STAFF_FIELDS = ("name", "email", "phone", "hired_on")


def _apply_staff(conn: Connection, stage: Table, supplied: set[str], pg: bool) -> None:
    staff = Staff.__table__
    branch = Branch.__table__
    values: dict[str, ColumnElement[Any]] = {
        "staff_no": stage.c.staff_no,
        "branch_id": branch.c.id,
        **{name: stage.c[name] for name in _STAFF_FIELDS},
    }
    updates = ["branch_id", *(name for name in _STAFF_FIELDS if name in supplied)]
    _upsert(
        conn,
        staff,
        values,
        stage.join(branch, branch.c.code == stage.c.branch_code),
        ["staff_no"],
        updates,
    )
    # roles: directors and checkers of a non-root branch are scoped to it (org.services.set_roles)
    role = StaffRole.__table__
    staged_staff = staff.join(stage, stage.c.staff_no == staff.c.staff_no)
    listed = (
        select(literal(1))
        .select_from(STAGE_LIST.join(staff, staff.c.staff_no == STAGE_LIST.c.key))
        .where(staff.c.id == role.c.staff_id, STAGE_LIST.c.value == role.c.role)
        .correlate(role)
    )
    conn.execute(
        delete(role).where(
            role.c.staff_id.in_(select(staff.c.id).select_from(staged_staff)), not_(listed.exists())
        )
    )
    scoped = case(
        (and_(STAGE_LIST.c.value.in_(("director", "checker")), branch.c.parent_id.is_not(None)), branch.c.id),
        else_=literal(None, type_=Integer),
    )
    source = STAGE_LIST.join(staff, staff.c.staff_no == STAGE_LIST.c.key).join(
        branch, branch.c.id == staff.c.branch_id
    )
    source = source.join(stage, stage.c.staff_no == staff.c.staff_no)
    _upsert(
        conn,
        role,
        {"staff_id": staff.c.id, "role": STAGE_LIST.c.value, "branch_id": scoped},
        source,
        ["staff_id", "role"],
        ["branch_id"],
    )


_CUSTOMER_FIELDS = (
    "type",
    "name",
    "id_number",
    "phone",
    "gender",
    "birth_date",
    "occupation",
    "area",
    "grid",
    "preferred_channel",
    "contact_window",
)


def _apply_customers(conn: Connection, stage: Table, supplied: set[str], pg: bool) -> None:
    customer = Customer.__table__
    branch = Branch.__table__
    manager = Staff.__table__.alias("manager")
    tags: ColumnElement[Any] = func.coalesce(stage.c.tags, "[]")
    if pg:
        tags = cast(tags, JSON)
    values: dict[str, ColumnElement[Any]] = {
        "customer_no": stage.c.customer_no,
        **{name: stage.c[name] for name in _CUSTOMER_FIELDS},
        "credit_code": stage.c.credit_code,
        "tags": tags,
        "branch_id": branch.c.id,
        "manager_id": manager.c.id,
        "do_not_contact": func.coalesce(stage.c.do_not_contact, False),
        "marketing_consent": func.coalesce(stage.c.marketing_consent, True),
    }
    updates = ["branch_id", *(name for name in _CUSTOMER_FIELDS if name in supplied)]
    if "id_number" in supplied:
        updates.append("credit_code")
    if "tags" in supplied:
        updates.append("tags")
    if "manager_staff_no" in supplied:
        updates.append("manager_id")
    updates += [name for name in ("do_not_contact", "marketing_consent") if name in supplied]
    source = stage.join(branch, branch.c.code == stage.c.branch_code).outerjoin(
        manager, manager.c.staff_no == stage.c.manager_staff_no
    )
    _upsert(
        conn,
        customer,
        values,
        source,
        ["customer_no"],
        updates,
        touch="updated_at",
        compare={"tags": lambda column: cast(column, Text)},
    )
    if "tags" not in supplied:
        return
    tag = CustomerTag.__table__
    listed = (
        select(literal(1))
        .select_from(STAGE_LIST.join(customer, customer.c.customer_no == STAGE_LIST.c.key))
        .where(customer.c.id == tag.c.customer_id, STAGE_LIST.c.value == tag.c.tag)
        .correlate(tag)
    )
    staged = select(customer.c.id).select_from(
        customer.join(stage, stage.c.customer_no == customer.c.customer_no)
    )
    conn.execute(delete(tag).where(tag.c.customer_id.in_(staged), not_(listed.exists())))
    source = STAGE_LIST.join(customer, customer.c.customer_no == STAGE_LIST.c.key).join(
        stage, stage.c.customer_no == customer.c.customer_no
    )
    _upsert(
        conn,
        tag,
        {"customer_id": customer.c.id, "tag": STAGE_LIST.c.value},
        source,
        ["customer_id", "tag"],
        [],
    )


_SNAPSHOT_FIELDS = ("deposit_demand", "deposit_time", "loan", "wealth", "avg_daily_deposit", "risk_status")
_ZERO_DEFAULT = ("deposit_demand", "deposit_time", "loan", "wealth")


def _apply_snapshots(conn: Connection, stage: Table, supplied: set[str], pg: bool) -> None:
    snapshot = Snapshot.__table__
    customer = Customer.__table__
    values: dict[str, ColumnElement[Any]] = {"customer_id": customer.c.id, "as_of": stage.c.as_of}
    for name in _SNAPSHOT_FIELDS:
        values[name] = (
            func.coalesce(stage.c[name], Decimal("0.00")) if name in _ZERO_DEFAULT else stage.c[name]
        )
    _upsert(
        conn,
        snapshot,
        values,
        stage.join(customer, customer.c.customer_no == stage.c.customer_no),
        ["customer_id", "as_of"],
        [name for name in _SNAPSHOT_FIELDS if name in supplied],
    )


_HOLDING_FIELDS = ("opened_on", "closed_on")


def _apply_holdings(conn: Connection, stage: Table, supplied: set[str], pg: bool) -> None:
    holding = Holding.__table__
    customer = Customer.__table__
    branch = Branch.__table__
    values: dict[str, ColumnElement[Any]] = {
        "customer_id": customer.c.id,
        "product": stage.c.product,
        "opened_on": stage.c.opened_on,
        "closed_on": stage.c.closed_on,
        "branch_id": branch.c.id,
    }
    updates = [name for name in _HOLDING_FIELDS if name in supplied]
    if "branch_code" in supplied:
        updates.append("branch_id")
    source = stage.join(customer, customer.c.customer_no == stage.c.customer_no).outerjoin(
        branch, branch.c.code == stage.c.branch_code
    )
    _upsert(conn, holding, values, source, ["customer_id", "product"], updates)


APPLY: dict[str, Callable[[Connection, Table, set[str], bool], None]] = {
    "branches": _apply_branches,
    "staff": _apply_staff,
    "customers": _apply_customers,
    "snapshots": _apply_snapshots,
    "holdings": _apply_holdings,
}


def _after_snapshots(session: Session, conn: Connection, stage: Table) -> None:
    """Enqueue the contribution/alerts recompute once the import commits (if that job exists)."""
    try:
        from customers import jobs
    except ImportError:
        return
    after = getattr(jobs, "after_snapshot_import", None)
    if after is None:
        return
    newest = conn.scalar(select(func.max(stage.c.as_of)))
    as_of = newest.isoformat() if isinstance(newest, dt.date) else (str(newest) if newest else None)

    from workflow.outbox import send_after_commit

    send_after_commit(session, after, as_of)  # through the outbox: a crash after the commit re-sends it
