"""web/exports.py: formula neutralisation, CSV with BOM, XLSX cells written as values."""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal

import pytest
from openpyxl import load_workbook

from web.exports import csv_bytes, neutralise, send_table, xlsx_bytes

ROWS = [
    [
        "=1+1",
        "+86 138",
        "-5",
        "@SUM(A1)",
        "\tTAB",
        "张三",
        Decimal("12.50"),
        7,
        dt.date(2026, 11, 30),
        None,
        True,
    ],
    ["plain", "a=b", "", "", "", "", Decimal("0"), 0, None, None, False],
]
HEADERS = ["a", "b", "c", "d", "e", "name", "money", "n", "day", "none", "flag"]


@pytest.mark.parametrize("value", ["=1+1", "+1", "-1", "@x", "\tx", "\rx"])
def test_dangerous_text_gets_a_quote(value):
    assert neutralise(value) == "'" + value


@pytest.mark.parametrize("value", ["abc", "a=b", "", "张三", 5, Decimal("-5"), None])
def test_other_values_are_kept(value):
    assert neutralise(value) == value


def test_csv_has_bom_and_neutralised_cells():
    data = csv_bytes(ROWS, HEADERS)
    assert data.startswith("\ufeff".encode())
    text = data.decode("utf-8-sig")
    first = text.splitlines()[1]
    assert first.startswith("'=1+1,'+86 138,'-5,'@SUM(A1),'\tTAB,张三,12.50,7,2026-11-30,,1")


def test_xlsx_cells_are_values_not_formulas():
    ws = load_workbook(io.BytesIO(xlsx_bytes(ROWS, HEADERS))).active
    values = [[c.value for c in row] for row in ws.iter_rows()]
    assert values[0] == HEADERS
    assert values[1][:6] == ["'=1+1", "'+86 138", "'-5", "'@SUM(A1)", "'\tTAB", "张三"]
    assert values[1][6] == 12.5 and values[1][7] == 7 and values[1][10] is True
    assert all(c.data_type != "f" for row in ws.iter_rows() for c in row)


def test_send_table_refuses_unknown_format():
    with pytest.raises(ValueError, match="csv"):
        send_table([], ["a"], "x", "pdf")
