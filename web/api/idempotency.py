"""``Idempotency-Key`` for the API's money requests (RELIABILITY CONC-06).

A client sends a fresh random key with each intended action and the same key on every retry of
it. The first request with a key is carried out and its answer stored (per staff member and key,
24 hours); a retry with the same key and the same request gets that stored answer again (header
``Idempotent-Replayed: true``) and changes nothing; the same key with a different request is
refused (422); while the first is still being processed, a parallel one gets 409.

Required (missing → 400) on the requests that create money: claiming a result and the checker's
verdicts (:data:`REQUIRED`); honoured on every other POST of the API when sent. Answers that can
succeed on a retry (409 conflicts, 5xx) are not stored: the key is released.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

from flask import Response, g, request
from pydantic import BaseModel, Field
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError, OperationalError

from config.database import db, now_local
from org.models import IdempotencyKey
from tasks.retry import is_busy, retry_busy

HEADER = "Idempotency-Key"
KEEP = dt.timedelta(hours=24)
MAX_LENGTH = 100

#: URL rules (POST) that must carry a key.
REQUIRED = frozenset(
    {
        "/api/v1/claims",
        "/api/v1/claims/<int:claim_id>/verify",
        "/api/v1/claims/<int:claim_id>/reject",
    }
)


class IdempotencyHeader(BaseModel):
    """Documents the header in the OpenAPI document (the check itself runs before the view)."""

    idempotency_key: str = Field(
        alias=HEADER,
        max_length=MAX_LENGTH,
        description="A fresh random value per intended action (e.g. a UUID), the same on every retry "
        "of it. A retry gets the first answer again; the same key with another request: 422.",
    )


def _answer(status: int, error: str, message: str) -> Response:
    return Response(
        json.dumps({"error": error, "message": message}), status=status, mimetype="application/json"
    )


def _fingerprint() -> str:
    h = hashlib.sha256()
    h.update(request.method.encode())
    h.update(b"\0" + request.path.encode() + b"\0")
    h.update(request.get_data(cache=True))
    return h.hexdigest()


def before_request() -> Response | None:
    if request.method != "POST":
        return None
    key = request.headers.get(HEADER, "").strip()
    rule = request.url_rule.rule if request.url_rule is not None else ""
    if not key:
        if rule in REQUIRED:
            return _answer(
                400,
                "Idempotency-Key required",
                f"This request creates money: send an {HEADER} header (a fresh random value per "
                "intended action, the same on retries)",
            )
        return None
    if len(key) > MAX_LENGTH:
        return _answer(400, "Bad Idempotency-Key", f"{HEADER} is longer than {MAX_LENGTH} characters")
    from web.api import api_staff

    staff_id = api_staff().id
    fingerprint = _fingerprint()
    try:
        return retry_busy(db.session, lambda: _look_up(staff_id, key, fingerprint))
    except OperationalError as exc:
        if not is_busy(exc):
            raise
        db.session.rollback()
        return _answer(409, "Busy", "The database is busy with another request; try again")


def _look_up(staff_id: int, key: str, fingerprint: str) -> Response | None:
    """Record the key (first request: None, go on) or answer from what it recorded."""
    session = db.session
    now = now_local()
    row = session.scalars(
        select(IdempotencyKey).where(IdempotencyKey.staff_id == staff_id, IdempotencyKey.key == key)
    ).first()
    if row is None or row.created_at < now - KEEP:
        # a new action: forget this person's expired keys (this one too), then record it
        session.execute(
            delete(IdempotencyKey).where(
                IdempotencyKey.staff_id == staff_id, IdempotencyKey.created_at < now - KEEP
            )
        )
        row = IdempotencyKey(
            staff_id=staff_id, key=key, fingerprint=fingerprint, state="pending", created_at=now
        )
        session.add(row)
        try:
            session.commit()
        except IntegrityError:  # a parallel request with this key got there first
            session.rollback()
            return _answer(409, "In progress", f"A request with this {HEADER} is still being processed")
        g.idempotency_id = row.id
        return None
    session.rollback()
    if row.fingerprint != fingerprint:
        return _answer(
            422,
            "Idempotency-Key reused",
            f"This {HEADER} was used for a different request; use a new key for a new action",
        )
    if row.state != "done":
        return _answer(409, "In progress", f"A request with this {HEADER} is still being processed")
    replay = Response(row.body or "", status=row.status or 200, mimetype="application/json")
    replay.headers["Idempotent-Replayed"] = "true"
    return replay


def after_request(response: Response) -> Response:
    row_id: Any = g.pop("idempotency_id", None)
    if row_id is None:
        return response
    session = db.session
    session.rollback()  # whatever the view left uncommitted is not part of its answer
    status, body = response.status_code, response.get_data(as_text=True)

    def record() -> None:
        row = session.get(IdempotencyKey, row_id)
        if row is not None:
            if status == 409 or status >= 500:
                session.delete(row)  # may succeed on a retry: release the key
            else:
                row.state, row.status, row.body = "done", status, body
            session.commit()

    retry_busy(session, record)
    return response


def init_api(api: Any) -> None:
    api.before_request(before_request)
    api.after_request(after_request)
