"""JOURNEY 7 — a manager leaves; customers are handed over (移交), end to end in the web client.

赵丽 moves to another branch. The director hands her customers (21 here, 214 in the story) to two
colleagues by load on /staff/leaving; the less loaded colleague receives more, so their loads end
level. Each new owner finds the tasks in their queue and, on each task, the whole trail of
follow-ups and why the assignment went to them.
"""

from __future__ import annotations

import re

from sqlalchemy import func, select

from campaigns import assignment
from campaigns.models import Assignment
from org.models import Staff
from tasks.models import FollowUp, Task
from tests.factories import login, make_campaign, make_customer, make_staff
from tests.integration.queue_helpers import make_assignment
from workflow.models import TransitionRecord

REASON = "调往新场信用社 (moves to another branch)"


def test_journey_7_leaving_manager_handed_over_to_two_colleagues_by_load(client, session, union):
    u = union
    zhao = make_staff(session, u.b1, staff_no="M0150", name="赵丽")
    nos = [make_customer(session, u.b1, zhao, name=f"客{i:02d}户").customer_no for i in range(21)]
    camp = make_campaign(
        session,
        u.director_b1,
        [u.b1],
        state="active",
        code="KMH-J7",
        population={"customers": {"customer_nos": nos}},
    )
    # 李晓燕 (m1) already carries 5 open customers of another campaign; 张国强 (m2) none
    other = make_campaign(session, u.director_b1, [u.b1], state="active", code="OTHER-J7")
    for _ in range(5):
        make_assignment(session, other, make_customer(session, u.b1, None), u.m1)
    session.commit()
    assignment.generate(session, camp)
    session.commit()
    ids = {"zhao": zhao.id, "m1": u.m1.id, "m2": u.m2.id, "dir": u.director_b1.id}
    theirs = list(
        session.scalars(select(Assignment).where(Assignment.campaign_id == camp.id).order_by(Assignment.id))
    )
    assert len(theirs) == 21 and {a.staff_id for a in theirs} == {ids["zhao"]}
    # 赵丽 had worked some of them: a follow-up on the first task of three customers
    worked = []
    for a in theirs[:3]:
        t = session.scalar(select(Task).where(Task.assignment_id == a.id))
        session.add(
            FollowUp(
                task_id=t.id,
                assignment_id=a.id,
                customer_id=a.customer_id,
                staff_id=ids["zhao"],
                channel="visit",
                content=f"赵丽上门：客户关心定期利率 ({a.customer_id})",
                reaction="interested",
                next_step="带利率表再访",
            )
        )
        worked.append((a.id, a.customer_id))
    session.commit()

    def sign_in(key: str) -> None:
        login(client, session.get(Staff, ids[key]))

    # the director hands her customers over on /staff/leaving
    sign_in("dir")
    page = client.get("/staff/leaving").get_data(as_text=True)
    assert "M0150" in page and "赵丽" in page
    r = client.post(
        "/staff/leaving", data={"leaver": ids["zhao"], "colleagues": [ids["m1"], ids["m2"]], "reason": ""}
    )
    assert r.status_code == 422
    session.rollback()
    assert (
        session.scalar(select(func.count()).select_from(Assignment).where(Assignment.staff_id == ids["zhao"]))
        == 21
    )
    r = client.post(
        "/staff/leaving",
        data={"leaver": ids["zhao"], "colleagues": [ids["m1"], ids["m2"]], "reason": REASON},
    )
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    result = html[html.index('data-testid="leaving-result"') :]
    got = dict(re.findall(r"<li>[^<]*?(M010\d)[^<]*: (\d+)</li>", result))
    # by load: 张国强 (0 open) gets 13, 李晓燕 (5 open) gets 8 → both end with 13
    assert got == {"M0101": "8", "M0102": "13"}, result[:600]
    session.rollback()
    moved = list(session.scalars(select(Assignment).where(Assignment.campaign_id == camp.id)))
    assert {a.staff_id for a in moved} == {ids["m1"], ids["m2"]}
    assert all(a.reason == f"handed over: {REASON}" for a in moved)
    # each move is in the history with who handed over, from whom to whom, and why
    h = session.scalars(
        select(TransitionRecord).where(
            TransitionRecord.entity == "assignment", TransitionRecord.trigger == "handover"
        )
    ).all()
    assert len(h) == 21 and all(r.actor_id == ids["dir"] and REASON in r.reason for r in h)
    assert all(r.payload["from_staff_id"] == ids["zhao"] for r in h)
    # the open tasks moved with them
    assert (
        session.scalar(
            select(func.count()).select_from(Task).where(Task.staff_id == ids["zhao"], Task.state == "open")
        )
        == 0
    )

    # each new owner sees the tasks, the whole trail, and why it went to them
    for aid, cid in worked:
        a = session.get(Assignment, aid)
        owner = "m1" if a.staff_id == ids["m1"] else "m2"
        sign_in(owner)
        task = session.scalar(select(Task).where(Task.assignment_id == aid, Task.state == "open"))
        assert task is not None and task.staff_id == ids[owner]
        assert f'data-testid="task-{task.id}"' in client.get("/queue/").get_data(as_text=True)
        detail = client.get(f"/queue/task/{task.id}").get_data(as_text=True)
        trail = detail[detail.index('data-testid="trail"') :]
        assert f"赵丽上门：客户关心定期利率 ({cid})" in trail and "赵丽" in trail
        assert "带利率表再访" in trail
        assert REASON in detail, "the task page should say why the assignment went to them"
        card = client.get(f"/customers/{cid}").get_data(as_text=True)
        assert f"赵丽上门：客户关心定期利率 ({cid})" in card

    # the relationship itself moved: 赵丽 manages none of them any more, the new owners do
    from customers.models import Customer

    session.rollback()
    owners = {
        c.customer_no: c.manager_id
        for c in session.scalars(select(Customer).where(Customer.customer_no.in_(nos)))
    }
    assert ids["zhao"] not in owners.values()
    assert set(owners.values()) == {ids["m1"], ids["m2"]}
