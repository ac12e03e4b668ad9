"""The history of every transition: one row per change, in the same transaction as the change."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from config.database import Base, BigId, now_local


class TransitionRecord(Base):
    """Who moved which record from which state to which, when, by which trigger and why."""

    __tablename__ = "transition_record"
    __table_args__ = (Index("ix_transition_record_entity", "entity", "entity_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    entity: Mapped[str] = mapped_column(String(40), comment="machine name, e.g. campaign, task")
    entity_id: Mapped[int] = mapped_column(BigId, comment="primary key of the moved row")
    from_state: Mapped[str] = mapped_column(String(30))
    to_state: Mapped[str] = mapped_column(String(30))
    trigger: Mapped[str] = mapped_column(String(40))
    actor_id: Mapped[int | None] = mapped_column(
        ForeignKey("staff.id", ondelete="SET NULL"), comment="staff who fired it; NULL for the scheduler"
    )
    at: Mapped[dt.datetime] = mapped_column(default=now_local)
    reason: Mapped[str | None] = mapped_column(Text)
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class JobProgress(Base):
    """Business progress of a long job (launch, import, incentive run), read by pages and the CLI."""

    __tablename__ = "job_progress"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(40), comment="launch, import, incentive_run …")
    subject: Mapped[str] = mapped_column(String(120), comment="what it works on, e.g. campaign:DEP-2027-01")
    state: Mapped[str] = mapped_column(String(20), default="pending", comment="pending, running, done, failed")
    done: Mapped[int] = mapped_column(default=0)
    total: Mapped[int] = mapped_column(default=0)
    message: Mapped[str | None] = mapped_column(Text)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(default=now_local)
    updated_at: Mapped[dt.datetime] = mapped_column(default=now_local, onupdate=now_local)

    @property
    def percent(self) -> int:
        if self.state == "done":
            return 100
        return int(100 * self.done / self.total) if self.total else 0


class JobAttempt(Base):
    """Deliveries of one job message (its Celery task id) that did not finish: a worker killed or
    lost while running it. After the third, the message is parked, not run again (RELIABILITY
    JOB-04; ``workflow/poison.py``). A job that finishes — well or with an error — leaves no row."""

    __tablename__ = "job_attempt"

    task_id: Mapped[str] = mapped_column(String(64), primary_key=True, comment="Celery task id")
    name: Mapped[str] = mapped_column(String(120), comment="job name, e.g. appraisal.run")
    attempts: Mapped[int] = mapped_column(default=1)
    state: Mapped[str] = mapped_column(String(10), default="running", comment="running or parked")
    args: Mapped[dict[str, Any] | None] = mapped_column(JSON, comment="what it was called with (ids only)")
    first_at: Mapped[dt.datetime] = mapped_column(default=now_local)
    last_at: Mapped[dt.datetime] = mapped_column(default=now_local)


class OutboxMessage(Base):
    """A job to send, written in the same transaction as the change that asks for it (RELIABILITY
    JOB-05; ``workflow/outbox.py``): sent right after the commit, and again by the minute sweep if
    the process died in between."""

    __tablename__ = "outbox_message"
    __table_args__ = (Index("ix_outbox_message_unsent", "sent_at", "created_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    job: Mapped[str] = mapped_column(String(120), comment="Celery name of the job")
    args: Mapped[list[Any]] = mapped_column(JSON, default=list)
    created_at: Mapped[dt.datetime] = mapped_column(default=now_local)
    sent_at: Mapped[dt.datetime | None] = mapped_column()
