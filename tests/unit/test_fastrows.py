"""The fast path of row validation (customers/fastrows.py) against the plain path.

For every row of many generated ones — good rows, rows with one odd or bad value, files with
columns left out — the fast path must either stand aside (``Slow`` / ``None``) or stage exactly
what the plain path (``fileformats.validate_*_row`` + ``imports._staged``) stages.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import random
from decimal import Decimal

import pytest

from customers.fastrows import Slow, line_builder, row_builder
from customers.fileformats import HEADERS, VALIDATORS, _record, csv_cells
from customers.identity import make_id_number
from customers.imports import STAGES, _copy_value, _staged

MONEY_COLUMNS = {"deposit_demand", "deposit_time", "loan", "wealth", "avg_daily_deposit"}


def plain(kind: str, columns: list[str], names: list[str], cells: list[str], row: int = 2):
    """What the plain path stages for ``cells``: (COPY values, lists) or None when refused."""
    record = _record(columns, cells)
    assert record is not None
    clean, errors = VALIDATORS[kind](record, row)
    if clean is None:
        assert errors
        return None
    lists: list[tuple[str, str]] = []
    values = tuple(map(_copy_value, _staged(kind, names, row, clean, lists, None)))
    return tuple(None if v == "" else v for v in values[1:]), lists


def same(names: list[str], fast: tuple, expected: tuple) -> bool:
    for name, a, b in zip(names, fast, expected, strict=True):
        if name in MONEY_COLUMNS and a is not None and b is not None:
            if Decimal(a) != Decimal(b):
                return False
        elif a != b:
            return False
    return True


def copy_names(kind: str, columns: list[str]) -> list[str]:
    names = [c.name for c in STAGES[kind].columns]
    return ["row_no", *columns, *(n for n in names[1:] if n not in columns)]


SNAPSHOT_VALUES = {
    "customer_no": [
        "C001",
        "C00000123",
        " C001",
        "C 01",
        "",
        "客户1",
        "x" * 32,
        "x" * 33,
        'C"1',
        "C,1",
        "=1+2",
    ],
    "as_of": [
        "2026-10-31",
        "2024-02-29",
        "2026-02-30",
        "2026-1-01",
        " 2026-10-31",
        "",
        "2026/10/31",
        "0000-01-01",
    ],
    "deposit_demand": [
        "0",
        "0.00",
        "12.5",
        "12.345",
        "12.340",
        "1,234.50",
        "¥12",
        "-1",
        "+1",
        "",
        " ",
        " 7 ",
        "9999999999999999.99",
        "10000000000000000",
        "00012",
        ".5",
        "1e3",
        "١٢",
    ],
    "risk_status": [
        "normal",
        "overdue",
        "正常",
        " normal",
        "",
        "x" * 20,
        "x" * 21,
        "a,b",
        'a"b',
        "bad\x01",
        "custom_code",
    ],
}
for _name in ("deposit_time", "loan", "wealth", "avg_daily_deposit"):
    SNAPSHOT_VALUES[_name] = SNAPSHOT_VALUES["deposit_demand"]


def _pick(rng: random.Random, values: list[str], clean: float = 0.7) -> str:
    # mostly the first (clean) spellings, so that whole rows reach the fast tiers too
    return values[rng.randrange(2)] if rng.random() < clean else rng.choice(values)


@pytest.mark.parametrize(
    "columns",
    [
        [name for name, _ in HEADERS["snapshots"]],
        ["customer_no", "as_of", "deposit_demand", "deposit_time", "loan", "wealth", "risk_status"],
        ["as_of", "customer_no", "wealth"],
        ["customer_no", "as_of", "avg_daily_deposit", "loan"],
    ],
)
def test_snapshot_fast_tiers_stage_what_the_plain_path_stages(columns):
    rng = random.Random(3)
    names = copy_names("snapshots", columns)
    fast = row_builder("snapshots", columns, names[1:])
    line = line_builder("snapshots", columns, names[1:])
    assert fast is not None and line is not None
    seen = {"line": 0, "fast": 0, "slow": 0}
    for _ in range(4000):
        cells = [_pick(rng, SNAPSHOT_VALUES[name]) for name in columns]
        expected = plain("snapshots", columns, names, cells)
        text = line(cells)
        if text is not None:
            seen["line"] += 1
            parsed = next(csv.reader([text]))
            assert expected is not None, cells
            assert same(names[1:], tuple(v or None for v in parsed), expected[0]), (cells, parsed, expected)
        try:
            got = fast(cells, [])
        except Slow:
            seen["slow"] += 1
            continue
        seen["fast"] += 1
        assert expected is not None, cells
        assert same(names[1:], got, expected[0]), (cells, got, expected)
    assert min(seen.values()) > 100, seen


def _id(rng: random.Random) -> tuple[str, str, str]:
    born = dt.date(1950, 1, 1) + dt.timedelta(days=rng.randrange(0, 365 * 60))
    seq = rng.randrange(1000)
    number = make_id_number("510722", born, seq)
    return number, born.isoformat(), "M" if seq % 2 else "F"


def _customer_cells(rng: random.Random, columns: list[str]) -> list[str]:
    number, born, sex = _id(rng)
    odd_ids = [
        number[:-1] + ("0" if number[-1] != "0" else "1"),  # checksum
        number.lower(),
        number[:6] + " " + number[6:],
        number[:15],
        "990722" + number[6:],  # a leading 9: permanent residence ID (valid region rule)
        "000722" + number[6:],
        make_id_number("510722", dt.date(2099, 1, 1), 1),
        make_id_number("510722", dt.date(1899, 12, 31), 1),
        "91350100M000100Y43",
        "",
    ]
    values = {
        "customer_no": [f"C{rng.randrange(10**6):06d}", " C1", "C 1", "", "客户"],
        "type": ["individual", "个人", "business", "事业单位", "", "alien"],
        "name": [
            "张三",
            "<script>alert(1)</script>",
            "  李四 ",
            "",
            "x" * 121,
            "a\x02b",
            "王,五",
            'say "hi"',
        ],
        "id_number": [number, number, *odd_ids],
        "phone": ["13812345678", "", "+86 138 1234 5678", "12345", "138-1234-5678"],
        "gender": [sex, "", "男", "女", "M" if sex == "F" else "F", "x"],
        "birth_date": [born, "", "1980-01-01", "1980-02-30", "1980/01/01"],
        "occupation": ["farmer", "", "教师", "x" * 61],
        "area": ["rural", "urban", "农村", "", "moon"],
        "grid": ["G1", "", "x" * 41],
        "tags": ["farmer;civil_servant", "", "返乡农民工;个体户", ";", "farmer;farmer", "x" * 41, "a；b"],
        "branch_code": ["B01", "B02", "", "B 1"],
        "manager_staff_no": ["M0101", "", "M 1"],
        "preferred_channel": ["phone", "", "上门", "pigeon"],
        "contact_window": ["09:00-11:30", "", "9:00～11:30", "25:00-26:00"],
        "do_not_contact": ["否", "", "true", "maybe"],
        "marketing_consent": ["是", "", "0", "nah"],
    }
    return [_pick(rng, values[name], 0.9) for name in columns]


@pytest.mark.parametrize(
    "columns",
    [
        [name for name, _ in HEADERS["customers"]],
        [
            "customer_no",
            "type",
            "name",
            "id_number",
            "phone",
            "gender",
            "birth_date",
            "area",
            "tags",
            "branch_code",
        ],
        ["customer_no", "type", "name", "id_number", "branch_code"],
        ["branch_code", "name", "type", "customer_no", "tags", "gender"],
    ],
)
def test_customer_fast_path_stages_what_the_plain_path_stages(columns):
    rng = random.Random(7)
    names = copy_names("customers", columns)
    fast = row_builder("customers", columns, names[1:])
    assert fast is not None
    assert line_builder("customers", columns, names[1:]) is None
    accepted = refused = 0
    for _ in range(4000):
        cells = _customer_cells(rng, columns)
        expected = plain("customers", columns, names, cells)
        lists: list[tuple[str, str]] = []
        try:
            got = fast(cells, lists)
        except Slow:
            refused += 1
            continue
        accepted += 1
        assert expected is not None, cells
        assert got == expected[0], (cells, got, expected)
        assert lists == expected[1]
    assert accepted > 300 and refused > 300, (accepted, refused)


def test_no_fast_path_for_other_kinds():
    assert row_builder("holdings", ["customer_no", "product"], ["customer_no", "product"]) is None
    assert line_builder("holdings", ["customer_no", "product"], ["customer_no", "product"]) is None


def test_tags_json_round_trip_keeps_non_ascii_tags():
    columns = ["customer_no", "type", "name", "branch_code", "tags"]
    names = copy_names("customers", columns)
    fast = row_builder("customers", columns, names[1:])
    lists: list[tuple[str, str]] = []
    got = fast(["C1", "individual", "张三", "B01", "返乡农民工;养殖户"], lists)
    assert json.loads(got[names.index("tags") - 1]) == ["returning_migrant_worker", "养殖户"]
    assert lists == [("C1", "returning_migrant_worker"), ("C1", "养殖户")]


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_csv_cells_reads_lines_across_chunks_like_the_csv_module(newline):
    """Rows longer than a read chunk, quoted line breaks, every newline convention."""
    rows = [["customer_no", "name"]]
    rows += [[f"C{i}", ("长" * (i % 7000)) + ('a\nb "q"' if i % 5 == 0 else "")] for i in range(60)]
    buffer = io.StringIO(newline="")
    csv.writer(buffer, lineterminator=newline).writerows(rows)
    data = buffer.getvalue().encode("utf-8")
    got = list(csv_cells(io.BytesIO(data), None))
    assert got[0] == ["customer_no", "name"]
    assert [cells for _, cells in got[1:]] == rows[1:]
    assert [n for n, _ in got[1:]] == list(range(2, 62))
