"""Appraisal pages and API: runs with progress, approve/lock with checklist, exports, statement with
arithmetic, what-if and drill-down, disputes, scorecards, training attendance, complaints; bad input."""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal

from sqlalchemy import func, select

from appraisal import ledger
from appraisal.models import (
    Attendance,
    Complaint,
    Dispute,
    IncentiveRun,
    StatementLine,
    TrainingSession,
)
from config import clock
from org.models import AuditLog
from tests.factories import bearer, login
from tests.integration.test_incentive_run import example, month  # noqa: F401 - fixtures


def _run(client, session, union, month):  # noqa: ANN001, ANN202, F811
    login(client, union.checker)
    r = client.post("/appraisal/runs", data={"month": month, "scope": ""})
    assert r.status_code == 303, r.data
    return session.scalar(select(IncentiveRun).where(IncentiveRun.month == month))


def test_month_end_journey(client, session, example, month) -> None:  # noqa: ANN001, F811
    u = example[0]
    run = _run(client, session, u, month)
    session.refresh(run)
    assert run.state == "computed"  # jobs run eagerly in tests
    page = client.get(f"/appraisal/runs/{run.id}").get_data(as_text=True)
    assert "data-chart" in page and "B01" in page and "computed" in page.lower()
    # the manager reads his statement: arithmetic, what-if, drill-down
    login(client, u.m2)
    page = client.get("/appraisal/statement").get_data(as_text=True)
    assert "1248300.00 × 0.15% = 1872.45, capped at 1200.00" in page
    assert "One more result would add 20.00" in page
    dep = session.scalar(
        select(StatementLine).where(StatementLine.staff_id == u.m2.id, StatementLine.rule_id == "acc")
    )
    events = client.get(f"/appraisal/lines/{dep.id}/events").get_data(as_text=True)
    assert "accounts_opened" in events and "EV" in events
    other = session.scalar(select(StatementLine).where(StatementLine.staff_id == u.m1.id).limit(1))
    assert client.get(f"/appraisal/lines/{other.id}/events").status_code == 404  # not his line
    assert (
        client.post(
            f"/appraisal/lines/{other.id}/dispute", data={"category": "other", "text": "x"}
        ).status_code
        == 404
    )
    # he disputes a line (with evidence)
    r = client.post(
        f"/appraisal/lines/{dep.id}/dispute",
        data={
            "category": "missing_result",
            "text": "one account missing",
            "attachment": (io.BytesIO(b"scan"), "scan.pdf"),
        },
        content_type="multipart/form-data",
    )
    assert r.status_code == 303
    dispute = session.scalar(select(Dispute))
    assert dispute.attachment == b"scan" and dispute.state == "open"
    assert client.get("/appraisal/runs").status_code == 403  # managers do not see runs
    # the checker accepts it; the director approves; the checker locks with the checklist
    login(client, u.checker)
    assert "one account missing" in client.get("/appraisal/disputes").get_data(as_text=True)
    r = client.post(
        f"/appraisal/disputes/{dispute.id}/answer",
        data={"decision": "accept", "adjustment": "abc", "answer": "ok"},
    )
    assert r.status_code == 303
    session.refresh(dispute)
    assert dispute.state == "open"  # bad adjustment: nothing changed
    r = client.post(
        f"/appraisal/disputes/{dispute.id}/answer",
        data={"decision": "accept", "adjustment": "20", "answer": "ok"},
    )
    session.refresh(dispute)
    assert dispute.state == "accepted" and dispute.adjustment == Decimal("20.00")
    login(client, u.checker)
    assert client.post(f"/appraisal/runs/{run.id}/approve").status_code == 403  # not a director
    login(client, u.director_b1)
    assert (
        client.post(f"/appraisal/runs/{run.id}/approve").status_code == 404
    )  # branch director: union run not in scope
    login(client, u.director)
    assert client.post(f"/appraisal/runs/{run.id}/approve").status_code == 303
    login(client, u.checker)
    page = client.get(f"/appraisal/runs/{run.id}").get_data(as_text=True)
    assert "Close checklist" in page
    r = client.post(f"/appraisal/runs/{run.id}/lock", data={}, follow_redirects=True)
    assert "close checklist is not complete" in r.get_data(as_text=True)
    session.refresh(run)
    assert run.state == "approved"  # imports not confirmed
    client.post(f"/appraisal/runs/{run.id}/lock", data={"imports_done": "y"})
    session.refresh(run)
    assert run.state == "locked"
    r = client.get(f"/appraisal/runs/{run.id}/export?fmt=xlsx")
    assert r.status_code == 200 and r.data[:2] == b"PK"
    r = client.get(f"/appraisal/runs/{run.id}/export?fmt=csv&lines=1")
    assert "adjustment" not in r.get_data(as_text=True) and "M0102" in r.get_data(as_text=True)
    assert session.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.action == "export")) == 2
    # changing the locked month is refused
    r = client.post("/appraisal/runs", data={"month": month, "scope": ""})
    assert r.status_code == 200 and "locked" in r.get_data(as_text=True)
    # November: the adjustment appears
    this_month = ledger.month_of(clock.today())
    nxt = _run(client, session, u, this_month)
    adj = session.scalar(
        select(StatementLine).where(StatementLine.run_id == nxt.id, StatementLine.kind == "adjustment")
    )
    assert adj.staff_id == u.m2.id and adj.amount == Decimal("20.00")
    login(client, u.m2)
    page = client.get(f"/appraisal/statement?month={this_month}").get_data(as_text=True)
    assert "adjustment for dispute" in page


def test_run_form_bad_input(client, session, union) -> None:  # noqa: ANN001
    login(client, union.checker)
    for bad, needle in (
        ("2026/10", "YYYY-MM"),
        (ledger.month_of(clock.today() + dt.timedelta(days=40)), "future"),
    ):
        r = client.post("/appraisal/runs", data={"month": bad, "scope": ""})
        assert r.status_code == 200 and needle in r.get_data(as_text=True)
    assert session.scalar(select(func.count()).select_from(IncentiveRun)) == 0
    assert client.get("/appraisal/runs/999").status_code == 404


def test_api_statement_and_runs(client, session, example, month) -> None:  # noqa: ANN001, F811
    u = example[0]
    _run(client, session, u, month)
    r = client.get("/api/v1/appraisal/statement", headers=bearer(session, u.m2))
    body = r.get_json()
    assert r.status_code == 200 and body["month"] == month
    assert body["total"] == "2273.63"
    assert any("capped at 1200.00" in line["explanation"] for line in body["lines"])
    assert client.get("/api/v1/appraisal/runs", headers=bearer(session, u.m2)).status_code == 403
    runs = client.get("/api/v1/appraisal/runs", headers=bearer(session, u.checker)).get_json()["items"]
    assert runs[0]["month"] == month and runs[0]["state"] == "computed"
    assert "/appraisal/statement" in client.get("/api/docs/openapi.json").get_data(as_text=True)


def test_training_complaints_and_scorecards(client, session, union) -> None:  # noqa: ANN001
    u = union
    login(client, u.checker)
    today = clock.today()
    r = client.post(
        "/appraisal/training",
        data={
            "title": "员工夜校",
            "kind": "staff_school",
            "held_on": today.isoformat(),
            "branch": "B01",
            "mandatory": "y",
        },
    )
    assert r.status_code == 303
    ts = session.scalar(select(TrainingSession))
    r = client.post(f"/appraisal/training/{ts.id}", data={"present": [str(u.m1.id)]})
    assert r.status_code == 303
    marks = dict(session.execute(select(Attendance.staff_id, Attendance.present)).all())
    assert marks[u.m1.id] is True and marks[u.m2.id] is False
    # import: staff_no, present
    upload = (io.BytesIO("staff_no,present\nM0102,是\n".encode()), "att.csv")
    client.post(f"/appraisal/training/{ts.id}", data={"upload": upload}, content_type="multipart/form-data")
    session.expire_all()
    assert session.scalar(select(Attendance.present).where(Attendance.staff_id == u.m2.id)) is True
    bad = (io.BytesIO(b"staff_no,present\nNOBODY,1\n"), "att.csv")
    r = client.post(
        f"/appraisal/training/{ts.id}",
        data={"upload": bad},
        content_type="multipart/form-data",
        follow_redirects=True,
    )
    assert "no staff member NOBODY" in r.get_data(as_text=True)
    r = client.post(
        "/appraisal/training",
        data={
            "title": "x",
            "kind": "staff_school",
            "held_on": (today + dt.timedelta(days=3)).isoformat(),
            "branch": "B01",
        },
    )
    assert "future" in r.get_data(as_text=True)
    # complaints
    r = client.post(
        "/appraisal/complaints",
        data={"staff_no": "M0101", "received_on": today.isoformat(), "text": "态度差"},
    )
    assert r.status_code == 303
    r = client.post(
        "/appraisal/complaints", data={"staff_no": "NOPE", "received_on": today.isoformat(), "text": "x"}
    )
    assert "no staff member" in r.get_data(as_text=True)
    c = session.scalar(select(Complaint))
    client.post(f"/appraisal/complaints/{c.id}/verify", data={"decision": "verified", "satisfaction": "2"})
    session.refresh(c)
    assert c.state == "verified" and c.satisfaction == 2
    # scorecards: the complaint and the missed session move M0101 below M0102 in B01
    page = client.get("/appraisal/scorecards").get_data(as_text=True)
    assert page.index("M0102") < page.index("M0101")
    login(client, u.director)
    r = client.post(
        "/appraisal/scorecards",
        data={
            "w_results": 0,
            "w_process": 0,
            "w_service": 0,
            "w_training": 0,
            "follow_up_norm": 20,
            "complaint_penalty": 20,
        },
    )
    assert "at least one part" in r.get_data(as_text=True)
    r = client.post(
        "/appraisal/scorecards",
        data={
            "w_results": 10,
            "w_process": 10,
            "w_service": 70,
            "w_training": 10,
            "follow_up_norm": 20,
            "complaint_penalty": 20,
        },
    )
    assert r.status_code == 303
    login(client, u.m1)
    assert client.get("/appraisal/scorecards").status_code == 200
    assert client.post("/appraisal/scorecards", data={"w_results": 1}).status_code == 403


def test_computing_run_shows_progress_and_no_lines(client, session, union, month) -> None:  # noqa: ANN001, F811
    from appraisal.runs import begin_run
    from workflow.models import JobProgress

    run = begin_run(session, month)
    session.add(
        JobProgress(kind="incentive_run", subject=f"run:{month}:union", state="running", done=1, total=4)
    )
    session.commit()
    login(client, union.checker)
    page = client.get(f"/appraisal/runs/{run.id}").get_data(as_text=True)
    assert "hx-get" in page and "being computed" in page and "Payroll sheet" not in page
    r = client.get(f"/appraisal/runs/{run.id}/export?fmt=csv&lines=1")
    assert r.status_code == 303  # nothing to export while computing
    login(client, union.director)
    r = client.post(f"/appraisal/runs/{run.id}/approve", follow_redirects=True)
    assert "still computing" in r.get_data(as_text=True)
    session.refresh(run)
    assert run.state == "computing"


def test_approving_and_locking_ask_enrolled_people_for_a_fresh_code(client, session, example, month) -> None:  # noqa: ANN001, F811
    """Step-up (AUTH-05, LED-09): with two-step sign-in on, releasing money needs a current code."""
    import time

    import pyotp

    from org import mfa

    u = example[0]
    run = _run(client, session, u, month)
    u.director.totp_secret = pyotp.random_base32()
    u.checker.totp_secret = pyotp.random_base32()
    session.commit()
    login(client, u.director)
    page = client.get(f"/appraisal/runs/{run.id}").get_data(as_text=True)
    assert 'data-testid="step-up-code"' in page
    r = client.post(f"/appraisal/runs/{run.id}/approve", data={"code": "000000"}, follow_redirects=True)
    assert "Confirm with a current code" in r.get_data(as_text=True)
    session.refresh(run)
    assert run.state == "computed"
    code = pyotp.TOTP(u.director.totp_secret).now()
    assert client.post(f"/appraisal/runs/{run.id}/approve", data={"code": code}).status_code == 303
    session.refresh(run)
    assert run.state == "approved"
    login(client, u.checker)
    client.post(f"/appraisal/runs/{run.id}/lock", data={"imports_done": "y"})  # no code
    session.refresh(run)
    assert run.state == "approved"
    code = pyotp.TOTP(u.checker.totp_secret).at(time.time() + mfa.STEP)
    client.post(f"/appraisal/runs/{run.id}/lock", data={"imports_done": "y", "code": code})
    session.refresh(run)
    assert run.state == "locked"
