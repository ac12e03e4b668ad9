"""JSON API of the pool and the bounty board (registered when web.api.campaign_staff is loaded)."""

from __future__ import annotations

import datetime as dt

import web.api.campaign_staff  # noqa: F401 - adds the endpoints (until register_api loads it)
from campaigns import bounties
from campaigns.models import Assignment
from config import clock
from org.scope import Scope
from tests.factories import bearer, make_campaign, make_customer


def test_pool_claim_over_the_api(client, session, union):
    c = make_customer(session, union.b1)
    campaign = make_campaign(session, union.director_b1, [union.b1], state="active")
    a = Assignment(campaign_id=campaign.id, customer_id=c.id, branch_id=union.b1.id, state="pool")
    session.add(a)
    session.commit()
    h1, h2, h3 = bearer(session, union.m1), bearer(session, union.m2), bearer(session, union.m3)
    listed = client.get("/api/v1/pool", headers=h1).get_json()["items"]
    assert [x["id"] for x in listed] == [a.id]
    assert client.get("/api/v1/pool", headers=h3).get_json()["items"] == []
    r = client.post(f"/api/v1/pool/{a.id}/claim", headers=h1)
    assert (
        r.status_code == 200
        and r.get_json()["staff_id"] == union.m1.id
        and r.get_json()["reason"] == "claimed from pool"
    )
    r = client.post(f"/api/v1/pool/{a.id}/claim", headers=h2)
    assert r.status_code == 409 and "already claimed by someone else" in r.get_json()["message"]
    assert client.post(f"/api/v1/pool/{a.id}/claim", headers=h3).status_code == 404
    assert client.post(f"/api/v1/pool/{a.id}/claim").status_code == 401
    assert client.get("/api/v1/pool", headers=bearer(session, union.director_b1)).status_code == 403


def test_bounty_take_over_the_api(client, session, union):
    c = make_customer(session, union.b1)
    b = bounties.post(
        session,
        Scope.of(session, union.director_b1),
        customer_id=c.id,
        title="大额存款户",
        amount="500.50",
        deadline=clock.today() + dt.timedelta(days=10),
        exclusive_days=5,
    )
    session.commit()
    h1, h2 = bearer(session, union.m1), bearer(session, union.m2)
    items = client.get("/api/v1/bounties?state=open", headers=h1).get_json()["items"]
    assert [(x["id"], x["amount"]) for x in items] == [(b.id, "500.50")]
    r = client.post(f"/api/v1/bounties/{b.id}/take", headers=h1)
    assert r.status_code == 200 and r.get_json()["taken_by"] == union.m1.id
    r = client.post(f"/api/v1/bounties/{b.id}/take", headers=h2)
    assert r.status_code == 409 and "already taken by someone else" in r.get_json()["message"]
