"""Bounty board pages: a director posts, a manager takes, another gets a clear conflict."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from campaigns.bounty_models import Bounty
from config import clock
from tests.factories import login, make_customer


def _form(customer_no, **kw):
    data = {
        "title": "县人民医院代发工资",
        "customer_no": customer_no,
        "amount": "3000",
        "deadline": (clock.today() + dt.timedelta(days=30)).isoformat(),
        "exclusive_days": "14",
    }
    data.update(kw)
    return data


def test_director_posts_manager_takes_other_gets_409(client, session, union):
    hospital = make_customer(session, union.b1, type="institution", name="县人民医院")
    session.commit()
    login(client, union.director_b1)
    page = client.get("/bounties/")
    assert page.status_code == 200 and b"Post a bounty" in page.data
    r = client.post("/bounties/", data=_form(hospital.customer_no))
    assert r.status_code == 303
    b = session.scalars(select(Bounty)).one()
    assert str(b.amount) == "3000.00"

    login(client, union.m1)
    page = client.get("/bounties/")
    assert "县人民医院代发工资" in page.get_data(as_text=True)
    assert b"Post a bounty" not in page.data
    assert client.post(f"/bounties/{b.id}/take").status_code == 303
    session.expire_all()
    assert session.get(Bounty, b.id).taken_by == union.m1.id
    page = client.get("/bounties/").get_data(as_text=True)
    assert "taken by" in page

    login(client, union.m2)
    r = client.post(f"/bounties/{b.id}/take", headers={"Accept": "application/json"})
    assert r.status_code == 409
    assert "already taken by someone else" in r.get_json()["message"]

    login(client, union.m3)  # another branch: not even visible
    assert client.post(f"/bounties/{b.id}/take").status_code == 404
    assert "县人民医院代发工资" not in client.get("/bounties/").get_data(as_text=True)


def test_bad_post_shows_message_beside_field_and_changes_nothing(client, session, union):
    other = make_customer(session, union.b2)
    mine = make_customer(session, union.b1)
    session.commit()
    login(client, union.director_b1)
    r = client.post("/bounties/", data=_form(other.customer_no))
    assert r.status_code == 422 and b'data-testid="error-customer_no"' in r.data
    r = client.post(
        "/bounties/",
        data=_form(mine.customer_no, deadline=(clock.today() - dt.timedelta(days=1)).isoformat()),
    )
    assert r.status_code == 422 and b'data-testid="error-deadline"' in r.data
    r = client.post("/bounties/", data=_form(mine.customer_no, amount="-3"))
    assert r.status_code == 422 and b'data-testid="error-amount"' in r.data
    assert session.scalars(select(Bounty)).all() == []


def test_manager_cannot_post(client, session, union):
    c = make_customer(session, union.b1)
    session.commit()
    login(client, union.m1)
    assert client.post("/bounties/", data=_form(c.customer_no)).status_code == 403
    assert session.scalars(select(Bounty)).all() == []


def test_director_withdraws_with_reason(client, session, union):
    c = make_customer(session, union.b1)
    session.commit()
    login(client, union.director_b1)
    client.post("/bounties/", data=_form(c.customer_no))
    b = session.scalars(select(Bounty)).one()
    assert client.post(f"/bounties/{b.id}/withdraw", data={"reason": "target changed"}).status_code == 303
    session.expire_all()
    assert session.get(Bounty, b.id).state == "withdrawn"
