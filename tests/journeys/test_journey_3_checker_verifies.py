"""JOURNEY 3 — the checker verifies results (业绩认定), end to end in the web client.

Yesterday's core-banking data confirms two claims: the scheduled job verifies them as the system.
刘复核 opens the verification queue: three remain, the flagged one first (five new accounts on one
phone number this week). He rejects it with a reason; the manager sees why on her claims page.
A checker who also claims results cannot verify his own claim.
"""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import select

from appraisal.models import LedgerEvent
from config import clock
from config.database import db
from customers.models import Holding
from org.services import create_staff
from tasks.jobs import auto_verify_claims
from tasks.models import Claim, Task
from tests.factories import login, make_campaign, make_customer
from tests.integration.queue_helpers import make_task

SHARED_PHONE = "13900001111"


def _claim_through_the_form(client, session, task: Task, amount: str = "0") -> Claim:
    r = client.post(
        "/queue/claim",
        data={
            "task_id": str(task.id),
            "measure": "accounts_opened",
            "quantity": "1",
            "amount": amount,
            "evidence_text": f"开户回单 task {task.id}",
        },
    )
    assert r.status_code == 303, r.get_data(as_text=True)[:1500]
    session.rollback()  # end the read snapshot: see what the request committed
    return session.scalars(select(Claim).order_by(Claim.id.desc())).first()


def test_journey_3_checker_verifies_rejects_the_flagged_one_and_not_his_own(client, session, union):
    u = union
    today = clock.today()
    yesterday = today - dt.timedelta(days=1)
    camp = make_campaign(session, u.director_b1, [u.b1], state="active")
    confirmed = [make_customer(session, u.b1, u.m1, name=f"钱{i}明") for i in range(2)]
    for c in confirmed:  # yesterday's core-banking import: their debit cards were opened
        session.add(Holding(customer_id=c.id, product="debit_card", opened_on=yesterday, branch_id=u.b1.id))
    # five new accounts on one phone number this week
    ring = [make_customer(session, u.b1, u.m1, name=f"孙{i}立", phone=SHARED_PHONE) for i in range(5)]
    for c in ring:
        session.add(
            Holding(
                customer_id=c.id,
                product="debit_card",
                opened_on=today - dt.timedelta(days=2),
                branch_id=u.b1.id,
            )
        )
    plain = [make_customer(session, u.b1, u.m1, name=f"周{i}平") for i in range(2)]
    tasks = {c.id: make_task(session, u.m1, c, campaign=camp) for c in confirmed + [ring[0]] + plain}
    session.commit()

    # the manager claims five results
    login(client, u.m1)
    made = {
        c.id: _claim_through_the_form(client, session, tasks[c.id]) for c in confirmed + [ring[0]] + plain
    }
    flagged = made[ring[0].id]
    assert flagged.needs_review and "5 new accounts on one phone" in flagged.flags[0]
    assert SHARED_PHONE not in flagged.flags[0]  # masked in the reason

    # overnight: the scheduled job verifies what core banking confirms
    result = auto_verify_claims()
    assert result["verified"] == 2
    session.rollback()  # end the read snapshot: see what the requests committed
    for c in confirmed:
        claim = session.get(Claim, made[c.id].id)
        assert claim.state == "verified" and claim.verifier_id is None  # the system verified it
        assert session.scalar(select(LedgerEvent).where(LedgerEvent.claim_id == claim.id)) is not None

    # 刘复核 opens the queue: three remain, the flagged one first with its reason
    login(client, u.checker)
    page = client.get("/checks/").get_data(as_text=True)
    page = page[page.index('data-testid="check-queue"') :]
    shown = [int(x) for x in re.findall(r'data-testid="claim-(\d+)"', page)]
    remaining = [made[ring[0].id].id, made[plain[0].id].id, made[plain[1].id].id]
    assert shown == remaining  # three remain, the flagged one first
    assert "5 new accounts on one phone" in page or "Flag" in page
    detail = client.get(f"/checks/{flagged.id}").get_data(as_text=True)
    assert "5 new accounts on one phone" in detail and SHARED_PHONE not in detail

    # a rejection needs a reason; with one it is stored and the manager is told
    r = client.post(f"/checks/{flagged.id}/reject", data={"reason": ""}, follow_redirects=True)
    assert b"a reason is required" in r.data
    session.rollback()  # end the read snapshot: see what the requests committed
    assert session.get(Claim, flagged.id).state == "submitted"
    reason = "同一手机号本周开5户，疑似代开，请补充客户本人到场证明"
    r = client.post(f"/checks/{flagged.id}/reject", data={"reason": reason})
    assert r.status_code == 303 and r.headers["Location"].endswith("/checks/")
    session.rollback()  # end the read snapshot: see what the requests committed
    rejected = session.get(Claim, flagged.id)
    assert (rejected.state, rejected.reason, rejected.verifier_id) == ("rejected", reason, u.checker.id)
    assert session.scalar(select(LedgerEvent).where(LedgerEvent.claim_id == flagged.id)) is None
    page = client.get("/checks/").get_data(as_text=True)
    assert f'data-testid="claim-{flagged.id}"' not in page

    # the manager sees why
    login(client, u.m1)
    mine = client.get("/queue/claims").get_data(as_text=True)
    block = mine[mine.index(f"#{flagged.id} ") :]
    assert "rejected" in block[:600] and reason in block[:1200]
    bell = client.get("/queue/notifications").get_data(as_text=True)
    assert f"#{flagged.id}" in bell

    # he cannot verify his own claim
    dual = create_staff(session, branch=u.b1, roles=("manager", "checker"), staff_no="MK01", name="双岗")
    own_task = make_task(session, dual, plain[0], campaign=camp)
    session.commit()
    db.session.remove()  # a stale read transaction left in the thread's session would hide him
    login(client, dual)
    own = _claim_through_the_form(client, session, own_task)
    page = client.get(f"/checks/{own.id}").get_data(as_text=True)
    assert "your own claim" in page and 'data-testid="verify"' not in page
    r = client.post(f"/checks/{own.id}/verify", data={})
    assert r.status_code == 403 and b"your own claim" in r.data
    session.rollback()  # end the read snapshot: see what the requests committed
    assert session.get(Claim, own.id).state == "submitted"
    # another checker can
    login(client, u.checker)
    assert client.post(f"/checks/{own.id}/verify", data={}).status_code == 303
    session.rollback()  # end the read snapshot: see what the requests committed
    assert session.get(Claim, own.id).state == "verified"
