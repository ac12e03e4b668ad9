"""``campaignflow import …``: exit codes 0/1/2, --strict, --report."""

from __future__ import annotations

import csv
from pathlib import Path

from sqlalchemy import func, select

from customers.identity import id_check_char
from customers.models import Customer, Snapshot
from org.models import Branch

HEADER = "customer_no,type,name,id_number,branch_code,manager_staff_no\n"


def rid() -> str:
    first = "51072219800101123"
    return first + id_check_char(first)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def customers(session) -> int:
    session.rollback()  # see the CLI's commits
    return session.scalar(select(func.count()).select_from(Customer))


def report_rows(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8-sig", newline="") as f:
        return list(csv.DictReader(f))


def test_all_rows_applied_exits_0(runner, session, union, tmp_path):
    path = write(tmp_path, "c.csv", HEADER + f"C1,individual,张三,{rid()},B01,M0101\nC2,个人,李四,,B02,\n")
    out = tmp_path / "report.csv"
    result = runner.invoke(args=["import", "customers", str(path), "--report", str(out)])
    assert result.exit_code == 0, result.output
    assert "2 applied, 0 rejected" in result.output
    assert customers(session) == 2
    assert report_rows(out) == []
    again = runner.invoke(args=["import", "customers", str(path)])
    assert again.exit_code == 0 and customers(session) == 2


def test_some_rows_rejected_exits_1_with_report(runner, session, union, tmp_path):
    path = write(
        tmp_path,
        "c.csv",
        HEADER + "C1,individual,张三,,B01,\nC2,individual,李四,,B99,\nC3,alien,王五,,B01,\n",
    )
    out = tmp_path / "report.csv"
    result = runner.invoke(args=["import", "customers", str(path), "--report", str(out)])
    assert result.exit_code == 1, result.output
    assert "1 applied, 2 rejected" in result.output
    assert "row 3 branch_code 'B99': unknown branch" in result.output
    rows = report_rows(out)
    assert [(r["row"], r["column"], r["value"]) for r in rows] == [
        ("3", "branch_code", "B99"),
        ("4", "type", "alien"),
    ]
    assert rows[0]["reason"] == "unknown branch"
    assert customers(session) == 1


def test_strict_applies_nothing_and_exits_1(runner, session, union, tmp_path):
    path = write(tmp_path, "c.csv", HEADER + "C1,individual,张三,,B01,\nC2,individual,李四,,B01,M404\n")
    result = runner.invoke(args=["import", "customers", str(path), "--strict"])
    assert result.exit_code == 1
    assert "--strict: nothing applied" in result.output
    assert customers(session) == 0


def test_unusable_file_exits_2_and_names_the_problem(runner, session, union, tmp_path):
    empty = write(tmp_path, "empty.csv", "")
    result = runner.invoke(args=["import", "customers", str(empty)])
    assert result.exit_code == 2 and "empty file" in result.output
    headers = write(tmp_path, "h.csv", "customer_no,name\nC1,x\n")
    out = tmp_path / "r.csv"
    result = runner.invoke(args=["import", "customers", str(headers), "--report", str(out)])
    assert result.exit_code == 2 and "missing required columns" in result.output
    assert "missing required columns" in report_rows(out)[0]["reason"]
    assert customers(session) == 0


def test_bad_arguments_exit_2(runner, union, tmp_path):
    missing = runner.invoke(args=["import", "customers", str(tmp_path / "nope.csv")])
    assert missing.exit_code == 2 and "does not exist" in missing.output
    kind = runner.invoke(args=["import", "dragons", str(tmp_path)])
    assert kind.exit_code == 2
    other = write(tmp_path, "c.txt", "x")
    wrong_type = runner.invoke(args=["import", "customers", str(other)])
    assert wrong_type.exit_code == 2 and "unsupported file type" in wrong_type.output


def test_branches_then_snapshots(runner, session, union, tmp_path):
    branches = write(tmp_path, "b.csv", "网点编号,网点名称,上级网点编号\nB03,玉丰信用社,U00\n")
    assert runner.invoke(args=["import", "branches", str(branches)]).exit_code == 0
    session.rollback()
    assert session.scalar(select(Branch).where(Branch.code == "B03")).parent_id == union.root.id
    runner.invoke(
        args=["import", "customers", str(write(tmp_path, "c.csv", HEADER + "C1,individual,张三,,B03,\n"))]
    )
    snaps = write(tmp_path, "s.csv", "客户号,日期,活期存款\nC1,2026-10-31,100.5\n")
    result = runner.invoke(args=["import", "snapshots", str(snaps)])
    assert result.exit_code == 0, result.output
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Snapshot)) == 1


def test_import_group_is_exposed_for_other_areas():
    from web.cli_customers import COMMANDS, import_cli

    assert import_cli in COMMANDS and import_cli.name == "import"
    assert {"branches", "staff", "customers", "snapshots", "holdings"} <= set(import_cli.commands)
