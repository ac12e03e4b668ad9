"""Tasks in a staff member's queue."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Date, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from config.database import Base, BigId, utcnow
from workflow.engine import Versioned


class TaskState(StrEnum):
    """States of a task (PRODUCT.md §5). Overdue is derived: due and not finished."""

    open = "open"  #: waiting in the queue
    in_progress = "in_progress"  #: started by its owner
    snoozed = "snoozed"  #: put aside until a date (woken by the scheduler)
    done = "done"  #: completed (a contact task needs a follow-up record)
    failed = "failed"  #: could not be done; reason required
    cancelled = "cancelled"  #: its campaign was cancelled, or withdrawn
    expired = "expired"  #: its campaign closed before it was finished


OPEN_STATES = {TaskState.open, TaskState.in_progress, TaskState.snoozed}
FINISHED = {TaskState.done, TaskState.failed, TaskState.cancelled, TaskState.expired}


class Task(Versioned, Base):
    """One unit of work in a staff member's queue."""

    __tablename__ = "task"
    __table_args__ = (
        Index("ix_task_queue", "staff_id", "state", "due_on"),
        Index("ix_task_campaign_state", "campaign_id", "state"),
        Index("ix_task_source_key", "source_key", unique=True),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(30), comment="contact, follow_up, visit, activation, retention …")
    title: Mapped[str] = mapped_column(String(200))
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaign.id", ondelete="CASCADE"))
    assignment_id: Mapped[int | None] = mapped_column(ForeignKey("assignment.id", ondelete="CASCADE"), index=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id"), index=True)
    branch_id: Mapped[int] = mapped_column(ForeignKey("branch.id"), index=True)
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"), comment="owner")
    delegate_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"), comment="substitute while owner away")
    due_on: Mapped[dt.date] = mapped_column(Date)
    snoozed_until: Mapped[dt.date | None] = mapped_column(Date)
    priority: Mapped[int] = mapped_column(default=0)
    state: Mapped[str] = mapped_column(String(12), default=TaskState.open)
    source: Mapped[str] = mapped_column(String(20), default="template", comment="template, alert, appointment, follow_up")
    source_key: Mapped[str | None] = mapped_column(String(120), comment="unique key: re-runs create nothing twice")
    failed_reason: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column()
