"""Upload on /admin/imports: the import runs as a job; progress, report table and CSV download."""

from __future__ import annotations

import io
from pathlib import Path

import xlsxwriter
from sqlalchemy import func, select

from customers.models import Customer
from org.models import AuditLog
from tests.factories import login
from workflow.models import JobProgress

HEADER = "customer_no,type,name,branch_code\n"


def upload(
    client, content: bytes, filename: str = "客户 11月.csv", kind: str = "customers", strict: bool = False
):
    data = {"kind": kind, "file": (io.BytesIO(content), filename)}
    if strict:
        data["strict"] = "y"
    return client.post("/admin/imports", data=data, content_type="multipart/form-data")


def customers(session) -> int:
    session.rollback()
    return session.scalar(select(func.count()).select_from(Customer))


def uploads(app) -> list[str]:
    folder = Path(app.instance_path) / "uploads"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_upload_applies_valid_rows_and_shows_the_report(app, client, session, union):
    login(client, union.admin)
    assert client.get("/admin/imports").status_code == 200
    content = (
        HEADER + "C1,individual,张三,B01\nC2,<img src=x onerror=alert(1)>,李四,B01\nC3,individual,王五,B99\n"
    ).encode()
    r = upload(client, content)
    assert r.status_code == 303
    progress = session.scalar(select(JobProgress).where(JobProgress.kind == "import"))
    assert r.headers["Location"].endswith(f"/admin/imports/{progress.id}")
    assert progress.state == "done" and progress.result["applied"] == 1 and progress.result["rejected"] == 2
    page = client.get(f"/admin/imports/{progress.id}")
    assert page.status_code == 200
    assert "1 rows applied, 2 rows rejected" in page.text
    assert "&lt;img src=x onerror=alert(1)&gt;" in page.text and "<img src=x" not in page.text
    assert "unknown branch" in page.text and 'id="import-report"' in page.text
    assert "hx-get" not in page.text  # finished: no more polling
    report = client.get(f"/admin/imports/{progress.id}/report.csv")
    assert report.status_code == 200 and report.mimetype == "text/csv"
    lines = report.data.decode("utf-8-sig").splitlines()
    assert lines[0] == "row,column,value,reason" and lines[1].startswith("3,type,")
    assert lines[2] == "4,branch_code,B99,unknown branch"
    assert customers(session) == 1
    # stored under a generated name, never the user's; the upload itself is gone, the report kept
    names = uploads(app)
    assert len(names) == 1 and names[0].endswith(".report.csv") and "客户" not in names[0]
    assert (
        session.scalar(select(AuditLog).where(AuditLog.action == "import")).detail["file"] == "客户 11月.csv"
    )


def test_progress_fragment_polls_while_the_job_runs(client, session, union):
    login(client, union.admin)
    pending = JobProgress(
        kind="import", subject="import:customers:x.csv", state="running", done=5000, total=20000
    )
    session.add(pending)
    session.commit()
    fragment = client.get(f"/admin/imports/{pending.id}/status")
    assert fragment.status_code == 200
    assert f'hx-get="/admin/imports/{pending.id}/status"' in fragment.text and "5000 rows" in fragment.text
    assert "<html" not in fragment.text
    other = JobProgress(kind="launch", subject="campaign:X")
    session.add(other)
    session.commit()
    assert client.get(f"/admin/imports/{other.id}").status_code == 404
    assert client.get(f"/admin/imports/{other.id}/report.csv").status_code == 404


def test_strict_upload_applies_nothing(client, session, union):
    login(client, union.admin)
    r = upload(client, (HEADER + "C1,individual,张三,B01\nC2,individual,李四,B77\n").encode(), strict=True)
    assert r.status_code == 303
    page = client.get(r.headers["Location"])
    assert "Strict mode: 1 rows are bad, so nothing was applied." in page.text
    assert customers(session) == 0


def test_zero_byte_and_wrong_type_are_refused_on_the_form(app, client, session, union):
    login(client, union.admin)
    r = upload(client, b"")
    assert r.status_code == 422 and "The file is empty (0 bytes)." in r.text
    r = upload(client, b"<html></html>", filename="page.html")
    assert r.status_code == 422 and "Upload a .csv or .xlsx file." in r.text
    r = client.post("/admin/imports", data={"kind": "customers"}, content_type="multipart/form-data")
    assert r.status_code == 422 and "Choose a file." in r.text
    r = upload(client, b"a", kind="dragons")
    assert r.status_code == 422 and "Not a valid choice" in r.text
    assert session.scalar(select(func.count()).select_from(JobProgress)) == 0
    assert uploads(app) == []


def test_unusable_files_show_a_clear_message_and_change_nothing(app, client, session, union, tmp_path):
    login(client, union.admin)
    cases = [
        (b"\xff\xfe\x00\x00\xff\xff\xfe\xfe" * 8, "x.csv", "neither UTF-8 nor GB18030"),
        (b"customer_no,name\nC1,x\n", "x.csv", "missing required columns"),
        (b'customer_no,type,name,branch_code\nC1,individual,"a"b,B01\n', "x.csv", "malformed CSV"),
        (b"not a zip", "x.xlsx", "not a valid XLSX file"),
    ]
    merged = tmp_path / "m.xlsx"
    book = xlsxwriter.Workbook(str(merged))
    sheet = book.add_worksheet()
    sheet.merge_range(0, 0, 0, 1, "客户号")
    sheet.write_row(0, 2, ["姓名", "网点编号"])
    sheet.write_row(1, 0, ["C1", "individual", "张三", "B01"])
    book.close()
    cases.append((merged.read_bytes(), "m.xlsx", "merged cells in the header row"))
    formula = tmp_path / "f.xlsx"
    book = xlsxwriter.Workbook(str(formula))
    sheet = book.add_worksheet()
    sheet.write_row(0, 0, ["customer_no", "type", "name", "branch_code"])
    sheet.write_row(1, 0, ["C1", "individual"])
    sheet.write_formula(1, 2, '="张"&"三"', None, "张三")
    sheet.write(1, 3, "B01")
    book.close()
    cases.append((formula.read_bytes(), "f.xlsx", "cell C2 holds a formula"))
    for content, name, message in cases:
        r = upload(client, content, filename=name)
        assert r.status_code == 303, name
        page = client.get(r.headers["Location"])
        assert "The file cannot be used; nothing was changed." in page.text, name
        assert message in page.text, (name, page.text[-2000:])
    assert customers(session) == 0
    assert all(n.endswith(".report.csv") for n in uploads(app))


def test_a_file_over_the_size_limit_is_refused(app, client, session, union):
    login(client, union.admin)
    app.config["MAX_CONTENT_LENGTH"] = 4096  # stands in for the configured limit (a 2 GB file)
    r = upload(client, (HEADER + "C1,individual,张三,B01\n" * 400).encode())
    assert r.status_code == 413 and "The file is too large." in r.text
    assert customers(session) == 0
    assert session.scalar(select(func.count()).select_from(JobProgress)) == 0


def test_column_help_and_templates(client, union):
    login(client, union.admin)
    page = client.get("/admin/imports")
    assert "管户客户经理" in page.text and "<code>manager_staff_no</code>" in page.text
    english = client.get("/admin/imports/template/customers.csv")
    assert english.status_code == 200 and english.mimetype == "text/csv"
    assert english.data.decode("utf-8-sig").startswith("customer_no,type,name,id_number")
    chinese = client.get("/admin/imports/template/snapshots.csv?headers=zh")
    assert (
        chinese.data.decode("utf-8-sig").strip()
        == "客户号,日期,活期存款,定期存款,贷款,理财,月日均存款,风险状态"
    )
    assert client.get("/admin/imports/template/events.csv").status_code == 404
    login(client, union.director)
    assert client.get("/admin/imports/template/customers.csv").status_code == 403
