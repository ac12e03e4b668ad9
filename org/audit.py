"""The audit log's hash chain (RELIABILITY AUD-02): every row seals the one before it.

Each ``audit_log`` row stores ``hash = SHA-256(prev_hash + "\\n" + canonical JSON of the row)``
and the ``prev_hash`` it was chained to (the first row chains to 64 zeros). The database refuses
UPDATE and DELETE on the table (migration 0003), so a row can only be changed by someone who
bypasses the application's grants — and then :func:`verify` names the first row that no longer
matches. Writers take the chain's lock first (PostgreSQL: a transaction-scoped advisory lock;
SQLite: its single write lock), read the last hash and append, so concurrent writers never fork
the chain. ``campaignflow audit verify`` and the nightly ``org.audit_verify`` job run the check.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import false, select, text, update
from sqlalchemy.orm import Session

from org.models import AuditLog

GENESIS = "0" * 64
#: key of the PostgreSQL advisory lock that serialises appends to the chain
LOCK_KEY = 0x417564_6974  # "Audit"


def plain(value: Any) -> Any:
    """``value`` as JSON gives it back (what the row will hold after a round trip)."""
    if value is None:
        return None
    return json.loads(json.dumps(value, default=str, ensure_ascii=False))


def canonical(row: AuditLog) -> bytes:
    """The row's content in one fixed spelling (keys sorted, times to the microsecond)."""
    body = {
        "at": row.at.isoformat(timespec="microseconds") if row.at else None,
        "actor_id": row.actor_id,
        "action": row.action,
        "object_type": row.object_type,
        "object_id": row.object_id,
        "fields": plain(row.fields),
        "reason": row.reason,
        "detail": plain(row.detail),
    }
    return json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def seal(prev_hash: str, row: AuditLog) -> str:
    return hashlib.sha256(prev_hash.encode() + b"\n" + canonical(row)).hexdigest()


def lock_chain(session: Session) -> None:
    """Hold the chain until this transaction ends, so the last hash read stays the last."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
    else:  # SQLite: any write statement takes the database's single write lock
        session.execute(update(AuditLog).where(false()).values(id=AuditLog.id))


def append(session: Session, row: AuditLog) -> AuditLog:
    """Chain ``row`` after the last row and write it (flushed, in the caller's transaction)."""
    lock_chain(session)
    prev = session.scalar(select(AuditLog.hash).order_by(AuditLog.id.desc()).limit(1)) or GENESIS
    row.fields, row.detail = plain(row.fields), plain(row.detail)
    row.prev_hash = prev
    row.hash = seal(prev, row)
    session.add(row)
    session.flush()
    return row


@dataclass
class ChainReport:
    checked: int
    broken_at: int | None = None
    problem: str | None = None

    @property
    def intact(self) -> bool:
        return self.broken_at is None


def verify(session: Session, batch: int = 5000) -> ChainReport:
    """Walk the chain in id order (streamed) and report the first row that does not match."""
    prev = GENESIS
    checked = 0
    stmt = select(AuditLog).order_by(AuditLog.id).execution_options(yield_per=batch)
    for row in session.scalars(stmt):
        if row.prev_hash != prev:
            return ChainReport(
                checked, row.id, f"audit row #{row.id} does not follow the row before it: a row was removed or changed"
            )
        if row.hash != seal(prev, row):
            return ChainReport(checked, row.id, f"audit row #{row.id} was changed after it was written")
        prev = row.hash
        checked += 1
        session.expunge(row)
    return ChainReport(checked)
