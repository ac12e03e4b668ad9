"""Customer endpoints of the JSON API: scoped, masked, filtered, paginated, 404 on guesses."""

from __future__ import annotations

import datetime as dt

from customers.identity import make_id_number
from customers.masking import UNMASKED_ID_RE, UNMASKED_PHONE_RE
from customers.models import Holding
from tests.factories import bearer, make_customer


def test_api_lists_masked_customers_in_scope(client, session, union):
    own = make_customer(
        session,
        union.b1,
        union.m1,
        name="张三明",
        phone="13812345678",
        id_number=make_id_number("510921", dt.date(1985, 3, 14), 123),
        tags=["farmer"],
    )
    other = make_customer(
        session, union.b1, union.m2, name="李四", phone="13998765432", tags=["civil_servant"]
    )
    far = make_customer(session, union.b2, union.m3, name="王五")
    session.add(Holding(customer_id=own.id, product="mobile_banking"))
    session.commit()

    h = bearer(session, union.m1)
    r = client.get("/api/v1/customers", headers=h)
    assert r.status_code == 200
    body = r.get_json()
    assert [c["customer_no"] for c in body["items"]] == [own.customer_no]
    assert body["items"][0]["name"] == "张三明" and body["items"][0]["phone"] == "138****5678"
    assert not UNMASKED_ID_RE.search(r.get_data(as_text=True))

    h = bearer(session, union.director_b1)
    body = client.get("/api/v1/customers?tag=civil_servant", headers=h).get_json()
    assert [c["name"] for c in body["items"]] == ["李*"]
    body = client.get("/api/v1/customers?lacks=mobile_banking", headers=h).get_json()
    assert {c["id"] for c in body["items"]} == {other.id}
    page1 = client.get("/api/v1/customers?size=1", headers=h).get_json()
    page2 = client.get(f"/api/v1/customers?size=1&before={page1['next_before']}", headers=h).get_json()
    assert page1["items"][0]["id"] != page2["items"][0]["id"] and page2["next_before"] is None

    detail = client.get(f"/api/v1/customers/{own.id}", headers=h)
    assert detail.status_code == 200 and detail.get_json()["holdings"] == ["mobile_banking"]
    text = detail.get_data(as_text=True)
    assert not UNMASKED_ID_RE.search(text) and not UNMASKED_PHONE_RE.search(text)
    assert client.get(f"/api/v1/customers/{far.id}", headers=h).status_code == 404
    assert client.get("/api/v1/customers").status_code == 401


def test_openapi_documents_the_customer_endpoints(client):
    doc = client.get("/api/docs/openapi.json").get_json()
    assert "/api/v1/customers" in doc["paths"] and "/api/v1/customers/{customer_id}" in doc["paths"]
