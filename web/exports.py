"""Safe table downloads (XLSX or CSV) for every area: formula cells are neutralised.

``send_table(rows, headers, filename, fmt)`` answers a download. A text cell starting with
``= + - @`` (or a tab / carriage return) is prefixed with ``'`` so that a spreadsheet shows it
as text instead of running it (CSV/formula injection). XLSX cells are always written as values
(strings as strings, numbers as numbers), never as formulas. Masking and auditing are the
caller's job (see web/customers.py for the pattern).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from flask import Response

_DANGEROUS = ("=", "+", "-", "@", "\t", "\r")

FORMATS = ("csv", "xlsx")


def neutralise(value: Any) -> Any:
    """A cell value safe for spreadsheets: text starting with = + - @ (tab, CR) gets a leading '."""
    if isinstance(value, str) and value.startswith(_DANGEROUS):
        return "'" + value
    return value


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(neutralise(value) if isinstance(value, str) else value)


def csv_bytes(rows: Iterable[Sequence[Any]], headers: Sequence[str]) -> bytes:
    """UTF-8 CSV with a BOM (Excel opens it with the right encoding)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow([_cell_text(h) for h in headers])
    for row in rows:
        writer.writerow([_cell_text(v) for v in row])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def xlsx_bytes(rows: Iterable[Sequence[Any]], headers: Sequence[str], sheet: str = "data") -> bytes:
    """An XLSX workbook with one sheet; strings are written as strings (never formulas)."""
    import xlsxwriter

    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf, {"in_memory": True, "strings_to_formulas": False, "strings_to_urls": False})
    ws = wb.add_worksheet(sheet[:31])
    bold = wb.add_format({"bold": True})
    date_fmt = wb.add_format({"num_format": "yyyy-mm-dd"})
    for c, h in enumerate(headers):
        ws.write_string(0, c, str(h), bold)
    r = 0
    for r, row in enumerate(rows, start=1):
        for c, v in enumerate(row):
            if v is None:
                continue
            if isinstance(v, bool):
                ws.write_boolean(r, c, v)
            elif isinstance(v, int | Decimal):
                ws.write_number(r, c, float(v) if isinstance(v, Decimal) else v)  # Excel cells are doubles
            elif isinstance(v, dt.datetime):
                ws.write_string(r, c, v.strftime("%Y-%m-%d %H:%M:%S"))
            elif isinstance(v, dt.date):
                ws.write_datetime(r, c, dt.datetime.combine(v, dt.time()), date_fmt)
            else:
                ws.write_string(r, c, str(neutralise(str(v))))
    ws.freeze_panes(1, 0)
    wb.close()
    return buf.getvalue()


def send_table(
    rows: Iterable[Sequence[Any]], headers: Sequence[str], filename: str, fmt: str = "csv"
) -> Response:
    """A download of ``rows`` as ``fmt`` ("csv" or "xlsx"); ``filename`` without extension."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}")
    if fmt == "xlsx":
        body = xlsx_bytes(rows, headers)
        mimetype = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    else:
        body = csv_bytes(rows, headers)
        mimetype = "text/csv; charset=utf-8"
    name = f"{filename}.{fmt}"
    ascii_name = "".join(ch if ch.isascii() and (ch.isalnum() or ch in "-_.") else "_" for ch in name)
    resp = Response(body, mimetype=mimetype)
    resp.headers["Content-Disposition"] = f"attachment; filename={ascii_name}; filename*=UTF-8''{quote(name)}"
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["X-Content-Type-Options"] = "nosniff"
    return resp
