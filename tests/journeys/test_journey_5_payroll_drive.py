"""JOURNEY 5 — a payroll-account drive (代发工资), end to end in the web client.

The union targets the county hospital and two schools. The hospital, a key customer, goes to a
senior manager; the drive's tasks start with "contact the finance office". A bounty of 3 000 元 is
posted for the hospital's payroll; the senior manager takes it (exclusive for 14 days, nobody
else can take it), the agreement is claimed and verified, which wins the bounty, and the bounty is
paid in that month's incentive run (a statement line, then "paid" when the month is locked).

Each step of the drive makes the next once it is done (contact the finance office → negotiate →
agreement signed → accounts opened on site: the kind's templates with ``after:``), by the morning
job (``tasks.jobs.morning`` → ``tasks.cadence.generate``).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import select

from appraisal import ledger
from appraisal.models import IncentiveRun, StatementLine
from campaigns.bounty_models import Bounty
from campaigns.models import Assignment, Campaign
from config import clock
from config.database import db
from tasks.jobs import morning
from tasks.models import Claim, Task
from tests.factories import login, make_customer


def test_journey_5_payroll_drive_bounty_taken_verified_and_paid(client, session, union):
    u = union
    u.m2.senior = True  # 张国强, senior manager
    hospital = make_customer(
        session, u.b1, None, type="institution", name="县人民医院", is_key=True, customer_no="ORG0001"
    )
    schools = [
        make_customer(session, u.b1, None, type="institution", name=n, customer_no=f"ORG000{i + 2}")
        for i, n in enumerate(["城关一中", "城关小学"])
    ]
    session.commit()
    today = clock.today()

    # the union's director sets up the drive on the three institutions and launches it
    login(client, u.director)
    r = client.post(
        "/campaigns/editor/new",
        data={
            "kind": "payroll_accounts",
            "name": "代发工资攻坚",
            "code": "PAY-J5",
            "start": today.isoformat(),
            "end": (today + dt.timedelta(days=90)).isoformat(),
            "branches": ["B01"],
        },
    )
    assert r.status_code == 303, r.get_data(as_text=True)[-1500:]
    c = session.scalar(select(Campaign).where(Campaign.code == "PAY-J5"))
    assert [t["kind"] for t in c.task_templates] == [
        "contact_finance_office",
        "negotiate",
        "agreement",
        "accounts_on_site",
    ]
    r = client.post(
        f"/campaigns/editor/{c.id}/edit/population",
        data={"type_in": ["institution"], "customer_nos": "ORG0001, ORG0002, ORG0003"},
    )
    assert r.status_code == 303
    r = client.post(
        f"/campaigns/editor/{c.id}/edit/targets",
        data={
            "measure": "payroll_accounts",
            "basis": "daily_average",
            f"b_{u.b1.id}": "300",
            f"s_{u.m1.id}": "150",
            f"s_{u.m2.id}": "150",
            f"split_{u.b1.id}": "by_headcount",
            "action": "save",
        },
    )
    assert r.status_code == 303, r.get_data(as_text=True)[-1500:]
    r = client.post(f"/campaigns/editor/{c.id}/launch")
    assert r.status_code == 303
    session.rollback()

    # the hospital (a key customer) went to the senior manager, and says why
    a = session.scalar(select(Assignment).where(Assignment.customer_id == hospital.id))
    assert a.staff_id == u.m2.id and "senior" in a.reason
    assert {
        x.customer_id for x in session.scalars(select(Assignment).where(Assignment.campaign_id == c.id))
    } == {
        hospital.id,
        schools[0].id,
        schools[1].id,
    }
    first = session.scalar(select(Task).where(Task.assignment_id == a.id))
    assert first.kind == "contact_finance_office" and first.staff_id == u.m2.id

    # a bounty of 3 000 元 for the hospital's payroll
    db.session.remove()
    login(client, u.director_b1)
    r = client.post(
        "/bounties/",
        data={
            "title": "县人民医院代发工资",
            "customer_no": "ORG0001",
            "amount": "3000",
            "deadline": (today + dt.timedelta(days=30)).isoformat(),
            "exclusive_days": "14",
            "campaign_code": "PAY-J5",
        },
    )
    assert r.status_code == 303, r.get_data(as_text=True)[-1500:]
    session.rollback()
    bounty = session.scalar(select(Bounty))
    assert (bounty.amount, bounty.state, bounty.campaign_id) == (Decimal("3000.00"), "open", c.id)

    # the senior manager takes it: exclusive for 14 days; a colleague cannot
    login(client, u.m2)
    assert "县人民医院代发工资" in client.get("/bounties/").get_data(as_text=True)
    assert client.post(f"/bounties/{bounty.id}/take").status_code == 303
    session.rollback()
    bounty = session.get(Bounty, bounty.id)
    assert (bounty.state, bounty.taken_by, bounty.taken_until) == (
        "taken",
        u.m2.id,
        today + dt.timedelta(days=13),
    )
    login(client, u.m1)
    r = client.post(f"/bounties/{bounty.id}/take")
    assert r.status_code == 409 and b"already taken" in r.data

    # he walks the steps: finance office → negotiate → agreement signed → accounts opened on site
    login(client, u.m2)
    step = first
    said = {
        "contact_finance_office": "见了财务科长，同意下周谈代发方案",
        "negotiate": "谈妥代发费率与上门开卡安排",
        "agreement": "代发工资协议已签署",
        "accounts_on_site": "在医院现场开卡 120 户",
    }
    walked = []
    for kind in ("contact_finance_office", "negotiate", "agreement", "accounts_on_site"):
        assert step is not None and step.kind == kind and step.staff_id == u.m2.id, (kind, step)
        walked.append(kind)
        r = client.post(
            f"/queue/task/{step.id}/complete",
            data={"channel": "visit", "content": said[kind], "reaction": "interested"},
        )
        assert r.status_code == 303, r.get_data(as_text=True)[-1500:]
        session.rollback()
        morning()  # the next morning: the follow-on task of the step just done
        done_id = step.id
        step = session.scalar(
            select(Task).where(Task.assignment_id == a.id, Task.state == "open").order_by(Task.id)
        )
        if step is not None:
            assert step.id > done_id and step.source_key.startswith(f"tpl:{c.id}:")
            assert f'data-testid="task-{step.id}"' in client.get("/queue/").get_data(as_text=True)
    assert walked == ["contact_finance_office", "negotiate", "agreement", "accounts_on_site"]
    assert step is None  # the last step makes nothing more
    assert morning()["generated"] == 0  # never twice
    r = client.post(
        "/queue/claim",
        data={
            "task_id": str(first.id),
            "measure": "agreements_signed",
            "quantity": "1",
            "amount": "0",
            "evidence_text": "代发工资协议 2026-088",
        },
    )
    assert r.status_code == 303, r.get_data(as_text=True)[-1500:]
    session.rollback()
    claim = session.scalar(select(Claim))
    assert claim.customer_id == hospital.id and claim.measure == "agreements_signed"

    # the checker verifies the agreement: the bounty is won by its taker
    login(client, u.checker)
    assert client.post(f"/checks/{claim.id}/verify", data={}).status_code == 303
    session.rollback()
    assert session.get(Claim, claim.id).state == "verified"
    bounty = session.get(Bounty, bounty.id)
    assert (bounty.state, bounty.winner_id) == ("won", u.m2.id)

    # that month's run pays it: a bounty line on his statement, paid when the month is locked
    month = ledger.month_of(today)
    r = client.post("/appraisal/runs", data={"month": month, "scope": ""})
    assert r.status_code == 303, r.get_data(as_text=True)[-1500:]
    session.rollback()
    run = session.scalar(select(IncentiveRun).where(IncentiveRun.month == month))
    assert run.state == "computed"
    line = session.scalar(
        select(StatementLine).where(StatementLine.run_id == run.id, StatementLine.kind == "bounty")
    )
    assert (line.staff_id, line.amount) == (u.m2.id, Decimal("3000.00"))
    login(client, u.m2)
    statement = client.get(f"/appraisal/statement?month={month}").get_data(as_text=True)
    assert "县人民医院代发工资" in statement and "3,000.00" in statement
    login(client, u.director)
    assert client.post(f"/appraisal/runs/{run.id}/approve").status_code == 303
    login(client, u.checker)
    assert client.post(f"/appraisal/runs/{run.id}/lock", data={"imports_done": "y"}).status_code == 303
    session.rollback()
    assert session.get(IncentiveRun, run.id).state == "locked"
    bounty = session.get(Bounty, bounty.id)
    assert bounty.state == "paid" and bounty.paid_in == f"run:{month}:{run.scope_key}"
