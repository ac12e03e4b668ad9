"""Retrying a unit of work when SQLite refused it only because another request wrote first.

SQLite has one writer at a time; a transaction that read before another one committed cannot
write any more (SQLITE_BUSY_SNAPSHOT, "database is locked"), even when the two touched different
rows. That is not a real conflict: the whole unit of work (load, change, commit) is run again.
PostgreSQL's deadlock (40P01) and serialization failure (40001) are the same kind of refusal and
are retried the same way, a few times with a growing pause (RELIABILITY CONC-05). A real
conflict — a stale version of the same row — is never retried: it stays a 409.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from workflow.errors import ConflictError

T = TypeVar("T")


#: PostgreSQL's "try again" errors: serialization failure and deadlock (RELIABILITY CONC-05)
RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})


def is_busy(exc: BaseException) -> bool:
    """Whether ``exc`` only says "try again": SQLite's busy/locked refusal, or PostgreSQL's
    serialization failure or deadlock (directly or as a ConflictError's cause)."""
    if isinstance(exc, ConflictError):
        exc = exc.__cause__ or exc
    if not isinstance(exc, OperationalError):
        return False
    orig = exc.orig
    if getattr(orig, "pgcode", None) in RETRYABLE_SQLSTATES:
        return True
    return str(getattr(orig, "sqlite_errorname", "")).startswith(
        "SQLITE_BUSY"
    ) or "database is locked" in str(orig)


def retry_busy(session: Session, work: Callable[[], T], attempts: int = 5) -> T:
    """Run ``work`` (which loads, changes and commits); on SQLite's busy refusal roll back and
    run it again, up to ``attempts`` times."""
    for attempt in range(attempts):
        try:
            return work()
        except (ConflictError, OperationalError) as exc:
            if attempt == attempts - 1 or not is_busy(exc):
                raise
            session.rollback()
            time.sleep(0.01 * (attempt + 1))
    raise AssertionError("unreachable")  # pragma: no cover
