"""JOURNEY 8 — month end (月度绩效核算), end to end in the web client.

The HR clerk (a checker: 绩效管理员) runs last month for the union: a progress bar, totals per
branch with a chart. 张国强 opens his statement: every line names its rule and shows its
arithmetic ("1248300.00 × 0.15% = 1872.45, capped at 1200.00"). He disputes one line; the checker
accepts it, and the adjustment appears in the next month. The director approves, the clerk locks
the month (checklist) and exports the payroll sheet to Excel: read back with openpyxl, numbers are
numbers and Chinese names intact. Nothing of the month can change after that.
"""

from __future__ import annotations

import html
import io
import re
from decimal import Decimal

import openpyxl
from sqlalchemy import func, select

from appraisal import ledger
from appraisal.models import Dispute, IncentiveRun, StatementLine
from config import clock
from org.models import Staff
from tests.factories import login
from tests.integration.test_incentive_run import example, month  # noqa: F401 - fixtures


def test_journey_8_month_end(client, session, example, month):  # noqa: F811
    u = example[0]
    ids = {"m2": u.m2.id, "checker": u.checker.id, "director": u.director.id, "m1": u.m1.id}

    def sign_in(key: str) -> None:
        login(client, session.get(Staff, ids[key]))

    # the clerk runs the month for the union
    sign_in("checker")
    runs_page = client.get("/appraisal/runs").get_data(as_text=True)
    assert 'name="month"' in runs_page
    r = client.post("/appraisal/runs", data={"month": month, "scope": ""})
    assert r.status_code == 303
    session.rollback()
    run = session.scalar(select(IncentiveRun).where(IncentiveRun.month == month))
    assert run.state == "computed" and run.scope_branch_id is None
    page = client.get(r.headers["Location"]).get_data(as_text=True)
    assert 'role="progressbar"' in page and "100%" in page  # the job's progress (eager here)
    assert "Total per branch" in page and "data-chart" in page
    chart = re.search(r"data-chart='([^']*)'", page).group(1)
    assert "B01" in chart and "B02" in chart

    # 张国强 reads his statement: the rule and the arithmetic of every line
    sign_in("m2")
    statement = client.get("/appraisal/statement").get_data(as_text=True)
    assert month in statement
    assert "1248300.00 × 0.15% = 1872.45, capped at 1200.00" in statement
    lines = list(
        session.scalars(
            select(StatementLine).where(StatementLine.run_id == run.id, StatementLine.staff_id == ids["m2"])
        )
    )
    assert lines and all(ln.explanation for ln in lines)
    for ln in lines:
        assert ln.explanation in html.unescape(statement), ln.explanation
    dep = next(ln for ln in lines if ln.rule_id == "dep")
    assert dep.amount == Decimal("1200.00")

    # he disputes one line
    acc = next(ln for ln in lines if ln.rule_id == "acc")
    r = client.post(
        f"/appraisal/lines/{acc.id}/dispute",
        data={"category": "missing_result", "text": "10月18日开的一张卡没算进来"},
    )
    assert r.status_code == 303
    session.rollback()
    dispute = session.scalar(select(Dispute))
    assert dispute.state == "open" and dispute.staff_id == ids["m2"]

    # the checker accepts it with a 20.00 adjustment
    sign_in("checker")
    assert "10月18日开的一张卡没算进来" in client.get("/appraisal/disputes").get_data(as_text=True)
    r = client.post(
        f"/appraisal/disputes/{dispute.id}/answer",
        data={"decision": "accept", "adjustment": "20", "answer": "核实属实，次月补发"},
    )
    assert r.status_code == 303
    session.rollback()
    dispute = session.get(Dispute, dispute.id)
    assert (dispute.state, dispute.adjustment) == ("accepted", Decimal("20.00"))

    # the director approves; the clerk locks with the close checklist
    sign_in("director")
    assert client.post(f"/appraisal/runs/{run.id}/approve").status_code == 303
    sign_in("checker")
    page = client.get(f"/appraisal/runs/{run.id}").get_data(as_text=True)
    assert 'data-testid="checklist"' in page
    client.post(f"/appraisal/runs/{run.id}/lock", data={})  # imports not confirmed: refused
    session.rollback()
    assert session.get(IncentiveRun, run.id).state == "approved"
    assert client.post(f"/appraisal/runs/{run.id}/lock", data={"imports_done": "y"}).status_code == 303
    session.rollback()
    run = session.get(IncentiveRun, run.id)
    assert run.state == "locked"
    frozen = sorted(
        (ln.staff_id, ln.rule_id, ln.amount)
        for ln in session.scalars(select(StatementLine).where(StatementLine.run_id == run.id))
    )

    # the payroll sheet in Excel: numbers are numbers, Chinese names intact
    r = client.get(f"/appraisal/runs/{run.id}/export?fmt=xlsx")
    assert r.status_code == 200 and r.data[:2] == b"PK"
    assert "attachment" in r.headers["Content-Disposition"]
    wb = openpyxl.load_workbook(io.BytesIO(r.data))
    rows = list(wb.active.iter_rows(values_only=True))
    header = [str(h) for h in rows[0]]
    assert header == ["month", "staff_no", "staff_name", "branch_code", "total"]
    by_no = {row[1]: row for row in rows[1:]}
    zhang = by_no["M0102"]
    assert zhang[2] == "张国强" and zhang[0] == month and zhang[3] == "B01"
    assert isinstance(zhang[4], (int, float)) and not isinstance(zhang[4], bool)
    expected = session.scalar(
        select(func.sum(StatementLine.amount)).where(
            StatementLine.run_id == run.id, StatementLine.staff_id == ids["m2"]
        )
    )
    assert Decimal(str(zhang[4])).quantize(Decimal("0.01")) == expected
    assert by_no["M0101"][2] == "李晓燕"

    # nothing of the month can change after that
    r = client.post("/appraisal/runs", data={"month": month, "scope": ""})
    assert r.status_code == 200 and "locked" in r.get_data(as_text=True)
    r = client.post(f"/appraisal/runs/{run.id}/recompute", data={}, follow_redirects=True)
    assert "locked" in r.get_data(as_text=True)
    session.rollback()
    assert session.get(IncentiveRun, run.id).state == "locked"
    assert (
        sorted(
            (ln.staff_id, ln.rule_id, ln.amount)
            for ln in session.scalars(select(StatementLine).where(StatementLine.run_id == run.id))
        )
        == frozen
    )
    # no event can be posted into the locked month any more (the ledger's own check)
    assert ledger.is_closed(ledger.locked_scopes(session, [month]), month, u.b1.id)
    assert ledger.open_month(session, u.b1.id) != month

    # the accepted dispute appears as an adjustment next month
    this_month = ledger.month_of(clock.today())
    r = client.post("/appraisal/runs", data={"month": this_month, "scope": ""})
    assert r.status_code == 303
    session.rollback()
    nxt = session.scalar(select(IncentiveRun).where(IncentiveRun.month == this_month))
    adj = session.scalar(
        select(StatementLine).where(StatementLine.run_id == nxt.id, StatementLine.kind == "adjustment")
    )
    assert (adj.staff_id, adj.amount) == (ids["m2"], Decimal("20.00"))
    sign_in("m2")
    page = client.get(f"/appraisal/statement?month={this_month}").get_data(as_text=True)
    assert "adjustment for dispute" in page
