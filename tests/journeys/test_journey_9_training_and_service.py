"""JOURNEY 9 — training and service quality, end to end in the web client.

Monday evening the staff school (员工夜校) takes attendance; a complaint against a manager is
verified; both show on the scorecard beside results and process (follow-ups logged, tasks on
time), and the ranking within the branch moves accordingly.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

from sqlalchemy import select

from appraisal import ledger
from appraisal.models import Attendance, Complaint, LedgerEvent, TrainingSession
from campaigns.models import Target
from config import clock
from org.models import Staff
from tests.factories import login, make_campaign, make_customer
from tests.integration.queue_helpers import make_task


def branch_rows(html: str, branch: str) -> list[dict[str, str]]:
    """The scorecard rows of ``branch``: rank within the branch, staff, and the four parts."""
    rows = []
    for tr in re.findall(r'<tr data-testid="score-row">(.*?)</tr>', html, re.S):
        cells = [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", tr, re.S)]
        if cells[3] == branch:
            rows.append(
                dict(
                    zip(
                        (
                            "rank",
                            "union_rank",
                            "staff",
                            "branch",
                            "results",
                            "process",
                            "service",
                            "training",
                            "score",
                        ),
                        cells,
                        strict=True,
                    )
                )
            )
    return sorted(rows, key=lambda r: int(r["rank"]))


def _on_a_day_with_a_monday_behind_it(monkeypatch) -> None:  # noqa: ANN001
    """The journey needs this month's Monday school to have been held already: in the first days
    of a month that begins after a Monday (e.g. Tuesday the 1st), move the union's clock forward to
    the month's first Monday (forward only, so everything the fixtures made is still in the past)."""
    real = clock.now()
    if (real.date() - dt.timedelta(days=real.weekday())).month == real.month:
        return
    shifted = real + dt.timedelta(days=(7 - real.weekday()) % 7)
    monkeypatch.setattr(clock, "now", lambda: shifted)


def test_journey_9_staff_school_and_a_complaint_move_the_branch_ranking(client, session, union, monkeypatch):
    _on_a_day_with_a_monday_behind_it(monkeypatch)
    u = union
    today = clock.today()
    month = ledger.month_of(today)
    camp = make_campaign(
        session,
        u.director_b1,
        [u.b1],
        state="active",
        start_date=today.replace(day=1),
        targets=[
            Target(measure="accounts_opened", staff_id=u.m1.id, value=Decimal(10)),
            Target(measure="accounts_opened", staff_id=u.m2.id, value=Decimal(10)),
        ],
    )
    # results this month: 李晓燕 opened 5 of 10, 张国强 4 of 10
    for i, (staff, n) in enumerate(((u.m1, 5), (u.m2, 4))):
        for k in range(n):
            session.add(
                LedgerEvent(
                    event_id=f"J9-{i}-{k}",
                    occurred_on=today.replace(day=1),
                    month=month,
                    staff_id=staff.id,
                    campaign_id=camp.id,
                    measure="accounts_opened",
                    quantity=1,
                    amount=Decimal(0),
                )
            )
    tasks = [make_task(session, u.m1, make_customer(session, u.b1, u.m1), campaign=camp) for _ in range(4)]
    session.commit()
    ids = {"m1": u.m1.id, "m2": u.m2.id, "checker": u.checker.id, "dir": u.director_b1.id}

    def sign_in(key: str) -> None:
        login(client, session.get(Staff, ids[key]))

    # process: she logs four follow-ups, all on time
    sign_in("m1")
    for t in tasks:
        r = client.post(
            f"/queue/task/{t.id}/complete",
            data={"channel": "phone", "content": "介绍了开门红活动", "reaction": "neutral"},
        )
        assert r.status_code == 303

    # the scorecard before: 李晓燕 leads the branch on results and process
    sign_in("dir")
    before = branch_rows(client.get("/appraisal/scorecards").get_data(as_text=True), "B01")
    assert [r["staff"] for r in before][:2] == ["李晓燕 M0101", "张国强 M0102"]
    assert before[0]["results"] == "50.00" and before[1]["results"] == "40.00"
    assert before[0]["process"] == "60.00" and before[1]["process"] == "50.00"
    assert before[0]["training"] == "100.00" and before[0]["service"] == "100.00"

    # Monday evening: the staff school takes attendance (she is absent)
    monday = today - dt.timedelta(days=today.weekday())
    sign_in("checker")
    r = client.post(
        "/appraisal/training",
        data={
            "title": "员工夜校：存款产品与合规",
            "kind": "staff_school",
            "held_on": monday.isoformat(),
            "branch": "B01",
            "mandatory": "y",
        },
    )
    assert r.status_code == 303
    session.rollback()
    ts = session.scalar(select(TrainingSession))
    assert ts.held_on.weekday() == 0
    r = client.post(f"/appraisal/training/{ts.id}", data={"present": [str(ids["m2"])]})
    assert r.status_code == 303
    session.rollback()
    marks = dict(session.execute(select(Attendance.staff_id, Attendance.present)).all())
    assert marks[ids["m1"]] is False and marks[ids["m2"]] is True

    # a complaint against her is recorded and verified (the customer rated the handling 1 of 5)
    r = client.post(
        "/appraisal/complaints",
        data={"staff_no": "M0101", "received_on": today.isoformat(), "text": "客户投诉：办理业务态度不耐烦"},
    )
    assert r.status_code == 303
    session.rollback()
    complaint = session.scalar(select(Complaint))
    r = client.post(
        f"/appraisal/complaints/{complaint.id}/verify", data={"decision": "verified", "satisfaction": "1"}
    )
    assert r.status_code == 303
    session.rollback()
    assert session.get(Complaint, complaint.id).state == "verified"

    # the scorecard after: both show beside results and process, and the ranking moved
    sign_in("dir")
    after = branch_rows(client.get(f"/appraisal/scorecards?month={month}").get_data(as_text=True), "B01")
    assert [r["staff"] for r in after][:2] == ["张国强 M0102", "李晓燕 M0101"]
    li = next(r for r in after if r["staff"] == "李晓燕 M0101")
    zhang = next(r for r in after if r["staff"] == "张国强 M0102")
    assert (li["results"], li["process"]) == ("50.00", "60.00")  # unchanged
    assert (li["service"], li["training"]) == ("50.00", "0.00")  # (80 + 1×20) / 2; missed the school
    assert (zhang["service"], zhang["training"]) == ("100.00", "100.00")
    assert (li["rank"], zhang["rank"]) == ("2", "1")
    # the manager sees her branch's scorecard too
    sign_in("m1")
    mine = branch_rows(client.get("/appraisal/scorecards").get_data(as_text=True), "B01")
    assert mine[0]["staff"] == "张国强 M0102"
