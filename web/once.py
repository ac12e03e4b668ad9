"""One submission per rendered form (RELIABILITY CONC-08): a double tap makes one record.

A form that creates something carries a hidden ``once`` token, new at each rendering. The first
POST with a token records it (``org.models.IdempotencyKey``, key ``form:<action>:<token>``, the
same table as the API's Idempotency-Key) before doing the work and, once done, where it led; a
second POST with the same token does nothing and is sent where the first one went, with a note.
A submission refused for bad input releases the token, so the corrected form can be sent again.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from wtforms import HiddenField

from config.database import db, now_local
from org.models import IdempotencyKey
from tasks.retry import retry_busy


def new_token() -> str:
    return uuid.uuid4().hex


def once_field() -> HiddenField:
    """The hidden field to put on a form class: ``once = once_field()``."""
    return HiddenField(default=new_token)


def begin(staff_id: int, action: str, token: str | None) -> tuple[int | None, str | None]:
    """Record the first submission of ``token``: ``(row id, None)`` — go on and do the work; or
    ``(None, where the first one went)`` for a repeat (``""`` while the first is still running).
    Without a token (an old page), ``(None, None)``: go on, unprotected."""
    token = (token or "").strip()[:60]
    if not token:
        return None, None
    key = f"form:{action}:{token}"
    session = db.session

    def record() -> int:
        row = IdempotencyKey(
            staff_id=staff_id, key=key, fingerprint=action, state="pending", created_at=now_local()
        )
        session.add(row)
        session.commit()
        return row.id

    try:
        return retry_busy(session, record), None
    except IntegrityError:
        session.rollback()
        first = session.scalars(
            select(IdempotencyKey).where(IdempotencyKey.staff_id == staff_id, IdempotencyKey.key == key)
        ).first()
        return None, (first.body or "") if first is not None else ""


def done(row_id: int | None, location: str) -> None:
    """The work is committed: remember where it led."""
    if row_id is None:
        return
    row = db.session.get(IdempotencyKey, row_id)
    if row is not None:
        row.state, row.status, row.body = "done", 303, location
        db.session.commit()


def release(row_id: int | None) -> None:
    """The submission was refused (bad input): the token may be sent again."""
    if row_id is None:
        return
    db.session.rollback()
    row = db.session.get(IdempotencyKey, row_id)
    if row is not None:
        db.session.delete(row)
        db.session.commit()
