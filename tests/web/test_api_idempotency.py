"""Idempotency-Key on the API's money requests (RELIABILITY CONC-06): missing → 400, replay →
the identical answer and no second effect, another request under the same key → 422, a parallel
duplicate → 409 or the replay; exactly one claim and one ledger event whatever the client retries."""

from __future__ import annotations

import datetime as dt
import threading

from sqlalchemy import func, select

from appraisal.models import LedgerEvent
from config.database import now_local
from org.models import IdempotencyKey
from tasks.models import Claim
from tests.factories import bearer
from tests.web.test_queue_api import task  # noqa: F401 - fixture

CLAIM = {"measure": "accounts_opened", "quantity": "1", "evidence_text": "receipt 0042"}


def _claims(session) -> int:
    session.expire_all()
    return int(session.scalar(select(func.count()).select_from(Claim)) or 0)


def test_a_claim_without_a_key_is_400_and_changes_nothing(client, session, union, task):  # noqa: F811
    r = client.post("/api/v1/claims", headers=bearer(session, union.m1), json={**CLAIM, "task_id": task.id})
    assert r.status_code == 400 and "Idempotency-Key" in r.get_json()["message"]
    assert _claims(session) == 0


def test_a_retry_gets_the_same_answer_and_creates_nothing(client, session, union, task):  # noqa: F811
    h = {**bearer(session, union.m1), "Idempotency-Key": "claim-task-1-try"}
    body = {**CLAIM, "task_id": task.id}
    first = client.post("/api/v1/claims", headers=h, json=body)
    assert first.status_code == 201 and "Idempotent-Replayed" not in first.headers
    again = client.post("/api/v1/claims", headers=h, json=body)
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json() == first.get_json()
    assert _claims(session) == 1
    # the same key for another request is refused
    other = client.post("/api/v1/claims", headers=h, json={**body, "quantity": "2"})
    assert other.status_code == 422 and "different request" in other.get_json()["message"]
    assert _claims(session) == 1
    # keys are per person: a colleague's identical key is a different action
    h2 = {**bearer(session, union.m2), "Idempotency-Key": "claim-task-1-try"}
    assert client.post("/api/v1/claims", headers=h2, json=CLAIM).status_code == 201
    assert _claims(session) == 2


def test_a_verdict_is_carried_out_once(client, session, union, task):  # noqa: F811
    hm = {**bearer(session, union.m1), "Idempotency-Key": "c1"}
    cid = client.post("/api/v1/claims", headers=hm, json={**CLAIM, "task_id": task.id}).get_json()["id"]
    hc = {**bearer(session, union.checker), "Idempotency-Key": "verify-c1"}
    answers = [client.post(f"/api/v1/claims/{cid}/verify", headers=hc, json={}) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert answers[1].get_json() == answers[0].get_json() == answers[2].get_json()
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(LedgerEvent)) == 1


def test_a_key_is_kept_for_24_hours(client, session, union, task):  # noqa: F811
    h = {**bearer(session, union.m1), "Idempotency-Key": "old"}
    assert client.post("/api/v1/claims", headers=h, json=CLAIM).status_code == 201
    for row in session.scalars(select(IdempotencyKey)):
        row.created_at = now_local() - dt.timedelta(hours=25)
    session.commit()
    assert client.post("/api/v1/claims", headers=h, json=CLAIM).status_code == 201  # a new action
    assert _claims(session) == 2


def test_parallel_duplicates_make_one_claim(app, session, union, task):  # noqa: F811
    h = {**bearer(session, union.m1), "Idempotency-Key": "double-tap"}
    body = {**CLAIM, "task_id": task.id}
    answers: list[tuple[int, object]] = []
    lock = threading.Lock()
    go = threading.Barrier(8)

    def post() -> None:
        with app.test_client() as c:
            go.wait()
            r = c.post("/api/v1/claims", headers=h, json=body)
            with lock:
                answers.append((r.status_code, r.get_json()))

    threads = [threading.Thread(target=post) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(answers) == 8
    assert _claims(session) == 1
    created = [b for s, b in answers if s == 201]
    assert created and all(b == created[0] for b in created)  # the first answer or its replay
    assert all(s in (201, 409) for s, _ in answers), answers


def test_the_header_is_in_the_openapi_document(client):
    doc = client.get("/api/docs/openapi.json").get_json()
    params = doc["paths"]["/api/v1/claims"]["post"].get("parameters", [])
    assert any(p["name"] == "Idempotency-Key" and p["in"] == "header" for p in params), params
