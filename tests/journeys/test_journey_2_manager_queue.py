"""JOURNEY 2 — a manager works her queue in the field (客户经理), end to end in the web client.

李晓燕 opens her queue: "Today: 12, overdue: 2". The first task: call 张*明 (masked), a returning
migrant worker and farmer; the suggestion names a visit and its time, and her follow-up plan shows
(goal, likely objection, prepared response). She records the follow-up (channel, what was said,
"interested", next step "branch visit Friday"), which books an appointment; he is a key customer,
so her director is added to accompany him (and told). Later she claims "time deposit opened,
80 000" with a photo of the receipt. (The same journey in Chromium on a phone:
tests/browser/test_journey_2.py.)
"""

from __future__ import annotations

import datetime as dt
import io
import re

from sqlalchemy import select

from config import clock
from tasks.models import Appointment, Claim, FollowUp, Notification, Task
from tests.factories import login, make_campaign, make_customer
from tests.integration.queue_helpers import make_assignment, make_task

PLAN = {
    "goal": "move his remittance into a 1-year time deposit",
    "reactions": [{"reaction": "wants cash for the new year", "response": "offer the 6-month product"}],
}


def next_friday(today: dt.date) -> dt.date:
    return today + dt.timedelta(days=(4 - today.weekday()) % 7 or 7)


def build_queue(session, u):
    """12 tasks due today (张建明's first: key customer, VIP) and 2 overdue, for 李晓燕 (m1)."""
    today = clock.today()
    camp = make_campaign(session, u.director_b1, [u.b1], state="active", name="开门红")
    zhang = make_customer(
        session,
        u.b1,
        u.m1,
        name="张建明",
        tier="vip",
        occupation="农民",
        tags=["returning_migrant_worker", "farmer"],
        phone="13812345678",
        preferred_channel="visit",
        is_key=True,
    )
    a = make_assignment(session, camp, zhang, u.m1, plan=PLAN)
    first = make_task(
        session, u.m1, zhang, campaign=camp, assignment=a, title="call about time deposits", priority=100
    )
    for i in range(11):
        c = make_customer(session, u.b1, u.m1, name=f"王{i}华")
        make_task(session, u.m1, c, campaign=camp, title=f"contact {i}")
    for i in range(2):
        c = make_customer(session, u.b1, u.m1, name=f"赵{i}军")
        make_task(session, u.m1, c, campaign=camp, title=f"late {i}", due=today - dt.timedelta(days=2 + i))
    session.commit()
    return camp, zhang, a, first


def test_journey_2_manager_works_her_queue(client, session, union):
    u = union
    camp, zhang, a, first = build_queue(session, u)
    login(client, u.m1)

    # 8:30 — she opens campaignflow: the home page is her queue
    r = client.get("/")
    assert r.status_code == 302 and r.headers["Location"].endswith("/queue/")
    page = client.get("/queue/").get_data(as_text=True)
    assert "Today: 12" in page and "Overdue: 2" in page
    # masked name, never the full one
    assert "张*明" in page and "张建明" not in page and "13812345678" not in page
    # the first task card: suggestion (a visit, with a time window and its reason) and the plan goal
    card = page[page.index(f'data-testid="task-{first.id}"') :]
    card = card[: card.index('data-testid="task-', 20)] if 'data-testid="task-' in card[20:] else card
    assert "Suggested" in card and "customer prefers visit" in card
    # the rule for returning migrant workers comes before the farmers' evening rule (see the report)
    assert re.search(r"\d\d:\d\d-\d\d:\d\d", card)
    assert "move his remittance into a 1-year time deposit" in card

    # the task: her follow-up plan (goal, likely objection, prepared response)
    detail = client.get(f"/queue/task/{first.id}").get_data(as_text=True)
    assert "wants cash for the new year" in detail and "offer the 6-month product" in detail
    assert "张建明" not in detail

    # she calls and records the follow-up; next step "branch visit Friday" books the appointment
    form = client.get(f"/queue/task/{first.id}/complete").get_data(as_text=True)
    assert "1-year time deposit" in form
    friday = next_friday(clock.today())
    r = client.post(
        f"/queue/task/{first.id}/complete",
        data={
            "channel": "phone",
            "content": "他想过年用现金；介绍了6个月定期，愿意周五来网点",
            "reaction": "interested",
            "next_step": "branch visit Friday",
            "next_due": friday.isoformat(),
            "appointment_at": f"{friday.isoformat()}T10:00",
        },
    )
    assert r.status_code == 303, r.get_data(as_text=True)[:2000]
    session.rollback()  # end the read snapshot: see what the requests committed
    assert session.get(Task, first.id).state == "done"
    fu = session.scalar(select(FollowUp).where(FollowUp.task_id == first.id))
    assert (fu.channel, fu.reaction, fu.next_step) == ("phone", "interested", "branch visit Friday")
    appt = session.scalar(select(Appointment).where(Appointment.customer_id == zhang.id))
    assert appt.at == dt.datetime.combine(friday, dt.time(10, 0)) and appt.staff_id == u.m1.id
    # a key customer: the branch director accompanies and is told
    assert appt.accompanied_by_id == u.director_b1.id
    told = session.scalars(select(Notification.text).where(Notification.staff_id == u.director_b1.id)).all()
    assert any("accompany" in t for t in told), told
    # the next step is in her queue for Friday: one task, the appointment's (not a second one)
    on_friday = session.scalars(
        select(Task).where(Task.staff_id == u.m1.id, Task.due_on == friday, Task.customer_id == zhang.id)
    ).all()
    assert [t.source for t in on_friday] == ["appointment"]
    appts = client.get("/queue/appointments").get_data(as_text=True)
    assert friday.isoformat() in appts and "张*明" in appts
    login(client, u.director_b1)
    assert friday.isoformat() in client.get("/queue/appointments").get_data(as_text=True)

    # later: she claims "time deposit opened, 80 000" with a photo of the receipt
    login(client, u.m1)
    claim_form = client.get(f"/queue/claim?task_id={first.id}").get_data(as_text=True)
    assert "Photo of the receipt" in claim_form
    r = client.post(
        "/queue/claim",
        data={
            "task_id": str(first.id),
            "measure": "accounts_opened",
            "quantity": "1",
            "amount": "80000",
            "evidence_text": "一年期定期存单 No. 0012345",
            "evidence_file": (io.BytesIO(b"\x89PNG\r\n\x1a\n" + b"\0" * 32), "receipt.png"),
        },
        content_type="multipart/form-data",
    )
    assert r.status_code == 303 and r.headers["Location"].endswith("/queue/claims")
    claim = session.scalar(select(Claim))
    assert (claim.state, str(claim.amount), claim.customer_id, claim.campaign_id) == (
        "submitted",
        "80000.00",
        zhang.id,
        camp.id,
    )
    assert claim.evidence_file
    mine = client.get("/queue/claims").get_data(as_text=True)
    assert f'data-testid="claim-state-{claim.id}"' in mine and "submitted" in mine

    # the queue went down by one
    page = client.get("/queue/").get_data(as_text=True)
    assert "Today: 11" in page and "Overdue: 2" in page
