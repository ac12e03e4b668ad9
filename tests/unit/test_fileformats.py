"""The file-format layer of imports (PRODUCT.md §8): encodings, XLSX, headers, values, row errors."""

import datetime as dt
import io
from decimal import Decimal

import pytest
import xlsxwriter

from customers.fileformats import (
    HEADERS,
    FileError,
    RowError,
    iter_validated,
    looks_like_formula,
    normalise_area,
    normalise_customer_type,
    normalise_gender,
    parse_bool,
    parse_date,
    parse_money,
    parse_tags,
    read_rows,
    validate_customer_row,
    validate_event_row,
    validate_holding_row,
    validate_snapshot_row,
    validate_staff_row,
)
from customers.identity import make_id_number

ID_1990 = make_id_number("511902", dt.date(1990, 5, 17), 123)  # a man born 1990-05-17
ID_1985 = make_id_number("511421", dt.date(1985, 2, 3), 456)  # a woman born 1985-02-03

EN_HEADER = "customer_no,type,name,id_number,phone,gender,birth_date,branch_code,tags,contact_window"
ZH_HEADER = "客户号,客户类型,姓名,证件号码,手机号,性别,出生日期,网点编号,标签,联系时段,拒绝营销,营销同意,城乡"


def rows(data: bytes, filename: str = "customers.csv", kind: str | None = "customers"):
    return list(read_rows(io.BytesIO(data), filename, kind))


# --- CSV encodings ------------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig"])
def test_csv_utf8_with_and_without_bom(encoding):
    text = f"{EN_HEADER}\nC001,individual,张三,{ID_1990},13812345678,M,1990-05-17,B01,farmer,18:00-21:00\n"
    [(row, raw)] = rows(text.encode(encoding))
    assert row == 2
    assert raw["customer_no"] == "C001"  # no BOM glued to the first header
    assert raw["name"] == "张三"
    assert set(raw) == {name for name in EN_HEADER.split(",")}


def test_gb18030_with_chinese_headers_and_values_normalised():
    text = (
        f"{ZH_HEADER}\r\n"
        f"C001,个人,张三,{ID_1990},138 1234 5678,男,1990-05-17,B01,返乡农民工；个体户,18：00-21：00,否,是,农村\r\n"
        f"C002,个体工商户,李记面馆,{ID_1985},,,,B01,,,,,城镇\r\n"
        f"C003,企业,眉山市某某公司,91350100M000100Y43,,,,B01,,,是,否,\r\n"
        f"C004,事业单位,东坡区人民医院,,,,,B02,,,,,\r\n"
    )
    data = text.encode("gb18030")
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    results = [(row, *validate_customer_row(raw, row)) for row, raw in rows(data)]
    assert [errors for _, _, errors in results] == [[], [], [], []]
    (r1, c1, _), (_, c2, _), (_, c3, _), (_, c4, _) = results
    assert r1 == 2
    assert c1["type"] == "individual" and c1["gender"] == "M" and c1["area"] == "rural"
    assert c1["phone"] == "13812345678"
    assert c1["tags"] == ["returning_migrant_worker", "self_employed"]
    assert c1["contact_window"] == "18:00-21:00"
    assert (c1["do_not_contact"], c1["marketing_consent"]) == (False, True)
    assert c1["birth_date"] == dt.date(1990, 5, 17)
    assert c2["type"] == "business" and c2["id_number"] == ID_1985 and c2["area"] == "urban"
    assert c3["type"] == "business" and c3["credit_code"] == "91350100M000100Y43" and c3["id_number"] is None
    assert (c3["do_not_contact"], c3["marketing_consent"]) == (True, False)
    assert c4["type"] == "institution" and c4["id_number"] is None and c4["tags"] == []


def test_individual_birth_date_and_gender_are_taken_from_the_id_number():
    [(row, raw)] = rows(f"customer_no,type,name,id_number,branch_code\nC9,个人,王芳,{ID_1985},B01\n".encode())
    clean, errors = validate_customer_row(raw, row)
    assert errors == []
    assert (clean["birth_date"], clean["gender"]) == (dt.date(1985, 2, 3), "F")
    assert "phone" not in clean  # a column the file does not have is absent, not None


def test_undecodable_bytes_refuse_the_file():
    with pytest.raises(FileError, match="neither UTF-8 nor GB18030"):
        rows(b"\xff\xfe\xff\xfe" * 10)


def test_bytes_that_break_the_encoding_late_in_the_file_are_reported_with_the_row():
    good = (EN_HEADER + "\n").encode() + b"".join(
        f"C{i},business,\u5546\u5e97{i},,,,,B01,,\n".encode() for i in range(5000)
    )
    data = good + b"C9999,business,\xff\xff,,,,,B01,,\n"
    with pytest.raises(FileError, match=r"row 5002 is not valid UTF-8 text"):
        rows(data)


@pytest.mark.parametrize("filename", ["customers.csv", "customers.xlsx"])
def test_zero_byte_file(filename, tmp_path):
    path = tmp_path / filename
    path.write_bytes(b"")
    with pytest.raises(FileError, match="empty file"):
        list(read_rows(path, filename, "customers"))


def test_header_only_bom_is_empty():
    with pytest.raises(FileError, match="empty file"):
        rows(b"\xef\xbb\xbf")


def test_csv_streams_without_reading_the_whole_file():
    body = "".join(f"C{i:06d},business,四川某某商贸有限公司第{i}分店,,,,,B01,,\n" for i in range(60_000))
    data = (EN_HEADER + "\n" + body).encode("utf-8")

    class CountingStream(io.RawIOBase):
        def __init__(self):
            self.inner = io.BytesIO(data)
            self.read_bytes = 0

        def readable(self):
            return True

        def readinto(self, buffer):
            chunk = self.inner.read(len(buffer))
            buffer[: len(chunk)] = chunk
            self.read_bytes += len(chunk)
            return len(chunk)

    stream = CountingStream()
    reader = read_rows(stream, "big.csv", "customers")
    first_row, first = next(reader)
    assert (first_row, first["customer_no"]) == (2, "C000000")
    assert len(data) > 3_000_000 and stream.read_bytes < 300_000
    count = 1 + sum(1 for _ in reader)
    assert count == 60_000  # multi-byte characters across chunk boundaries decode fine


def test_tab_separated_and_quoted_multiline_cells():
    text = 'customer_no\ttype\tname\tbranch_code\nC1\tbusiness\t"两行\n名称"\tB01\nC2\tbusiness\tX\tB01\n'
    assert [(row, raw["name"]) for row, raw in rows(text.encode())] == [(2, "两行\n名称"), (3, "X")]


def test_blank_lines_are_skipped_but_counted():
    text = "customer_no,type,name,branch_code\n\n,,,\nC1,business,X,B01\n"
    assert [row for row, _ in rows(text.encode())] == [4]


# --- headers ------------------------------------------------------------------------------------


def test_missing_required_columns_are_listed_in_both_languages():
    with pytest.raises(FileError) as caught:
        rows("客户号,姓名\nC1,张三\n".encode())
    assert caught.value.problems == ["missing required columns: type (客户类型), branch_code (网点编号)"]


def test_unknown_duplicate_and_empty_headers_are_all_listed():
    with pytest.raises(FileError) as caught:
        rows(b"customer_no,type,name,branch_code,colour,,customer_no\n1,2,3,4,5,6,7\n")
    assert caught.value.problems == [
        "unknown column 'colour' in column 5",
        "column 6 has no header (empty or merged header cell)",
        "column 'customer_no' appears twice (column 1 and column 7)",
    ]


def test_headers_are_case_and_space_insensitive_and_may_mix_languages():
    [(_, raw)] = rows("Customer No,TYPE,姓名,Branch-Code\nC1,business,X,B01\n".encode())
    assert raw == {"customer_no": "C1", "type": "business", "name": "X", "branch_code": "B01"}


def test_without_a_kind_the_headers_are_kept_as_written():
    assert rows(b"a,b\n1,2\n", kind=None) == [(2, {"a": "1", "b": "2"})]


def test_one_of_column_groups():
    with pytest.raises(FileError, match="at least one of the columns email"):
        rows(b"staff_no,name,branch_code,roles\nS1,X,B01,manager\n", kind="staff")


def test_every_kind_has_english_and_chinese_headers():
    assert set(HEADERS) == {"branches", "staff", "customers", "snapshots", "holdings", "events"}
    assert [zh for _, zh in HEADERS["snapshots"]] == [
        "客户号",
        "日期",
        "活期存款",
        "定期存款",
        "贷款",
        "理财",
        "月日均存款",
        "风险状态",
    ]
    assert len(HEADERS["customers"]) == 17


@pytest.mark.parametrize("filename", ["customers.xls", "customers.txt", "customers"])
def test_other_file_types_are_refused(filename):
    with pytest.raises(FileError, match="unsupported file type"):
        rows(b"a,b\n", filename)


# --- XLSX ---------------------------------------------------------------------------------------


def write_xlsx(path, header, data_rows, merge_header=False):
    workbook = xlsxwriter.Workbook(str(path))
    sheet = workbook.add_worksheet("客户")
    date_format = workbook.add_format({"num_format": "yyyy-mm-dd"})
    if merge_header:
        sheet.merge_range(0, 0, 0, 1, header[0])
        sheet.write_row(0, 2, header[2:])
    else:
        sheet.write_row(0, 0, header)
    for r, values in enumerate(data_rows, start=1):
        for c, value in enumerate(values):
            if isinstance(value, dt.date):
                sheet.write_datetime(r, c, dt.datetime.combine(value, dt.time()), date_format)
            elif value is not None:
                sheet.write(r, c, value)
    workbook.close()
    return path


def test_xlsx_with_chinese_headers_typed_cells_and_values(tmp_path):
    header = ["客户号", "客户类型", "姓名", "证件号码", "手机号", "性别", "出生日期", "网点编号", "拒绝营销"]
    path = write_xlsx(
        tmp_path / "客户.xlsx",
        header,
        [
            ["C001", "个人", "张三", ID_1990, 13812345678, "男", dt.date(1990, 5, 17), "B01", False],
            [None] * 9,
            [1002, "企业", "<script>alert(1)</script>", None, None, None, None, 1, "否"],
        ],
    )
    results = [
        (row, *validate_customer_row(raw, row)) for row, raw in read_rows(path, "客户.xlsx", "customers")
    ]
    assert [(row, errors) for row, _, errors in results] == [(2, []), (4, [])]
    c1, c2 = results[0][1], results[1][1]
    assert c1["phone"] == "13812345678" and c1["birth_date"] == dt.date(1990, 5, 17)
    assert c1["do_not_contact"] is False
    assert c2["customer_no"] == "1002" and c2["branch_code"] == "1"
    assert c2["name"] == "<script>alert(1)</script>"  # plain text; templates escape it


def test_xlsx_from_a_file_object(tmp_path):
    path = write_xlsx(
        tmp_path / "s.xlsx",
        ["customer_no", "as_of", "deposit_demand", "loan"],
        [["C1", dt.date(2026, 5, 31), 1234.56, 0]],
    )
    with open(path, "rb") as upload:
        [(row, raw)] = list(read_rows(upload, "s.xlsx", "snapshots"))
        assert not upload.closed
    clean, errors = validate_snapshot_row(raw, row)
    assert errors == []
    assert clean == {
        "customer_no": "C1",
        "as_of": dt.date(2026, 5, 31),
        "deposit_demand": Decimal("1234.56"),
        "loan": Decimal("0.00"),
    }
    assert isinstance(clean["deposit_demand"], Decimal)


def test_xlsx_id_number_typed_as_a_number_has_lost_digits(tmp_path):
    path = write_xlsx(
        tmp_path / "c.xlsx",
        ["customer_no", "type", "name", "id_number", "branch_code"],
        [["C1", "individual", "张三", int(ID_1990[:17] + "0"), "B01"]],
    )
    [(row, raw)] = list(read_rows(path, "c.xlsx", "customers"))
    clean, [error] = validate_customer_row(raw, row)
    assert clean is None
    assert (error.row, error.column) == (2, "id_number")
    assert "rounded by the spreadsheet" in error.reason
    assert ID_1990[:15] not in error.value  # masked in the report


def test_xlsx_with_merged_header_cells_is_refused(tmp_path):
    path = write_xlsx(
        tmp_path / "m.xlsx", ["客户号", "", "姓名", "网点编号"], [["C1", "x", "y", "B01"]], merge_header=True
    )
    with pytest.raises(FileError, match=r"merged cells in the header row \(A–B\)"):
        list(read_rows(path, "m.xlsx", "customers"))


def test_a_file_that_is_not_an_xlsx_is_refused(tmp_path):
    path = tmp_path / "fake.xlsx"
    path.write_bytes(b"customer_no,type\nC1,individual\n")
    with pytest.raises(FileError, match="not a valid XLSX"):
        list(read_rows(path, "fake.xlsx", "customers"))
    broken = tmp_path / "broken.xlsx"
    broken.write_bytes(b"PK\x03\x04" + b"\x00" * 100)
    with pytest.raises(FileError, match="not a valid XLSX"):
        list(read_rows(broken, "broken.xlsx", "customers"))


def test_an_xlsx_named_csv_is_refused(tmp_path):
    path = write_xlsx(tmp_path / "c.xlsx", ["a"], [["1"]])
    with pytest.raises(FileError, match="XLSX"):
        list(read_rows(path, "c.csv", "customers"))


# --- values -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1234.5", Decimal("1234.50")),
        ("1,234.56", Decimal("1234.56")),
        ("¥100", Decimal("100.00")),
        ("-20.10", Decimal("-20.10")),
        ("1.500", Decimal("1.50")),
        (1234.56, Decimal("1234.56")),
        (0.1 + 0.2, Decimal("0.30")),  # the 15 digits a spreadsheet shows
        (1e20 / 1e10, Decimal("10000000000.00")),
        (7, Decimal("7.00")),
    ],
)
def test_money(value, expected):
    amount = parse_money(value)
    assert amount == expected and isinstance(amount, Decimal)
    assert amount.as_tuple().exponent == -2


@pytest.mark.parametrize(
    "value", ["12.345", "1,23", "1e5", "abc", "12.3.4", 0.125, True, float("nan"), "1" * 17]
)
def test_bad_money(value):
    with pytest.raises(ValueError):
        parse_money(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-05-31", dt.date(2026, 5, 31)),
        (dt.date(2026, 1, 2), dt.date(2026, 1, 2)),
        (dt.datetime(2026, 1, 2), dt.date(2026, 1, 2)),
    ],
)
def test_dates(value, expected):
    assert parse_date(value) == expected


@pytest.mark.parametrize(
    "value", ["2026/05/31", "20260531", "2026-02-30", "31-05-2026", 45000.0, dt.datetime(2026, 1, 2, 9)]
)
def test_bad_dates(value):
    with pytest.raises(ValueError):
        parse_date(value)


def test_enumerations_in_english_and_chinese():
    assert [normalise_customer_type(v) for v in ("个人", "个体工商户", "企业", "事业单位", "Individual")] == [
        "individual",
        "business",
        "business",
        "institution",
        "individual",
    ]
    assert [normalise_gender(v) for v in ("男", "女", "m", "F")] == ["M", "F", "M", "F"]
    assert [normalise_area(v) for v in ("城镇", "农村", "URBAN")] == ["urban", "rural", "urban"]
    assert [parse_bool(v) for v in ("是", "否", "TRUE", "false", True, 0.0)] == [
        True,
        False,
        True,
        False,
        True,
        False,
    ]
    for parse in (normalise_customer_type, normalise_gender, normalise_area, parse_bool):
        with pytest.raises(ValueError):
            parse("其他")


def test_tags():
    assert parse_tags("返乡农民工; 公务员；;employee_of_school;公务员") == [
        "returning_migrant_worker",
        "civil_servant",
        "employee_of_school",
    ]


def test_formula_like_text_is_kept_and_recognised():
    [(row, raw)] = rows(b'customer_no,type,name,branch_code\nC1,business,=HYPERLINK("x"),B01\n')
    clean, errors = validate_customer_row(raw, row)
    assert errors == [] and clean["name"] == '=HYPERLINK("x")'
    assert looks_like_formula(clean["name"]) and looks_like_formula("@cmd") and not looks_like_formula("张三")


# --- row errors ---------------------------------------------------------------------------------


def test_bad_customer_rows_are_reported_with_row_column_value_and_reason():
    text = (
        f"{EN_HEADER},do_not_contact\n"
        f"C1,individual,张三,{ID_1990},13812345678,M,1990-05-17,B01,,18:00-21:00,false\n"
        f"C2,person,李四,{ID_1990[:-1]}0,1381234567,X,1990-05-18,B01,,21:00-18:00,maybe\n"
        f"C3,individual,,{ID_1990},,F,1990-05-18,,,,\n"
        f"C4,institution,学校,123,,,,B01,,,,extra\n"
    )
    report = {
        row: errors for row, clean, errors in iter_validated(io.BytesIO(text.encode()), "c.csv", "customers")
    }
    assert report[2] == []
    assert report[3] == [
        RowError(
            3,
            "type",
            "person",
            "unknown customer type: expected individual/business/institution or 个人/个体工商户/企业/事业单位",
        ),
        RowError(3, "phone", "**********", "mobile number must be 11 digits starting with 13–19"),
        RowError(3, "gender", "X", "unknown gender: expected M/F or 男/女"),
        RowError(
            3, "contact_window", "21:00-18:00", "contact window '21:00-18:00' must start before it ends"
        ),
        RowError(3, "do_not_contact", "maybe", "expected 是/否 or true/false"),
    ]
    assert report[4] == [
        RowError(4, "name", "", "a value is required"),
        RowError(
            4,
            "id_number",
            "5119**********1233",
            "ID number birth date 1990-05-17 does not match birth date 1990-05-18",
        ),
        RowError(4, "gender", "F", "does not match the ID number (M)"),
        RowError(4, "branch_code", "", "a value is required"),
    ]
    assert report[5] == [
        RowError(5, "id_number", "***", "expected a resident ID number or a unified social credit code"),
        RowError(5, "", "extra", "value right of the last header column"),
    ]


def test_individual_id_checksum_error():
    raw = {
        "customer_no": "C1",
        "type": "个人",
        "name": "张三",
        "id_number": ID_1990[:-1] + "0",
        "branch_code": "B1",
    }
    clean, [error] = validate_customer_row(raw, 7)
    assert clean is None
    assert (error.row, error.column, error.value) == (7, "id_number", "5119**********1230")
    assert error.reason == f"ID number checksum fails: last character should be {ID_1990[-1]}, found 0"


def test_snapshot_rows():
    raw = {
        "customer_no": "C1",
        "as_of": "2026-05-31",
        "deposit_demand": "",
        "deposit_time": "-1.00",
        "loan": "10.005",
        "avg_daily_deposit": "",
        "risk_status": "逾期",
    }
    clean, errors = validate_snapshot_row(raw, 2)
    assert clean is None
    assert [(e.column, e.value, e.reason) for e in errors] == [
        ("deposit_time", "-1.00", "a balance cannot be negative"),
        ("loan", "10.005", "more than two decimals"),
    ]
    raw |= {"deposit_time": "5000", "loan": "0"}
    clean, errors = validate_snapshot_row(raw, 2)
    assert errors == []
    assert clean["deposit_demand"] == Decimal("0.00") and clean["avg_daily_deposit"] is None
    assert clean["risk_status"] == "overdue"


def test_holding_rows():
    clean, errors = validate_holding_row(
        {"customer_no": "C1", "product": "手机银行", "opened_on": "2026-01-05", "closed_on": ""}
    )
    assert errors == [] and clean == {
        "customer_no": "C1",
        "product": "mobile_banking",
        "opened_on": dt.date(2026, 1, 5),
        "closed_on": None,
    }
    clean, errors = validate_holding_row(
        {
            "customer_no": "C1",
            "product": "Payroll_Account",
            "opened_on": "2026-01-05",
            "closed_on": "2025-12-31",
        },
        9,
    )
    assert clean is None
    assert errors == [RowError(9, "closed_on", "2025-12-31", "before the opening date 2026-01-05")]
    _, [error] = validate_holding_row({"customer_no": "C1", "product": "金卡"}, 3)
    assert error.column == "product"


def test_staff_and_event_rows():
    clean, errors = validate_staff_row(
        {
            "staff_no": "S1",
            "name": "王五",
            "branch_code": "B01",
            "roles": "信用社主任;manager",
            "phone": "13812345678",
        }
    )
    assert errors == [] and clean["roles"] == ["director", "manager"]
    _, errors = validate_staff_row(
        {"staff_no": "S1", "name": "王五", "branch_code": "B01", "roles": "boss", "email": ""}, 4
    )
    assert [(e.column, e.reason) for e in errors] == [
        ("roles", "unknown role 'boss': expected director;manager;checker;admin"),
        ("email", "an e-mail address or a mobile number is required"),
    ]
    clean, errors = validate_event_row(
        {
            "event_id": "E1",
            "occurred_on": "2026-05-02",
            "staff_no": "S1",
            "measure": "accounts_opened",
            "quantity": "3",
            "amount": "",
        }
    )
    assert errors == [] and clean["quantity"] == 3 and clean["amount"] is None
    _, [error] = validate_event_row(
        {"event_id": "E1", "occurred_on": "2026-05-02", "staff_no": "S1", "measure": "m", "quantity": ""}, 5
    )
    assert error == RowError(5, "quantity", "", "a quantity or an amount is required")


def test_xlsx_with_an_empty_first_sheet_is_refused_and_a_header_only_file_has_no_rows(tmp_path):
    empty = tmp_path / "empty.xlsx"
    workbook = xlsxwriter.Workbook(str(empty))
    workbook.add_worksheet()
    workbook.close()
    with pytest.raises(FileError, match="empty file"):
        list(read_rows(empty, "empty.xlsx", "customers"))
    header_only = write_xlsx(tmp_path / "h.xlsx", ["customer_no", "type", "name", "branch_code"], [])
    assert list(read_rows(header_only, "h.xlsx", "customers")) == []


@pytest.mark.parametrize("body", [b'C1,business,"X"y,B01\n', b'C1,business,"' + b"x" * 200_000 + b'",B01\n'])
def test_malformed_csv_is_refused_with_the_row(body):
    with pytest.raises(FileError, match="malformed CSV near row 2"):
        rows(b"customer_no,type,name,branch_code\n" + body)


def test_control_characters_are_refused_in_text():
    [(row, raw)] = rows(b"customer_no,type,name,branch_code\nC1,business,X\x00,B01\n")
    assert validate_customer_row(raw, row) == (
        None,
        [RowError(2, "name", "X\x00", "contains control characters")],
    )
