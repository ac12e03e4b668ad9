"""Progress of long jobs, kept in :class:`~workflow.models.JobProgress` rows.

Progress is written in its own short transactions, so a page (or the CLI) polling the row sees
it move while the job's main transaction is still open.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import update

from config.database import db
from workflow.models import JobProgress


class Reporter:
    """Callable ``report(done, total, message)`` bound to one progress row."""

    def __init__(self, progress_id: int | None) -> None:
        self.progress_id = progress_id
        self.result: dict[str, Any] | None = None

    def __call__(self, done: int, total: int, message: str = "") -> None:
        self._write(state="running", done=done, total=total, message=message)

    def _write(self, **values: Any) -> None:
        if self.progress_id is None:
            return
        session = db.factory()
        try:
            session.execute(update(JobProgress).where(JobProgress.id == self.progress_id).values(**values))
            session.commit()
        finally:
            session.close()


@contextmanager
def track(progress_id: int | None) -> Iterator[Reporter]:
    """Mark the progress row running, then done (with ``reporter.result``) or failed."""
    reporter = Reporter(progress_id)
    reporter._write(state="running")
    try:
        yield reporter
    except Exception as exc:
        reporter._write(state="failed", message=str(exc)[:500])
        raise
    reporter._write(state="done", message="", result=reporter.result)
