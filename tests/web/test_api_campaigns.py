"""The campaign endpoints of the JSON API: token auth, scope, transitions through the engine with
409/403/404/422 answers, and the OpenAPI document."""

from __future__ import annotations

from sqlalchemy import select

from campaigns import services
from campaigns.models import Campaign
from org.models import ApiToken
from tests.factories import bearer, make_campaign, make_customer
from workflow.models import JobProgress, TransitionRecord


def transition(client, campaign_id: int, headers: dict[str, str], **body):  # noqa: ANN001, ANN003, ANN201
    return client.post(f"/api/v1/campaigns/{campaign_id}/transitions", json=body, headers=headers)


def test_without_or_with_a_bad_token_is_401(client, session, union):
    make_campaign(session, union.director_b1, [union.b1])
    session.commit()
    for headers in ({}, {"Authorization": "Bearer cf_not-a-token"}, {"Authorization": "Basic abc"}):
        r = client.get("/api/v1/campaigns", headers=headers)
        assert r.status_code == 401
        assert r.get_json() == {"error": "Unauthorized", "message": "A valid bearer token is required"}
    r = client.post("/api/v1/campaigns/1/transitions", json={"action": "pause"})
    assert r.status_code == 401


def test_revoked_token_and_departed_staff_are_401(client, session, union):
    headers = bearer(session, union.director_b1)
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    for token in session.scalars(select(ApiToken)):
        token.revoked = True
    session.commit()
    assert client.get("/api/v1/me", headers=headers).status_code == 401

    headers = bearer(session, union.director_b2)
    union.director_b2.status = "departed"
    session.commit()
    assert client.get("/api/v1/me", headers=headers).status_code == 401


def test_me(client, session, union):
    r = client.get("/api/v1/me", headers=bearer(session, union.director_b1))
    assert r.status_code == 200
    assert r.get_json() == {"staff_no": "D0101", "name": "王主任", "roles": ["director"]}


def test_list_is_scoped(client, session, union):
    c1 = make_campaign(session, union.director_b1, [union.b1], state="active")
    c2 = make_campaign(session, union.director_b2, [union.b2])
    c_all = make_campaign(session, union.director, [union.b1, union.b2], all_branches=True, state="paused")
    session.commit()

    def ids(staff, **params):  # noqa: ANN001, ANN003, ANN202
        r = client.get("/api/v1/campaigns", headers=bearer(session, staff), query_string=params)
        assert r.status_code == 200
        return {item["id"] for item in r.get_json()["items"]}

    assert ids(union.director) == {c1.id, c2.id, c_all.id}
    assert ids(union.director_b1) == {c1.id, c_all.id}
    assert ids(union.director_b2) == {c2.id, c_all.id}
    assert ids(union.m1) == {c1.id, c_all.id}
    assert ids(union.m3) == {c2.id, c_all.id}
    assert ids(union.director, state="paused") == {c_all.id}

    r = client.get("/api/v1/campaigns", headers=bearer(session, union.director_b1))
    item = next(i for i in r.get_json()["items"] if i["id"] == c1.id)
    assert item["state"] == "active" and item["allowed_actions"] == ["pause", "close", "cancel"]
    assert item["code"] == c1.code and item["start_date"] == c1.start_date.isoformat()


def test_get_one_outside_scope_is_404(client, session, union):
    c2 = make_campaign(session, union.director_b2, [union.b2])
    session.commit()
    assert (
        client.get(f"/api/v1/campaigns/{c2.id}", headers=bearer(session, union.director_b2)).status_code
        == 200
    )
    for staff in (union.director_b1, union.m1):
        r = client.get(f"/api/v1/campaigns/{c2.id}", headers=bearer(session, staff))
        assert r.status_code == 404
    assert client.get("/api/v1/campaigns/999999", headers=bearer(session, union.director)).status_code == 404


def test_transition_200_goes_through_the_engine(client, session, union):
    c = make_campaign(session, union.director_b1, [union.b1], state="active")
    session.commit()
    r = transition(client, c.id, bearer(session, union.director_b1), action="pause", reason="春节")
    assert r.status_code == 200
    body = r.get_json()
    assert body["state"] == "paused" and body["allowed_actions"] == ["resume", "close", "cancel"]
    session.rollback()
    rec = session.scalars(select(TransitionRecord).where(TransitionRecord.entity_id == c.id)).one()
    assert (rec.trigger, rec.from_state, rec.to_state, rec.actor_id, rec.reason) == (
        "pause",
        "active",
        "paused",
        union.director_b1.id,
        "春节",
    )
    assert session.get(Campaign, c.id).version == 2


def test_impossible_transition_is_409_with_state_and_allowed_triggers(client, session, union):
    c = make_campaign(session, union.director_b1, [union.b1], state="paused")
    session.commit()
    r = transition(client, c.id, bearer(session, union.director_b1), action="launch")
    assert r.status_code == 409
    body = r.get_json()
    assert body["error"] == "InvalidTransition"
    assert body["state"] == "paused" and body["allowed"] == ["resume", "close", "cancel"]
    assert "it is paused" in body["message"] and "resume, close, cancel" in body["message"]
    session.rollback()
    assert session.get(Campaign, c.id).state == "paused"
    assert session.scalars(select(TransitionRecord)).all() == []


def test_guard_refusal_is_409_with_reasons(client, session, union):
    c = make_campaign(session, union.director_b1, [union.b1])  # no customer: empty population
    session.commit()
    r = transition(client, c.id, bearer(session, union.director_b1), action="launch")
    assert r.status_code == 409
    body = r.get_json()
    assert body["error"] == "GuardRefused"
    assert body["reasons"] == ["its population is empty: no customer matches"]
    session.rollback()
    assert session.get(Campaign, c.id).state == "draft"


def test_launch_through_the_api_runs_the_generation_job(client, session, union):
    make_customer(session, union.b1, union.m1)
    c = make_campaign(session, union.director_b1, [union.b1])
    session.commit()
    r = transition(client, c.id, bearer(session, union.director_b1), action="launch")
    assert r.status_code == 200 and r.get_json()["state"] == "active"
    session.rollback()
    progress = session.scalars(select(JobProgress).where(JobProgress.subject == f"campaign:{c.code}")).one()
    assert progress.state == "done"


def test_manager_gets_403(client, session, union):
    c = make_campaign(session, union.director_b1, [union.b1], state="active")
    session.commit()
    r = transition(client, c.id, bearer(session, union.m1), action="pause")
    assert r.status_code == 403
    assert r.get_json()["error"] == "Not allowed"
    session.rollback()
    assert session.get(Campaign, c.id).state == "active"


def test_branch_director_cannot_steer_a_union_wide_campaign(client, session, union):
    c = make_campaign(session, union.director, [union.b1, union.b2], state="active")
    session.commit()
    r = transition(client, c.id, bearer(session, union.director_b1), action="pause")
    assert r.status_code == 403
    assert transition(client, c.id, bearer(session, union.director), action="pause").status_code == 200


def test_outside_scope_is_404(client, session, union):
    c = make_campaign(session, union.director_b1, [union.b1], state="active")
    session.commit()
    r = transition(client, c.id, bearer(session, union.director_b2), action="pause")
    assert r.status_code == 404
    session.rollback()
    assert session.get(Campaign, c.id).state == "active"


def test_bad_action_or_body_is_422(client, session, union):
    c = make_campaign(session, union.director_b1, [union.b1], state="active")
    session.commit()
    headers = bearer(session, union.director_b1)
    r = transition(client, c.id, headers, action="explode")
    assert r.status_code == 422
    assert "action" in r.get_data(as_text=True)  # the answer names the field
    assert transition(client, c.id, headers).status_code == 422  # no action at all
    r = client.post(f"/api/v1/campaigns/{c.id}/transitions", data="not json", headers=headers)
    assert r.status_code == 422
    r = transition(client, c.id, headers, action="pause", reason="x" * 501)
    assert r.status_code == 422
    session.rollback()
    assert session.get(Campaign, c.id).state == "active"


def test_cancel_without_reason_is_422_and_with_reason_200(client, session, union):
    c = make_campaign(session, union.director_b1, [union.b1], state="active")
    session.commit()
    headers = bearer(session, union.director_b1)
    r = transition(client, c.id, headers, action="cancel", reason="  ")
    assert r.status_code == 422
    assert r.get_json() == {"error": "ReasonRequired", "message": "A reason is required to cancel a campaign"}
    r = transition(client, c.id, headers, action="cancel", reason="总行叫停")
    assert r.status_code == 200 and r.get_json()["state"] == "cancelled"


def test_openapi_document_lists_the_endpoints(client):
    r = client.get("/api/docs/openapi.json")
    assert r.status_code == 200
    doc = r.get_json()
    assert doc["openapi"].startswith("3.")
    paths = doc["paths"]
    for path, method in [
        ("/api/v1/me", "get"),
        ("/api/v1/campaigns", "get"),
        ("/api/v1/campaigns/{campaign_id}", "get"),
        ("/api/v1/campaigns/{campaign_id}/transitions", "post"),
    ]:
        assert method in paths[path], path
        assert paths[path][method]["security"] == [{"bearer": []}]
    op = paths["/api/v1/campaigns/{campaign_id}/transitions"]["post"]
    assert {"200", "403", "404", "409"} <= set(op["responses"])
    assert doc["components"]["securitySchemes"]["bearer"] == {"type": "http", "scheme": "bearer"}
    schemas = doc["components"]["schemas"]
    assert "TransitionIn" in schemas
    assert schemas["TransitionIn"]["properties"]["action"]["enum"] == [
        "launch",
        "pause",
        "resume",
        "close",
        "cancel",
    ]


def test_concurrent_change_is_409_and_nothing_is_lost(client, session, union, monkeypatch):
    """CONC-02 through the API: someone else changes the campaign between our load and our write."""
    from config.database import db
    from workflow.engine import fire

    c = make_campaign(session, union.director_b1, [union.b1], state="active")
    session.commit()
    headers = bearer(session, union.director_b1)
    real_get = services.get_campaign

    def get_then_someone_else_writes(s, scope, campaign_id):  # noqa: ANN001, ANN202
        mine = real_get(s, scope, campaign_id)  # loaded at version 1
        other = db.factory()
        try:
            theirs = other.get(Campaign, campaign_id)
            fire(other, theirs, "pause", actor_id=union.director.id, reason="theirs")
            other.commit()
        finally:
            other.close()
        return mine

    monkeypatch.setattr(services, "get_campaign", get_then_someone_else_writes)
    r = transition(client, c.id, headers, action="close", reason="mine")
    assert r.status_code == 409
    body = r.get_json()
    assert body["error"] == "ConflictError" and "reload and try again" in body["message"]
    session.rollback()
    session.expire_all()
    stored = session.get(Campaign, c.id)
    assert stored.state == "paused" and stored.version == 2 and stored.state_reason == "theirs"
    assert [r.reason for r in session.scalars(select(TransitionRecord))] == ["theirs"]
