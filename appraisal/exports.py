"""Exports of a run: the payroll sheet and every statement line, as CSV or XLSX (audited by the caller).

Amounts are numbers (XLSX: numeric cells with two decimals; CSV: plain figures); Chinese text is
kept (CSV in UTF-8 with BOM so Excel opens it right); a text cell that starts with = + - or @ is
prefixed with ``'`` so no spreadsheet runs it as a formula.
"""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from appraisal.models import IncentiveRun, StatementLine
from campaigns.models import Campaign
from customers.fileformats import FORMULA_PREFIXES
from org.models import Branch, Staff

PAYROLL_COLUMNS = ("month", "staff_no", "staff_name", "branch_code", "total")
LINE_COLUMNS = (
    "month",
    "staff_no",
    "campaign_code",
    "rule_id",
    "kind",
    "measure",
    "input",
    "amount",
    "explanation",
)


def neutral(value: Any) -> Any:
    """Neutralise text a spreadsheet would take for a formula; numbers and None pass unchanged."""
    if isinstance(value, str) and value[:1] in FORMULA_PREFIXES:
        return "'" + value
    return value


def payroll_rows(session: Session, run: IncentiveRun) -> list[tuple[Any, ...]]:
    """One row per staff member: the total of their lines (one GROUP BY)."""
    rows = session.execute(
        select(Staff.staff_no, Staff.name, Branch.code, func.sum(StatementLine.amount))
        .join(Staff, Staff.id == StatementLine.staff_id)
        .join(Branch, Branch.id == StatementLine.branch_id)
        .where(StatementLine.run_id == run.id)
        .group_by(Staff.staff_no, Staff.name, Branch.code)
        .order_by(Branch.code, Staff.staff_no)
    ).all()
    return [
        (run.month, no, name, code, Decimal(str(total)).quantize(Decimal("0.01")))
        for no, name, code, total in rows
    ]


def line_rows(session: Session, run: IncentiveRun, *, zh: bool = False) -> list[tuple[Any, ...]]:
    rows = session.execute(
        select(
            Staff.staff_no,
            Campaign.code,
            StatementLine.rule_id,
            StatementLine.kind,
            StatementLine.measure,
            StatementLine.input,
            StatementLine.amount,
            StatementLine.explanation,
            StatementLine.explanation_zh,
        )
        .join(Staff, Staff.id == StatementLine.staff_id)
        .outerjoin(Campaign, Campaign.id == StatementLine.campaign_id)
        .where(StatementLine.run_id == run.id)
        .order_by(Staff.staff_no, Campaign.code, StatementLine.rule_id)
    ).all()
    return [
        (
            run.month,
            no,
            code or "",
            rule,
            kind,
            measure or "",
            None if value is None else Decimal(value).normalize(),
            Decimal(amount).quantize(Decimal("0.01")),
            text_zh if zh else text_en,
        )
        for no, code, rule, kind, measure, value, amount, text_en, text_zh in rows
    ]


def render(columns: tuple[str, ...], rows: list[tuple[Any, ...]], fmt: str) -> bytes:
    """The sheet as CSV (UTF-8 with BOM) or XLSX bytes."""
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(columns)
        for row in rows:
            writer.writerow(
                ["" if v is None else (f"{v:f}" if isinstance(v, Decimal) else neutral(v)) for v in row]
            )
        return ("\ufeff" + out.getvalue()).encode("utf-8")
    if fmt != "xlsx":
        raise ValueError(f"format must be csv or xlsx, found {fmt!r}")
    import xlsxwriter

    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(
        buffer, {"in_memory": True, "strings_to_formulas": False, "strings_to_numbers": False}
    )
    sheet = book.add_worksheet("statement")
    bold = book.add_format({"bold": True})
    money = book.add_format({"num_format": "#,##0.00"})
    sheet.write_row(0, 0, columns, bold)
    for r, row in enumerate(rows, start=1):
        for c, value in enumerate(row):
            if value is None:
                sheet.write_blank(r, c, None)
            elif isinstance(value, Decimal):
                sheet.write_number(r, c, value, money if columns[c] in ("total", "amount") else None)
            else:
                sheet.write_string(r, c, str(neutral(value)))
    sheet.set_column(0, len(columns) - 1, 14)
    book.close()
    return buffer.getvalue()


def export_run(session: Session, run: IncentiveRun, fmt: str, lines: bool = False) -> bytes:
    if lines:
        return render(LINE_COLUMNS, line_rows(session, run), fmt)
    return render(PAYROLL_COLUMNS, payroll_rows(session, run), fmt)
