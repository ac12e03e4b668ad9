"""Imports of branches, staff, customers, snapshots and holdings (customers/imports.py)."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal
from pathlib import Path

import pytest
import xlsxwriter
from sqlalchemy import func, select

from customers.fileformats import FileError
from customers.identity import id_check_char
from customers.imports import ImportResult, import_file, write_report
from customers.models import Customer, CustomerTag, Holding, Snapshot
from org.models import Branch, Staff, StaffRole

CUSTOMER_HEADER = (
    "customer_no,type,name,id_number,phone,gender,birth_date,area,tags,branch_code,manager_staff_no"
)


def resident_id(birth: str = "19800101", seq: str = "123", region: str = "510722") -> str:
    first = region + birth + seq
    return first + id_check_char(first)


def write(tmp_path: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def run(session, kind: str, path: Path, **kw) -> ImportResult:
    result = import_file(session, kind, path, path.name, **kw)
    session.commit()
    return result


def count(session, model) -> int:
    return session.scalar(select(func.count()).select_from(model))


def customers_csv(*rows: str) -> str:
    return "\n".join([CUSTOMER_HEADER, *rows]) + "\n"


GOOD_1 = f"C001,individual,张三,{resident_id()},13812345678,M,1980-01-01,rural,returning_migrant_worker;farmer,B01,M0101"
GOOD_2 = "C002,business,<script>alert(1)</script> 小卖部,,,,,urban,self_employed,B02,"


def test_valid_rows_applied_and_bad_rows_reported_row_by_row(session, union, tmp_path):
    path = write(
        tmp_path,
        "customers.csv",
        customers_csv(
            GOOD_1,
            GOOD_2,
            f"C003,individual,李四,{resident_id()[:-1]}0,,,,,,B01,",  # bad checksum
            "C004,individual,王五,,,,2023-02-30,,,B01,",  # impossible date
            "C005,individual,赵六,,,,,,,B99,",  # unknown branch
            "C006,individual,钱七,,,,,,,B01,M9999",  # unknown manager
            "C007,individual,孙八,,,,,,,B01,",
            "C007,individual,孙八二,,,,,,,B01,",  # duplicate key
        ),
    )
    result = run(session, "customers", path)
    assert (result.rows, result.applied, result.rejected) == (8, 2, 6)
    by_row = {(e.row, e.column): e for e in result.errors}
    assert "checksum" in by_row[(4, "id_number")].reason
    assert by_row[(4, "id_number")].value.startswith("5107") and "*" in by_row[(4, "id_number")].value
    assert by_row[(5, "birth_date")].reason == "not a real date"
    assert by_row[(6, "branch_code")].reason == "unknown branch" and by_row[(6, "branch_code")].value == "B99"
    assert "unknown manager" in by_row[(7, "manager_staff_no")].reason
    assert "also in row 9" in by_row[(8, "customer_no")].reason
    assert "also in row 8" in by_row[(9, "customer_no")].reason
    assert [e.row for e in result.errors] == sorted(e.row for e in result.errors)
    rows = {c.customer_no: c for c in session.scalars(select(Customer))}
    assert set(rows) == {"C001", "C002"}
    c1 = rows["C001"]
    assert (c1.branch_id, c1.manager_id, c1.gender, c1.area) == (union.b1.id, union.m1.id, "M", "rural")
    assert c1.tags == ["returning_migrant_worker", "farmer"]
    assert set(session.scalars(select(CustomerTag.tag).where(CustomerTag.customer_id == c1.id))) == {
        "returning_migrant_worker",
        "farmer",
    }
    # HTML is stored as plain text (templates escape it)
    assert rows["C002"].name == "<script>alert(1)</script> 小卖部"
    assert rows["C002"].manager_id is None and rows["C002"].do_not_contact is False
    assert rows["C002"].marketing_consent is True


def test_strict_mode_applies_nothing_when_a_row_is_bad(session, union, tmp_path):
    path = write(tmp_path, "c.csv", customers_csv(GOOD_1, "C005,individual,赵六,,,,,,,B99,"))
    result = run(session, "customers", path, strict=True)
    assert result.refused and result.applied == 0 and result.rejected == 1
    assert count(session, Customer) == 0
    assert (
        run(session, "customers", write(tmp_path, "ok.csv", customers_csv(GOOD_1)), strict=True).applied == 1
    )
    assert count(session, Customer) == 1


def test_reimport_changes_nothing_and_tags_stay_in_sync(session, union, tmp_path):
    path = write(tmp_path, "c.csv", customers_csv(GOOD_1, GOOD_2))
    run(session, "customers", path)
    before = {c.customer_no: (c.id, c.updated_at, c.tags) for c in session.scalars(select(Customer))}
    tags_before = count(session, CustomerTag)
    again = run(session, "customers", path)
    assert again.applied == 2 and not again.errors
    session.expire_all()
    after = {c.customer_no: (c.id, c.updated_at, c.tags) for c in session.scalars(select(Customer))}
    assert after == before
    assert count(session, CustomerTag) == tags_before == 3
    # a changed row updates only that customer; its tags follow the file
    changed = GOOD_1.replace("returning_migrant_worker;farmer", "farmer;civil_servant").replace(
        "M0101", "M0102"
    )
    run(session, "customers", write(tmp_path, "c2.csv", customers_csv(changed, GOOD_2)))
    session.expire_all()
    c1 = session.scalar(select(Customer).where(Customer.customer_no == "C001"))
    assert c1.tags == ["farmer", "civil_servant"] and c1.manager_id == union.m2.id
    assert set(session.scalars(select(CustomerTag.tag).where(CustomerTag.customer_id == c1.id))) == {
        "farmer",
        "civil_servant",
    }
    c2 = session.scalar(select(Customer).where(Customer.customer_no == "C002"))
    assert c2.updated_at == before["C002"][1]


def test_columns_left_out_of_the_file_are_left_alone(session, union, tmp_path):
    run(session, "customers", write(tmp_path, "c.csv", customers_csv(GOOD_1)))
    slim = "customer_no,type,name,branch_code\nC001,individual,张三丰,B01\n"
    assert run(session, "customers", write(tmp_path, "slim.csv", slim)).applied == 1
    session.expire_all()
    c1 = session.scalar(select(Customer))
    assert c1.name == "张三丰" and c1.phone == "13812345678" and c1.manager_id == union.m1.id
    assert c1.tags == ["returning_migrant_worker", "farmer"]


def test_chinese_headers_and_values_in_gb18030(session, union, tmp_path):
    text = (
        "客户号,客户类型,姓名,证件号码,性别,城乡,标签,网点编号,管户客户经理,拒绝营销\n"
        f"C100,个人,刘德华,{resident_id('19700202', '135')},男,农村,返乡农民工;个体户,B02,M0201,是\n"
    )
    path = write(tmp_path, "客户.csv", text, encoding="gb18030")
    result = run(session, "customers", path)
    assert result.applied == 1, result.errors
    c = session.scalar(select(Customer))
    assert (c.name, c.type, c.gender, c.area, c.do_not_contact) == (
        "刘德华",
        "individual",
        "M",
        "rural",
        True,
    )
    assert c.birth_date == dt.date(1970, 2, 2) and c.manager_id == union.m3.id
    assert c.tags == ["returning_migrant_worker", "self_employed"]


def test_utf8_with_bom(session, union, tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbf" + customers_csv(GOOD_1).encode())
    assert run(session, "customers", path).applied == 1


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty file"),
        (b"\xff\xfe\x00\x00\xff\xff\xfe\xfe" * 10, "neither UTF-8 nor GB18030"),
        (b"customer_no,name\nC1,x\n", "missing required columns"),
        ("客户号,客户类型,姓名,网点编号,无此列\nC1,个人,x,B01,y\n".encode(), "unknown column"),
    ],
)
def test_unusable_files_are_refused_as_a_whole(session, union, tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(FileError, match=message):
        import_file(session, "customers", path, path.name)
    session.rollback()
    assert count(session, Customer) == 0


def test_malformed_csv_further_down_changes_nothing(session, union, tmp_path):
    rows = [GOOD_1.replace("C001", f"C{n:04d}") for n in range(1, 30)]
    text = customers_csv(*rows) + 'C9999,individual,"broken"quote,,,,,,,B01,\n'
    path = write(tmp_path, "c.csv", text)
    with pytest.raises(FileError, match="malformed CSV near row 31"):
        import_file(session, "customers", path, path.name, batch_size=10)
    session.rollback()
    assert count(session, Customer) == 0


def test_undecodable_row_further_down_is_named(session, union, tmp_path):
    path = tmp_path / "c.csv"
    rows = [GOOD_1.replace("C001", f"C{n:04d}") for n in range(1, 801)]  # past the 64 KiB sniffed
    path.write_bytes(customers_csv(*rows).encode() + b"C9999,individual,\xff\xff\xff,,,,,,,B01,\n")
    with pytest.raises(FileError, match="row 802 is not valid"):
        import_file(session, "customers", path, path.name)
    session.rollback()
    assert count(session, Customer) == 0


def xlsx(
    path: Path, header: list[str], rows: list[list[object]], *, merge: bool = False, formula: bool = False
) -> Path:
    workbook = xlsxwriter.Workbook(str(path))
    sheet = workbook.add_worksheet()
    if merge:
        sheet.merge_range(0, 0, 0, 1, header[0])
        sheet.write_row(0, 2, header[2:])
    else:
        sheet.write_row(0, 0, header)
    for r, values in enumerate(rows, start=1):
        sheet.write_row(r, 0, values)
    if formula:
        sheet.write_formula(len(rows), 2, "=1+1", None, 2)
    workbook.close()
    return path


def test_xlsx_import_and_refusals(session, union, tmp_path):
    header = ["客户号", "日期", "活期存款", "定期存款"]
    run(session, "customers", write(tmp_path, "c.csv", customers_csv(GOOD_1)))
    good = xlsx(tmp_path / "s.xlsx", header, [["C001", "2026-10-31", 1000.5, 20000]])
    assert run(session, "snapshots", good).applied == 1
    snap = session.scalar(select(Snapshot))
    assert snap.deposit_demand == Decimal("1000.50") and snap.deposit_time == Decimal("20000.00")
    formula = xlsx(tmp_path / "f.xlsx", header, [["C001", "2026-11-30", 1, 2]], formula=True)
    with pytest.raises(FileError, match="cell C2 holds a formula"):
        import_file(session, "snapshots", formula, formula.name)
    session.rollback()
    merged = xlsx(
        tmp_path / "m.xlsx",
        ["客户号", "", "活期存款", "定期存款"],
        [["C001", "2026-11-30", 1, 2]],
        merge=True,
    )
    with pytest.raises(FileError, match="merged cells in the header"):
        import_file(session, "snapshots", merged, merged.name)
    session.rollback()
    # an upload given as a file object is checked the same way
    with open(formula, "rb") as stream, pytest.raises(FileError, match="formula"):
        import_file(session, "snapshots", stream, "upload.xlsx")
    session.rollback()
    assert count(session, Snapshot) == 1


def test_snapshots_idempotent_unknown_customer_and_duplicates(session, union, tmp_path):
    run(session, "customers", write(tmp_path, "c.csv", customers_csv(GOOD_1, GOOD_2)))
    text = (
        "customer_no,as_of,deposit_demand,deposit_time,loan,wealth,risk_status\n"
        "C001,2026-09-30,100.00,200,0,,正常\n"
        "C001,2026-10-31,150.10,200,0,,逾期\n"
        "C002,2026-10-31,1.234,0,0,0,\n"  # three decimals
        "C404,2026-10-31,1,0,0,0,\n"  # unknown customer
        "C002,2026-09-31,1,0,0,0,\n"  # impossible date
        "C001,2026-09-30,999,0,0,0,\n"  # duplicate key
    )
    path = write(tmp_path, "s.csv", text)
    result = run(session, "snapshots", path)
    reasons = {(e.row, e.column): e.reason for e in result.errors}
    assert reasons[(4, "deposit_demand")] == "more than two decimals"
    assert reasons[(5, "customer_no")] == "unknown customer"
    assert reasons[(6, "as_of")] == "not a real date"
    assert "also in row 7" in reasons[(2, "customer_no")] and "also in row 2" in reasons[(7, "customer_no")]
    assert result.applied == 1 and result.rejected == 5
    snap = session.scalar(select(Snapshot))
    assert (snap.as_of, snap.deposit_demand, snap.wealth, snap.risk_status) == (
        dt.date(2026, 10, 31),
        Decimal("150.10"),
        Decimal("0.00"),
        "overdue",
    )
    fixed = write(tmp_path, "s2.csv", text.splitlines()[0] + "\n" + "\n".join(text.splitlines()[1:3]) + "\n")
    assert run(session, "snapshots", fixed).applied == 2
    assert run(session, "snapshots", fixed).applied == 2
    assert count(session, Snapshot) == 2


def test_holdings(session, union, tmp_path):
    run(session, "customers", write(tmp_path, "c.csv", customers_csv(GOOD_1)))
    text = (
        "客户号,产品,开立日期,销户日期,网点编号\n"
        "C001,手机银行,2025-01-02,,B01\n"
        "C001,debit_card,2025-01-02,2024-01-01,B01\n"  # closed before opened
        "C001,payroll_account,,,B77\n"  # unknown branch
    )
    result = run(session, "holdings", write(tmp_path, "h.csv", text))
    assert result.applied == 1
    assert {(e.row, e.column) for e in result.errors} == {(3, "closed_on"), (4, "branch_code")}
    h = session.scalar(select(Holding))
    assert (h.product, h.opened_on, h.closed_on, h.branch_id) == (
        "mobile_banking",
        dt.date(2025, 1, 2),
        None,
        union.b1.id,
    )
    assert run(session, "holdings", write(tmp_path, "h.csv", text)).applied == 1
    assert count(session, Holding) == 1


def test_branches_with_parents_in_the_same_file(session, tmp_path):
    text = "branch_code,name,parent_code\nB11,东山分社,B10\nB10,东山信用社,U00\nU00,县联社,\nB12,,U00\nB13,孤儿,B99\n"
    result = run(session, "branches", write(tmp_path, "b.csv", text))
    assert result.applied == 3
    assert {(e.row, e.column, e.reason) for e in result.errors} == {
        (5, "name", "a value is required"),
        (6, "parent_code", "unknown parent branch"),
    }
    branches = {b.code: b for b in session.scalars(select(Branch))}
    assert branches["B11"].parent_id == branches["B10"].id and branches["B10"].parent_id == branches["U00"].id
    assert branches["U00"].parent_id is None
    assert run(session, "branches", write(tmp_path, "b.csv", text)).applied == 3
    assert count(session, Branch) == 3


def test_staff_with_roles_scoped_like_the_service(session, union, tmp_path):
    text = (
        "员工编号,姓名,网点编号,角色,手机号,入职日期\n"
        "S100,马主任,B01,信用社主任;客户经理,13900001111,2020-03-01\n"
        "S101,牛复核,U00,checker,13900002222,\n"
        "S102,无网点,B55,manager,13900003333,\n"
        "S103,无角色,B01,,13900004444,\n"
        "S104,坏角色,B01,boss,13900005555,\n"
    )
    path = write(tmp_path, "staff.csv", text)
    result = run(session, "staff", path)
    assert result.applied == 2
    assert {(e.row, e.column) for e in result.errors} == {(4, "branch_code"), (5, "roles"), (6, "roles")}
    s100 = session.scalar(select(Staff).where(Staff.staff_no == "S100"))
    roles = {
        (r.role, r.branch_id) for r in session.scalars(select(StaffRole).where(StaffRole.staff_id == s100.id))
    }
    assert roles == {("director", union.b1.id), ("manager", None)}
    assert s100.status == "active" and s100.capacity == 400 and s100.password_hash is None
    s101 = session.scalar(select(Staff).where(Staff.staff_no == "S101"))
    assert {(r.role, r.branch_id) for r in s101.roles} == {("checker", None)}
    assert run(session, "staff", path).applied == 2
    roles_after = count(session, StaffRole)
    # a changed role list replaces the roles
    run(
        session,
        "staff",
        write(
            tmp_path, "s2.csv", "staff_no,name,branch_code,roles,phone\nS100,马主任,B02,manager,13900001111\n"
        ),
    )
    session.expire_all()
    s100 = session.scalar(select(Staff).where(Staff.staff_no == "S100"))
    assert s100.branch_id == union.b2.id and {(r.role, r.branch_id) for r in s100.roles} == {
        ("manager", None)
    }
    assert count(session, StaffRole) == roles_after - 1


def test_report_csv_neutralises_formulas():
    from customers.fileformats import RowError

    out = io.StringIO()
    write_report([RowError(3, "name", "=HYPERLINK(1)", "bad"), RowError(4, "", "x", "y")], out)
    assert out.getvalue().splitlines() == ["row,column,value,reason", "3,name,'=HYPERLINK(1),bad", "4,,x,y"]


def test_batches_stream_many_rows(session, union, tmp_path):
    rows = [f"C{n:05d},individual,客户{n},,,,,,farmer,B01," for n in range(1, 2501)]
    progress: list[tuple[int, str]] = []
    result = import_file(
        session,
        "customers",
        write(tmp_path, "many.csv", customers_csv(*rows)),
        "many.csv",
        batch_size=500,
        progress=lambda done, phase: progress.append((done, phase)),
    )
    session.commit()
    assert result.applied == 2500 and count(session, CustomerTag) == 2500
    assert progress[:2] == [(500, "reading"), (1000, "reading")] and progress[-1] == (2500, "applying")


def _rewrite_xlsx(source: Path, target: Path, change=None, extra: dict[str, bytes] | None = None) -> Path:
    import zipfile

    with zipfile.ZipFile(source) as src, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as out:
        for item in src.infolist():
            data = src.read(item)
            out.writestr(item.filename, change(item.filename, data) if change else data)
        for name, data in (extra or {}).items():
            out.writestr(name, data)
    return target


def test_hostile_xlsx_files_are_refused_before_parsing(session, union, tmp_path):
    """RELIABILITY.md IO-02: zip bomb, entity expansion / XXE, macros, an .exe named .xlsx."""
    import zipfile

    good = xlsx(
        tmp_path / "good.xlsx",
        ["customer_no", "type", "name", "branch_code"],
        [["C1", "individual", "张三", "B01"]],
    )
    bomb = _rewrite_xlsx(good, tmp_path / "bomb.xlsx")
    with (
        zipfile.ZipFile(bomb, "a", zipfile.ZIP_DEFLATED) as archive,
        archive.open("xl/media/bomb.xml", "w") as part,
    ):
        for _ in range(40):
            part.write(b"\0" * 1024**2)
    laughs = (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
    )

    def with_dtd(name: str, data: bytes) -> bytes:
        return laughs + data.split(b"?>", 1)[1] if name == "xl/worksheets/sheet1.xml" else data

    dtd = _rewrite_xlsx(good, tmp_path / "dtd.xlsx", change=with_dtd)
    xxe = _rewrite_xlsx(
        good,
        tmp_path / "xxe.xlsx",
        change=lambda name, data: (
            b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
            + data.split(b"?>", 1)[1]
            if name == "xl/sharedStrings.xml"
            else data
        ),
    )
    macros = _rewrite_xlsx(
        good, tmp_path / "macro.xlsx", extra={"xl/vbaProject.bin": b"\xd0\xcf\x11\xe0macro"}
    )
    exe = tmp_path / "setup.xlsx"
    exe.write_bytes(b"MZ\x90\x00" + b"\0" * 2000)
    cases = [
        (bomb, "possible zip bomb"),
        (dtd, "declares a DTD"),
        (xxe, "declares a DTD"),
        (macros, "contains macros"),
        (exe, "not a valid XLSX"),
    ]
    for path, message in cases:
        with pytest.raises(FileError, match=message):
            import_file(session, "customers", path, path.name)
        session.rollback()
    assert count(session, Customer) == 0
    assert run(session, "customers", good).applied == 1


def test_same_file_imported_twice_at_once_lands_exactly_once(session, union, tmp_path):
    """RELIABILITY.md IO-03: concurrent imports of one file; every row once, nothing partial."""
    import threading

    from sqlalchemy.exc import OperationalError

    from config.database import db
    from tests.conftest import USE_PG

    rows = [f"C{n:05d},individual,客户{n},,,,,,farmer;self_employed,B01," for n in range(1, 1201)]
    path = write(tmp_path, "same.csv", customers_csv(*rows))
    outcomes: list[object] = []
    barrier = threading.Barrier(2)

    def worker() -> None:
        barrier.wait()
        try:
            with db.transaction() as s:
                outcomes.append(import_file(s, "customers", path, path.name, batch_size=300).applied)
        except OperationalError as exc:  # SQLite: one writer; the loser is refused whole and retried
            outcomes.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if USE_PG:
        assert outcomes == [1200, 1200]
    for outcome in outcomes:
        if isinstance(outcome, OperationalError):
            with db.transaction() as s:
                assert import_file(s, "customers", path, path.name).applied == 1200
    session.rollback()
    assert count(session, Customer) == 1200
    assert count(session, CustomerTag) == 2400


def test_large_files_mixing_fast_and_plain_rows_land_as_the_plain_path_says(session, union, tmp_path):
    """Several COPY chunks on PostgreSQL; rows that take the fast tiers, rows that need the full
    validator (aliases, separators, bad values), duplicates far apart (keys out of order)."""
    from customers.fileformats import validate_snapshot_row

    rows = []
    for n in range(1, 3001):
        birth = dt.date(1960, 1, 1) + dt.timedelta(days=n * 7)
        number = resident_id(birth.strftime("%Y%m%d"), f"{n % 1000:03d}")
        tags = ("farmer;returning_migrant_worker", "返乡农民工", "", "civil_servant")[n % 4]
        gender = ("", "男" if n % 2 else "女", "M" if n % 2 else "F")[n % 3]
        rows.append(f"C{n:05d},individual,客户{n},{number},13812345678,{gender},,rural,{tags},B01,M0101")
    rows[99] = rows[99].replace("B01", "B99")  # unknown branch (row 101)
    rows[199] = rows[199].replace(",individual,", ",alien,")  # bad type (row 201)
    rows.append(rows[9].replace("客户10", "客户十"))  # C00010 again, far below (row 3002)
    result = run(session, "customers", write(tmp_path, "c.csv", customers_csv(*rows)))
    assert (result.rows, result.applied, result.rejected) == (3001, 2997, 4)
    assert {(e.row, e.column) for e in result.errors} == {
        (11, "customer_no"),
        (3002, "customer_no"),
        (101, "branch_code"),
        (201, "type"),
    }
    assert count(session, CustomerTag) == sum(
        (2, 1, 0, 1)[n % 4] for n in range(1, 3001) if n not in (10, 100, 200)
    )
    c7 = session.scalar(select(Customer).where(Customer.customer_no == "C00007"))
    assert (c7.gender, c7.birth_date, c7.tags) == (
        "M",
        dt.date(1960, 1, 1) + dt.timedelta(days=49),
        ["civil_servant"],
    )

    header = "customer_no,as_of,deposit_demand,deposit_time,loan,wealth,risk_status"
    lines = []
    for n in range(1, 3001):
        for day in ("2026-09-30", "2026-10-31"):
            demand = ("1200.5", "", '"1,234.50"', "0", "99.99", "7")[n % 6]
            status = ("normal", "正常", "", "overdue")[n % 4]
            lines.append(f"C{n:05d},{day},{demand},{n}.00,0,{n % 3},{status}")
    lines[500] = lines[500].replace(",0,", ",-5,", 1)  # a negative balance (row 502)
    lines.append(lines[40])  # a duplicate key far below (rows 42 and 6002)
    result = run(session, "snapshots", write(tmp_path, "s.csv", "\n".join([header, *lines]) + "\n"))
    bad_rows = {e.row for e in result.errors}
    # customers 10, 100 and 200 were refused above: their snapshots name unknown customers
    assert bad_rows == {42, 502, 6002, 20, 21, 200, 201, 400, 401}
    expected: dict[tuple[str, dt.date], tuple] = {}
    names = header.split(",")
    for row, cells in enumerate(csv.reader(lines), start=2):
        clean, errors = validate_snapshot_row(dict(zip(names, cells, strict=True)), row)
        if clean is None or row in bad_rows:
            continue
        expected[(clean["customer_no"], clean["as_of"])] = (
            clean["deposit_demand"],
            clean["deposit_time"],
            clean["loan"],
            clean["wealth"],
            clean["risk_status"],
        )
    assert result.applied == len(expected) == count(session, Snapshot)
    numbers = dict(session.execute(select(Customer.id, Customer.customer_no)).all())
    stored = {
        (numbers[s.customer_id], s.as_of): (s.deposit_demand, s.deposit_time, s.loan, s.wealth, s.risk_status)
        for s in session.scalars(select(Snapshot))
    }
    assert stored == expected
    again = run(session, "snapshots", write(tmp_path, "s.csv", "\n".join([header, *lines]) + "\n"))
    assert again.applied == result.applied and again.errors == result.errors
    session.expire_all()
    assert count(session, Snapshot) == len(expected)
