"""Tasks in a staff member's queue."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Date, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from config.database import Base, BigId, Money, now_local
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
        # the queue's index; on PostgreSQL it covers every column the queue filters, sorts and
        # counts on, so those reads are index-only (tasks/queue.py)
        Index(
            "ix_task_queue",
            "staff_id",
            "state",
            "due_on",
            postgresql_include=["campaign_id", "customer_id", "priority", "id"],
        ),
        Index("ix_task_campaign_state", "campaign_id", "state"),
        Index("ix_task_source_key", "source_key", unique=True),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(
        String(30), comment="contact, follow_up, visit, activation, retention …"
    )
    title: Mapped[str] = mapped_column(String(200))
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaign.id", ondelete="CASCADE"))
    assignment_id: Mapped[int | None] = mapped_column(
        ForeignKey("assignment.id", ondelete="CASCADE"), index=True
    )
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id"), index=True)
    branch_id: Mapped[int] = mapped_column(ForeignKey("branch.id"), index=True)
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"), comment="owner")
    delegate_id: Mapped[int | None] = mapped_column(
        ForeignKey("staff.id"), comment="substitute while owner away"
    )
    due_on: Mapped[dt.date] = mapped_column(Date)
    snoozed_until: Mapped[dt.date | None] = mapped_column(Date)
    priority: Mapped[int] = mapped_column(default=0)
    state: Mapped[str] = mapped_column(String(12), default=TaskState.open)
    source: Mapped[str] = mapped_column(
        String(20), default="template", comment="template, alert, appointment, follow_up"
    )
    source_key: Mapped[str | None] = mapped_column(
        String(120), comment="unique key: re-runs create nothing twice"
    )
    failed_reason: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(default=now_local)
    finished_at: Mapped[dt.datetime | None] = mapped_column()


class Reaction(StrEnum):
    """A customer's reaction recorded in a follow-up; each moves the assignment (PRODUCT.md §5)."""

    interested = "interested"  #: assignment → interested
    neutral = "neutral"  #: assignment → contacted
    declined = "declined"  #: assignment → declined
    unreachable = "unreachable"  #: assignment → unreachable
    converted = "converted"  #: the result is claimed separately; the assignment counts as contacted


#: Assignment trigger for each reaction (the first one the assignment's state allows is fired).
REACTION_TRIGGERS: dict[str, tuple[str, ...]] = {
    Reaction.interested: ("interest",),
    Reaction.neutral: ("contact",),
    Reaction.declined: ("decline",),
    Reaction.unreachable: ("unreachable",),
    Reaction.converted: ("interest", "contact"),
}

#: Seed of every follow-up plan (跟进计划).
PLAN_SEED = "对客户可能做出的反应进行初步评估并且制定应对方案"


class FollowUp(Base):
    """The record of one contact (跟进记录): when, channel, content, reaction, next step."""

    __tablename__ = "follow_up"
    __table_args__ = (
        Index("ix_follow_up_customer_at", "customer_id", "at"),
        CheckConstraint("length(trim(content)) > 0", name="content_not_empty"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    task_id: Mapped[int | None] = mapped_column(ForeignKey("task.id", ondelete="SET NULL"), index=True)
    assignment_id: Mapped[int | None] = mapped_column(
        ForeignKey("assignment.id", ondelete="SET NULL"), index=True
    )
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"))
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"), comment="who made the contact")
    at: Mapped[dt.datetime] = mapped_column(default=now_local, comment="when the contact happened (local time)")
    channel: Mapped[str] = mapped_column(String(12), comment="phone, visit, branch, wechat, sms")
    content: Mapped[str] = mapped_column(Text, comment="what was said; required")
    reaction: Mapped[str] = mapped_column(
        String(12), comment="interested, neutral, declined, unreachable, converted"
    )
    next_step: Mapped[str | None] = mapped_column(String(200))
    next_due: Mapped[dt.date | None] = mapped_column(Date)
    failure_reason: Mapped[str | None] = mapped_column(
        Text, comment="why it did not work, for the next manager"
    )
    created_at: Mapped[dt.datetime] = mapped_column(default=now_local)


class AppointmentState(StrEnum):
    booked = "booked"
    done = "done"
    cancelled = "cancelled"
    no_show = "no_show"


class Appointment(Versioned, Base):
    """A booked branch visit (预约); key customers are accompanied by the branch director.

    Its states move through ``tasks.machine.appointment_workflow``: attended (its task completed),
    cancelled with a reason, or missed (no-show) once its time has passed."""

    __tablename__ = "appointment"
    __table_args__ = (Index("ix_appointment_at", "at", "state"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"), index=True)
    staff_id: Mapped[int] = mapped_column(
        ForeignKey("staff.id"), index=True, comment="the manager who booked it"
    )
    branch_id: Mapped[int] = mapped_column(ForeignKey("branch.id"))
    at: Mapped[dt.datetime] = mapped_column(comment="local time of the visit")
    purpose: Mapped[str] = mapped_column(String(200))
    accompanied_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("staff.id"), comment="branch director for key customers (主任陪同)"
    )
    state: Mapped[str] = mapped_column(String(10), default=AppointmentState.booked)
    follow_up_id: Mapped[int | None] = mapped_column(ForeignKey("follow_up.id", ondelete="SET NULL"))
    reminded_at: Mapped[dt.datetime | None] = mapped_column()
    created_at: Mapped[dt.datetime] = mapped_column(default=now_local)


class Notification(Base):
    """An in-app notification (the bell); ``key`` makes a job's notification idempotent."""

    __tablename__ = "notification"
    __table_args__ = (
        Index("ix_notification_staff_unread", "staff_id", "read_at"),
        UniqueConstraint("staff_id", "key", name="uq_notification_staff_key"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(20), comment="due_soon, overdue, appointment, claim …")
    text: Mapped[str] = mapped_column(Text)
    link: Mapped[str | None] = mapped_column(String(200))
    key: Mapped[str | None] = mapped_column(String(120), comment="dedupe key of scheduled notifications")
    created_at: Mapped[dt.datetime] = mapped_column(default=now_local)
    read_at: Mapped[dt.datetime | None] = mapped_column()


class ClaimState(StrEnum):
    """States of a claim (PRODUCT.md §5)."""

    submitted = "submitted"  #: waiting for a checker (or the automatic match)
    verified = "verified"  #: confirmed; a ledger event exists
    rejected = "rejected"  #: refused with a reason
    reversed = "reversed"  #: clawed back after verification (e.g. the deposit left)


#: Measures a claim may name (the campaign's target measures are preferred when it has some).
CLAIM_MEASURES = (
    "accounts_opened",
    "new_deposits",
    "time_deposits_opened",
    "digital_activations",
    "payroll_accounts",
    "agreements_signed",
    "referrals",
)


class Claim(Versioned, Base):
    """A staff member's claim of a result (业绩申报), verified by a checker (业绩认定)."""

    __tablename__ = "claim"
    __table_args__ = (
        Index("ix_claim_state_branch", "state", "branch_id"),
        Index("ix_claim_staff", "staff_id", "state"),
        CheckConstraint("verifier_id IS NULL OR verifier_id <> staff_id", name="verifier_not_claimant"),
        CheckConstraint("amount >= 0", name="amount_not_negative"),
        CheckConstraint("quantity >= 0", name="quantity_not_negative"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"), comment="the claimant")
    branch_id: Mapped[int] = mapped_column(
        ForeignKey("branch.id"), comment="the claimant's branch (checker scope)"
    )
    campaign_id: Mapped[int | None] = mapped_column(
        ForeignKey("campaign.id", ondelete="SET NULL"), index=True
    )
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id"), index=True)
    assignment_id: Mapped[int | None] = mapped_column(ForeignKey("assignment.id", ondelete="SET NULL"))
    task_id: Mapped[int | None] = mapped_column(ForeignKey("task.id", ondelete="SET NULL"))
    measure: Mapped[str] = mapped_column(String(40))
    quantity: Mapped[Decimal] = mapped_column(Money, default=Decimal("1"))
    amount: Mapped[Decimal] = mapped_column(
        Money, default=Decimal("0"), comment="money amount, e.g. the deposit"
    )
    evidence_text: Mapped[str | None] = mapped_column(Text)
    evidence_file: Mapped[str | None] = mapped_column(
        String(200), comment="generated name under instance/uploads"
    )
    state: Mapped[str] = mapped_column(String(12), default=ClaimState.submitted)
    verifier_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"), comment="never the claimant")
    verified_at: Mapped[dt.datetime | None] = mapped_column()
    auto_verified: Mapped[bool] = mapped_column(
        default=False, comment="confirmed by imported core-banking data"
    )
    reason: Mapped[str | None] = mapped_column(Text, comment="rejection or reversal reason")
    flags: Mapped[list[str] | None] = mapped_column(JSON, comment="anti-gaming suspicion flags (§11.2)")
    needs_review: Mapped[bool] = mapped_column(default=False, comment="flagged: only a person may verify")
    retention_until: Mapped[dt.date | None] = mapped_column(Date, comment="counts only after this date")
    holdback_pct: Mapped[Decimal | None] = mapped_column(
        Money, comment="percent held back until the window ends"
    )
    holdback_amount: Mapped[Decimal | None] = mapped_column(Money)
    holdback_release_on: Mapped[dt.date | None] = mapped_column(Date)
    ledger_event_id: Mapped[int | None] = mapped_column(comment="the appraisal ledger event of this claim")
    created_at: Mapped[dt.datetime] = mapped_column(default=now_local)
