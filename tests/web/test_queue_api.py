"""The queue API: every bad-input case of issue 5, object-level checks, the OpenAPI document."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from sqlalchemy import func, select

from config import clock
from tasks.models import Claim, FollowUp, Task
from tests.factories import bearer, make_campaign, make_customer
from tests.integration.queue_helpers import make_assignment, make_task


def idem(headers: dict[str, str]) -> dict[str, str]:
    """Money requests carry a fresh Idempotency-Key (RELIABILITY CONC-06)."""
    return {**headers, "Idempotency-Key": uuid.uuid4().hex}


FU = {"channel": "phone", "content": "talked about time deposits", "reaction": "interested"}


@pytest.fixture
def task(session, union):
    camp = make_campaign(session, union.director_b1, [union.b1], state="active")
    c = make_customer(session, union.b1, union.m1, name="王大明", tier="vip")
    a = make_assignment(session, camp, c, union.m1)
    t = make_task(session, union.m1, c, campaign=camp, assignment=a)
    session.commit()
    return t


def test_list_start_complete(client, session, union, task):
    h = bearer(session, union.m1)
    r = client.get("/api/v1/queue", headers=h)
    assert r.status_code == 200
    body = r.get_json()
    assert body["counts"]["today"] == 1
    item = body["today"][0]
    assert item["id"] == task.id and item["customer"] == "王*明" and item["suggestion"]["reason"]
    assert client.post(f"/api/v1/queue/tasks/{task.id}/start", headers=h).get_json()["state"] == "in_progress"
    nxt = (clock.today() + dt.timedelta(days=3)).isoformat()
    r = client.post(
        f"/api/v1/queue/tasks/{task.id}/complete",
        headers=h,
        json={**FU, "next_step": "visit", "next_due": nxt},
    )
    assert r.status_code == 200 and r.get_json()["state"] == "done"
    assert session.scalar(select(func.count()).select_from(Task).where(Task.source == "follow_up")) == 1


def test_completing_another_managers_task_is_404_and_changes_nothing(client, session, union, task):
    h = bearer(session, union.m2)
    r = client.post(f"/api/v1/queue/tasks/{task.id}/complete", headers=h, json=FU)
    assert r.status_code == 404
    assert client.post(f"/api/v1/queue/tasks/{task.id}/start", headers=h).status_code == 404
    session.expire_all()
    assert session.get(Task, task.id).state == "open"
    assert session.scalar(select(func.count()).select_from(FollowUp)) == 0


def test_completing_twice_is_409(client, session, union, task):
    h = bearer(session, union.m1)
    assert client.post(f"/api/v1/queue/tasks/{task.id}/complete", headers=h, json=FU).status_code == 200
    r = client.post(f"/api/v1/queue/tasks/{task.id}/complete", headers=h, json=FU)
    assert r.status_code == 409 and "it is done" in r.get_json()["message"]
    assert session.scalar(select(func.count()).select_from(FollowUp)) == 1


@pytest.mark.parametrize("content", ["", "   "])
def test_follow_up_without_content_is_422(client, session, union, task, content):
    h = bearer(session, union.m1)
    r = client.post(f"/api/v1/queue/tasks/{task.id}/complete", headers=h, json={**FU, "content": content})
    assert r.status_code == 422 and r.get_json()["field"] == "content"
    session.expire_all()
    assert session.get(Task, task.id).state == "open"


@pytest.mark.parametrize(
    "amount,word", [("-1", "negative"), (-5, "negative"), ("abc", "not a number"), ("1e999999", "too large")]
)
def test_bad_claim_amounts_are_422(client, session, union, task, amount, word):
    h = bearer(session, union.m1)
    r = client.post(
        "/api/v1/claims",
        headers=idem(h),
        json={"measure": "accounts_opened", "amount": amount, "evidence_text": "r", "task_id": task.id},
    )
    assert r.status_code == 422 and r.get_json()["field"] == "amount" and word in r.get_json()["message"]
    assert session.scalar(select(func.count()).select_from(Claim)) == 0


def test_claim_then_own_verification_is_403_and_checker_verifies(client, session, union, task):
    from org.services import create_staff

    dual = create_staff(session, branch=union.b1, roles=("manager", "checker"), staff_no="MK02", name="双岗")
    session.commit()
    t2 = make_task(session, dual, None, kind="activation")
    session.commit()
    hd = bearer(session, dual)
    r = client.post(
        "/api/v1/claims",
        headers=idem(hd),
        json={"measure": "accounts_opened", "amount": "0", "evidence_text": "r", "task_id": t2.id},
    )
    assert r.status_code == 201
    cid = r.get_json()["id"]
    r = client.post(f"/api/v1/claims/{cid}/verify", headers=idem(hd), json={})
    assert r.status_code == 403 and "own claim" in r.get_json()["message"]
    assert session.get(Claim, cid).state == "submitted"
    hc = bearer(session, union.checker)
    r = client.post(f"/api/v1/claims/{cid}/reject", headers=idem(hc), json={"reason": ""})
    assert r.status_code == 422
    r = client.post(f"/api/v1/claims/{cid}/verify", headers=idem(hc), json={})
    assert r.status_code == 200 and r.get_json()["state"] == "verified" and r.get_json()["ledger_event_id"]
    mine = client.get("/api/v1/claims", headers=hd).get_json()["items"]
    assert [(c["id"], c["state"]) for c in mine] == [(cid, "verified")]
    # a manager is not a checker
    assert (
        client.post(f"/api/v1/claims/{cid}/verify", headers=idem(bearer(session, union.m1)), json={}).status_code
        == 403
    )


def test_snoozing_into_the_past_is_422_and_fail_needs_reason(client, session, union, task):
    h = bearer(session, union.m1)
    past = (clock.today() - dt.timedelta(days=1)).isoformat()
    r = client.post(f"/api/v1/queue/tasks/{task.id}/snooze", headers=h, json={"until": past})
    assert r.status_code == 422 and r.get_json()["field"] == "until"
    r = client.post(f"/api/v1/queue/tasks/{task.id}/fail", headers=h, json={"reason": " "})
    assert r.status_code == 422
    session.expire_all()
    assert session.get(Task, task.id).state == "open"
    future = (clock.today() + dt.timedelta(days=2)).isoformat()
    assert (
        client.post(f"/api/v1/queue/tasks/{task.id}/snooze", headers=h, json={"until": future}).get_json()[
            "state"
        ]
        == "snoozed"
    )


def test_queue_endpoints_are_in_the_openapi_document(client):
    paths = client.get("/api/docs/openapi.json").get_json()["paths"]
    for p in (
        "/api/v1/queue",
        "/api/v1/queue/tasks/{task_id}/complete",
        "/api/v1/claims",
        "/api/v1/queue/tasks/{task_id}/snooze",
    ):
        assert p in paths


def test_without_token_401_and_non_manager_403(client, session, union):
    assert client.get("/api/v1/queue").status_code == 401
    assert client.get("/api/v1/queue", headers=bearer(session, union.checker)).status_code == 403
