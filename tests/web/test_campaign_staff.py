"""Pool, handover and staff-leaving pages (抢单, 移交)."""

from __future__ import annotations

from sqlalchemy import select

from campaigns import assignment
from campaigns.models import Assignment
from tasks.models import Task
from tests.factories import login, make_campaign, make_customer, make_staff


def test_manager_claims_from_pool_page_second_gets_409(client, session, union):
    c = make_customer(session, union.b1)
    campaign = make_campaign(session, union.director_b1, [union.b1], state="active")
    a = Assignment(campaign_id=campaign.id, customer_id=c.id, branch_id=union.b1.id, state="pool")
    session.add(a)
    session.commit()
    login(client, union.m1)
    page = client.get("/pool")
    assert page.status_code == 200 and f'data-testid="pool-{a.id}"'.encode() in page.data
    assert client.post(f"/pool/{a.id}/claim").status_code == 303
    session.expire_all()
    assert session.get(Assignment, a.id).staff_id == union.m1.id
    assert session.scalars(select(Task.staff_id).where(Task.assignment_id == a.id)).all() == [union.m1.id]
    login(client, union.m2)
    r = client.post(f"/pool/{a.id}/claim")
    assert r.status_code == 409 and b"already claimed by someone else" in r.data
    login(client, union.m3)
    assert client.post(f"/pool/{a.id}/claim").status_code == 404


def test_director_hands_over_on_a_campaign(client, session, union):
    customers = [make_customer(session, union.b1, union.m1) for _ in range(3)]
    campaign = make_campaign(session, union.director_b1, [union.b1])
    session.commit()
    assignment.generate(session, campaign)
    session.commit()
    login(client, union.director_b1)
    assert client.get(f"/campaigns/{campaign.id}/handover").status_code == 200
    # a reason is required; nothing changes without one
    r = client.post(
        f"/campaigns/{campaign.id}/handover",
        data={"from_staff": union.m1.id, "to_staff": union.m2.id, "reason": ""},
    )
    assert r.status_code == 422 and b'data-testid="error-reason"' in r.data
    r = client.post(
        f"/campaigns/{campaign.id}/handover",
        data={
            "from_staff": union.m1.id,
            "to_staff": union.m2.id,
            "customer_nos": customers[0].customer_no,
            "reason": "调岗",
        },
    )
    assert r.status_code == 303
    session.expire_all()
    owners = {a.customer_id: (a.staff_id, a.reason) for a in session.scalars(select(Assignment))}
    assert owners[customers[0].id] == (union.m2.id, "handed over: 调岗")
    assert owners[customers[1].id][0] == union.m1.id
    login(client, union.m1)
    assert client.get(f"/campaigns/{campaign.id}/handover").status_code == 403
    login(client, union.director_b2)
    assert client.get(f"/campaigns/{campaign.id}/handover").status_code == 404


def test_staff_leaving_page_spreads_by_load(client, session, union):
    leaver = make_staff(session, union.b1, staff_no="M0150", name="赵丽")
    for _ in range(4):
        make_customer(session, union.b1, leaver)
    campaign = make_campaign(session, union.director_b1, [union.b1])
    session.commit()
    assignment.generate(session, campaign)
    session.commit()
    login(client, union.director_b1)
    page = client.get("/staff/leaving")
    assert page.status_code == 200 and "M0150" in page.get_data(as_text=True)
    r = client.post(
        "/staff/leaving",
        data={"leaver": leaver.id, "colleagues": [union.m1.id, union.m2.id], "reason": "调往其他网点"},
    )
    assert r.status_code == 200 and b'data-testid="leaving-result"' in r.data
    session.expire_all()
    owners = sorted(a.staff_id for a in session.scalars(select(Assignment)))
    assert owners == sorted([union.m1.id] * 2 + [union.m2.id] * 2)
    # a colleague from another branch is not offered
    r = client.post("/staff/leaving", data={"leaver": leaver.id, "colleagues": [union.m3.id], "reason": "x"})
    assert r.status_code == 422


def test_director_distributes_pool_from_the_handover_page(client, session, union):
    union.m1.capacity = 1
    union.m2.capacity = 1
    for _ in range(3):
        make_customer(session, union.b1)
    campaign = make_campaign(session, union.director_b1, [union.b1], state="active")
    session.commit()
    assignment.generate(session, campaign)
    union.m2.capacity = 5
    session.commit()
    login(client, union.director_b1)
    page = client.get(f"/campaigns/{campaign.id}/handover").get_data(as_text=True)
    assert "1 customers of your branches wait in the pool" in page
    assert client.post(f"/campaigns/{campaign.id}/pool/distribute").status_code == 303
    session.expire_all()
    assert session.scalars(select(Assignment).where(Assignment.state == "pool")).all() == []
    login(client, union.director_b2)
    assert client.post(f"/campaigns/{campaign.id}/pool/distribute").status_code == 404
