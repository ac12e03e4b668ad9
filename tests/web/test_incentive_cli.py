"""campaignflow incentives run|approve|lock|export and import events: good paths and every bad input."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from python_calamine import CalamineWorkbook
from sqlalchemy import func, select

from appraisal import ledger
from appraisal.models import IncentiveRun, LedgerEvent
from config import clock
from org.models import AuditLog


@pytest.fixture
def month() -> str:
    return ledger.previous_month(ledger.month_of(clock.today()))


@pytest.fixture
def campaign(session, union, factories, month):  # noqa: ANN001, ANN201
    first, _ = ledger.month_bounds(month)
    c = factories.campaign(
        session,
        union.director,
        [union.b1],
        code="ACC-1",
        start_date=first,
        end_date=clock.today() + dt.timedelta(days=30),
        state="active",
        rules=[
            {"id": "acc", "kind": "piece_rate", "measure": "accounts_opened", "rate": "20"},
            {"id": "late", "kind": "penalty", "measure": "tasks_overdue", "rate": "5"},
        ],
    )
    session.commit()
    return c


def write_events(path, rows, chinese=False):  # noqa: ANN001, ANN201
    header = (
        ["事件编号", "发生日期", "员工编号", "客户号", "活动编号", "指标", "数量", "金额"]
        if chinese
        else [
            "event_id",
            "occurred_on",
            "staff_no",
            "customer_no",
            "campaign_code",
            "measure",
            "quantity",
            "amount",
        ]
    )
    with open(path, "w", encoding="utf-8-sig", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def test_import_run_approve_lock_export(runner, session, union, campaign, month, tmp_path) -> None:  # noqa: ANN001
    day = f"{month}-15"
    f = write_events(
        tmp_path / "ev.csv",
        [
            ["E1", day, "M0101", "", "ACC-1", "accounts_opened", "3", ""],
            ["E2", day, "M0102", "", "ACC-1", "accounts_opened", "1", ""],
        ],
        chinese=True,
    )
    r = runner.invoke(args=["import", "events", str(f)])
    assert r.exit_code == 0, r.output
    assert "2 added" in r.output
    r = runner.invoke(args=["import", "events", str(f)])
    assert r.exit_code == 0 and "0 added, 2 already in the ledger" in r.output

    r = runner.invoke(args=["incentives", "run", "--month", month, "--by", "K0001"])
    assert r.exit_code == 0, r.output
    assert "2 lines" in r.output and "total 80.00" in r.output
    # the payroll sheet needs an approved run
    r = runner.invoke(args=["incentives", "export", "--month", month, "--out", str(tmp_path / "p.csv")])
    assert r.exit_code == 2 and "approved" in r.output
    r = runner.invoke(args=["incentives", "lock", "--month", month, "--by", "K0001", "--imports-done"])
    assert r.exit_code == 2 and "approved before it is locked" in r.output
    r = runner.invoke(args=["incentives", "approve", "--month", month, "--by", "D0001"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(args=["incentives", "lock", "--month", month, "--by", "K0001"])
    assert r.exit_code == 2 and "checklist" in r.output
    r = runner.invoke(args=["incentives", "lock", "--month", month, "--by", "K0001", "--imports-done"])
    assert r.exit_code == 0, r.output

    out = tmp_path / "payroll.xlsx"
    r = runner.invoke(args=["incentives", "export", "--month", month, "--out", str(out), "--by", "K0001"])
    assert r.exit_code == 0, r.output
    rows = CalamineWorkbook.from_path(str(out)).get_sheet_by_index(0).to_python()
    assert rows[0] == ["month", "staff_no", "staff_name", "branch_code", "total"]
    assert rows[1] == [month, "M0101", "李晓燕", "B01", 60.0]  # a number, Chinese intact
    out = tmp_path / "lines.csv"
    r = runner.invoke(args=["incentives", "export", "--month", month, "--out", str(out), "--lines"])
    assert r.exit_code == 0
    text = out.read_bytes().decode("utf-8-sig")
    parsed = list(csv.reader(io.StringIO(text)))
    assert parsed[0][:4] == ["month", "staff_no", "campaign_code", "rule_id"]
    assert parsed[1][7] == "60.00"
    assert session.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.action == "export")) == 2

    # changing a locked month: every route refuses, nothing changes
    r = runner.invoke(args=["incentives", "run", "--month", month])
    assert r.exit_code == 2 and "locked" in r.output
    late = write_events(
        tmp_path / "late.csv", [["E9", day, "M0101", "", "ACC-1", "accounts_opened", "1", ""]]
    )
    r = runner.invoke(args=["import", "events", str(late)])
    assert r.exit_code == 1 and "locked" in r.output
    assert session.scalar(select(func.count()).select_from(LedgerEvent)) == 2


def test_bad_events_file_reports_every_row(runner, session, union, campaign, month, tmp_path) -> None:  # noqa: ANN001
    day = f"{month}-15"
    future = (clock.today() + dt.timedelta(days=40)).isoformat()
    f = write_events(
        tmp_path / "bad.csv",
        [
            ["E1", day, "M0101", "", "ACC-1", "accounts_opened", "1", ""],
            ["E1", day, "M0101", "", "ACC-1", "accounts_opened", "1", ""],
            ["E2", day, "NOBODY", "", "ACC-1", "accounts_opened", "1", ""],
            ["E3", day, "M0101", "", "NOCAMP", "accounts_opened", "1", ""],
            ["E4", day, "M0101", "", "ACC-1", "accounts_opened", "-2", ""],
            ["E5", future, "M0101", "", "", "accounts_opened", "1", ""],
            ["=cmd()", day, "M0101", "", "ACC-1", "accounts_opened", "1", ""],
        ],
    )
    report = tmp_path / "report.csv"
    r = runner.invoke(args=["import", "events", str(f), "--strict", "--report", str(report)])
    assert r.exit_code == 1, r.output
    assert "nothing applied" in r.output
    for needle in ("duplicate event_id", "no staff member", "no campaign", "negative", "future"):
        assert needle in r.output
    assert session.scalar(select(func.count()).select_from(LedgerEvent)) == 0
    rows = list(csv.reader(io.StringIO(report.read_text(encoding="utf-8-sig"))))
    assert rows[0] == ["row", "column", "value", "reason"]
    assert all(not cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row)
    r = runner.invoke(args=["import", "events", str(tmp_path / "x.txt")])
    assert r.exit_code == 2
    (tmp_path / "x.txt").write_text("x")
    r = runner.invoke(args=["import", "events", str(tmp_path / "x.txt")])
    assert r.exit_code == 2 and "unsupported" in r.output


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["incentives", "run", "--month", "2026/10"], "YYYY-MM"),
        (["incentives", "run", "--month", "2026-13"], "YYYY-MM"),
        (["incentives", "run", "--month", "FUTURE"], "future"),
        (["incentives", "run", "--month", "PAST", "--scope", "NOPE"], "no branch"),
        (["incentives", "approve", "--month", "PAST", "--by", "D0001"], "no union run"),
        (["incentives", "approve", "--month", "PAST", "--by", "NOBODY"], "no staff member"),
        (["incentives", "export", "--month", "PAST", "--out", "x.pdf"], ".csv or .xlsx"),
        (["incentives", "export", "--month", "PAST", "--out", "x.csv"], "no union run"),
    ],
)
def test_bad_input_exit_2(runner, session, union, args, needle) -> None:  # noqa: ANN001
    past = ledger.previous_month(ledger.month_of(clock.today()))
    future = ledger.month_of(clock.today() + dt.timedelta(days=40))
    args = [future if a == "FUTURE" else past if a == "PAST" else a for a in args]
    r = runner.invoke(args=args)
    assert r.exit_code == 2, r.output
    assert needle in r.output
    assert session.scalar(select(func.count()).select_from(IncentiveRun)) == 0


def test_approving_unfinished_run_and_four_eyes(runner, session, union, campaign, month) -> None:  # noqa: ANN001
    from appraisal.runs import begin_run

    begin_run(session, month, actor_id=union.checker.id)
    session.commit()
    r = runner.invoke(args=["incentives", "approve", "--month", month, "--by", "D0001"])
    assert r.exit_code == 2 and "still computing" in r.output
    r = runner.invoke(args=["incentives", "run", "--month", month, "--by", "D0001"])
    assert r.exit_code == 0
    r = runner.invoke(args=["incentives", "approve", "--month", month, "--by", "D0001"])
    assert r.exit_code == 2 and "four eyes" in r.output
    r = runner.invoke(args=["incentives", "approve", "--month", month, "--by", "M0101"])
    assert r.exit_code == 2 and "only a director" in r.output
    assert session.scalar(select(IncentiveRun.state)) == "computed"
