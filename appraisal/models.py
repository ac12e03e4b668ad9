"""Appraisal records: the ledger (业绩台账), incentive runs and their statement lines, disputes (申诉),
rule versions, training sessions with attendance, complaints and scorecard weights.

The ledger is append-only: the database itself refuses UPDATE and DELETE on ``ledger_event``
(triggers in migration 0002); a correction is a reversal event pointing at the original.
``ledger_total`` keeps the per-month totals of the ledger, maintained by the database itself on
every insert into ``ledger_event`` (triggers in migration 0004).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from config.database import Base, BigId, Money, now_local
from workflow.engine import Versioned

#: A measure value on a statement line (a count, or a sum of money): exact, never float.
Figure = Numeric(20, 4, asdecimal=True)


class EventSource(StrEnum):
    """Where a ledger event came from."""

    import_ = "import"  #: core-banking events file (campaignflow import events)
    claim = "claim"  #: a claim verified by a checker
    reversal = "reversal"  #: cancels an earlier event (clawback, correction)
    adjustment = "adjustment"  #: a manual correction entered by a checker


class LedgerEvent(Base):
    """One verified performance event; never updated or deleted (the database refuses)."""

    __tablename__ = "ledger_event"
    __table_args__ = (
        Index("ix_ledger_event_month_staff_measure", "month", "staff_id", "measure", "campaign_id"),
        Index("ix_ledger_event_reverses_id", "reverses_id", unique=True),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    event_id: Mapped[str] = mapped_column(
        String(64), unique=True, comment="natural key (event_id of the file)"
    )
    occurred_on: Mapped[dt.date] = mapped_column(Date, comment="business date of the result")
    month: Mapped[str] = mapped_column(String(7), comment="YYYY-MM the event counts in")
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"), comment="credited staff member")
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id"))
    campaign_id: Mapped[int | None] = mapped_column(
        ForeignKey("campaign.id"), comment="NULL: counts where the customer is assigned to the staff member"
    )
    measure: Mapped[str] = mapped_column(String(40), comment="accounts_opened, payroll_volume …")
    quantity: Mapped[int] = mapped_column(default=0, comment="count; negative only on a reversal")
    amount: Mapped[Decimal] = mapped_column(Money, default=Decimal("0.00"), comment="sum measures, yuan")
    source: Mapped[str] = mapped_column(String(12), default=EventSource.import_)
    claim_id: Mapped[int | None] = mapped_column(BigId, comment="the verified claim, for source=claim")
    reverses_id: Mapped[int | None] = mapped_column(
        ForeignKey("ledger_event.id"), comment="the event this one reverses (at most one reversal each)"
    )
    reason: Mapped[str | None] = mapped_column(Text, comment="why (reversals and adjustments)")
    created_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=now_local)


class LedgerTotal(Base):
    """The ledger's totals per (month, staff member, campaign, measure), kept by the database.

    Never written by the application: an AFTER INSERT trigger on ``ledger_event`` adds every
    inserted event (one set-based upsert per statement on PostgreSQL, one per row on SQLite;
    migration 0004), whoever inserts (import, verification, reversal, a raw COPY). The ledger is
    append-only, so the totals only grow. ``campaign_key`` is ``campaign_id`` or 0 for events
    with no campaign (a NULL would not be unique). :func:`appraisal.ledger.check_totals` compares
    them with the events.
    """

    __tablename__ = "ledger_total"
    __table_args__ = (
        CheckConstraint("campaign_key = coalesce(campaign_id, 0)", name="campaign_key"),
        {"postgresql_with": {"fillfactor": 50}},  # the trigger's updates stay HOT
    )

    month: Mapped[str] = mapped_column(String(7), primary_key=True, comment="YYYY-MM the events count in")
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"), primary_key=True)
    campaign_key: Mapped[int] = mapped_column(primary_key=True, comment="campaign_id, 0 = no campaign")
    measure: Mapped[str] = mapped_column(String(40), primary_key=True)
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaign.id"))
    events: Mapped[int] = mapped_column(BigInteger, comment="number of events")
    quantity: Mapped[int] = mapped_column(BigInteger, comment="sum of quantity")
    amount: Mapped[Decimal] = mapped_column(Money, comment="sum of amount")
    customer_events: Mapped[int] = mapped_column(BigInteger, comment="events naming a customer")


class RunState(StrEnum):
    """States of an incentive run (PRODUCT.md §5)."""

    computing = "computing"  #: being computed; its lines are not shown
    computed = "computed"  #: complete; may be recomputed until approved
    approved = "approved"  #: approved by a director (not the one who ran it)
    locked = "locked"  #: month closed: nothing of it changes any more


class IncentiveRun(Versioned, Base):
    """The monthly computation (月度绩效核算) for the union or one branch."""

    __tablename__ = "incentive_run"
    __table_args__ = (UniqueConstraint("month", "scope_key", name="uq_incentive_run_month_scope"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    month: Mapped[str] = mapped_column(String(7), index=True, comment="YYYY-MM")
    scope_branch_id: Mapped[int | None] = mapped_column(ForeignKey("branch.id"), comment="NULL = the union")
    scope_key: Mapped[str] = mapped_column(String(20), comment="'union' or the branch code")
    state: Mapped[str] = mapped_column(String(12), default=RunState.computing)
    rule_versions: Mapped[dict[str, Any] | None] = mapped_column(
        JSON, comment="campaign code -> rule version"
    )
    total: Mapped[Decimal] = mapped_column(Money, default=Decimal("0.00"))
    line_count: Mapped[int] = mapped_column(default=0)
    staff_count: Mapped[int] = mapped_column(default=0)
    totals: Mapped[dict[str, Any] | None] = mapped_column(JSON, comment="per branch and per campaign totals")
    result_hash: Mapped[str | None] = mapped_column(String(64), comment="SHA-256 of the canonical lines")
    computations: Mapped[int] = mapped_column(default=0, comment="how many times computed")
    created_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    computed_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"), comment="who ran it last")
    approved_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    locked_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    computed_at: Mapped[dt.datetime | None] = mapped_column()
    approved_at: Mapped[dt.datetime | None] = mapped_column()
    locked_at: Mapped[dt.datetime | None] = mapped_column()
    created_at: Mapped[dt.datetime] = mapped_column(default=now_local)


class StatementLine(Base):
    """One line of a staff member's statement in a run, with its arithmetic.

    ``run_id``, ``staff_id``, ``branch_id`` and ``campaign_id`` refer to ``incentive_run``,
    ``staff``, ``branch`` and ``campaign`` without declared foreign keys: a run writes ~100 000
    lines in one statement, and the database checks them once per statement instead of once per
    line (triggers of migration 0005, on both databases). The guarantees are a foreign key's: a
    line naming a missing parent is refused (SQLSTATE 23503) and the whole statement with it; a
    staff member, branch or campaign that lines name cannot be deleted; deleting a run deletes
    its lines; a line a dispute names cannot be deleted (``Dispute.line_id``).
    """

    __tablename__ = "statement_line"
    __table_args__ = (Index("ix_statement_line_run_staff", "run_id", "staff_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    run_id: Mapped[int] = mapped_column()  # incentive_run.id (deleting the run deletes its lines)
    staff_id: Mapped[int] = mapped_column(index=True)  # staff.id
    branch_id: Mapped[int] = mapped_column(comment="the staff member's branch then")  # branch.id
    campaign_id: Mapped[int | None] = mapped_column()  # campaign.id
    rule_id: Mapped[str] = mapped_column(String(64), comment="rule id, or 'adjustment'")
    rule_version: Mapped[int | None] = mapped_column()
    kind: Mapped[str] = mapped_column(String(20), comment="rule kind, or adjustment")
    measure: Mapped[str | None] = mapped_column(String(40))
    input: Mapped[Decimal | None] = mapped_column(Figure, comment="measure value credited (or score)")
    target: Mapped[Decimal | None] = mapped_column(Figure)
    computed: Mapped[Decimal] = mapped_column(Money, comment="rounded, before cap/floor and budget")
    amount: Mapped[Decimal] = mapped_column(Money, comment="what is paid (negative: deducted)")
    limited_by: Mapped[str | None] = mapped_column(String(8), comment="cap or floor")
    budget_scaled_from: Mapped[Decimal | None] = mapped_column(Money)
    what_if: Mapped[Decimal | None] = mapped_column(Money, comment="what one more result would add")
    formula: Mapped[str] = mapped_column(String(120))
    explanation: Mapped[str] = mapped_column(Text)
    explanation_zh: Mapped[str] = mapped_column(Text)
    dispute_id: Mapped[int | None] = mapped_column(BigId, comment="adjustment lines: the accepted dispute")


class DisputeState(StrEnum):
    open = "open"
    accepted = "accepted"  #: an adjustment line follows in the next run
    rejected = "rejected"  #: answered with a reason


DISPUTE_CATEGORIES = ("missing_result", "wrong_amount", "wrong_target", "wrong_owner", "other")


class Dispute(Versioned, Base):
    """A staff member's objection (申诉) to one statement line."""

    __tablename__ = "dispute"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    line_id: Mapped[int] = mapped_column(BigId, index=True)  # statement_line.id (checked by triggers, 0005)
    run_id: Mapped[int] = mapped_column(ForeignKey("incentive_run.id"), index=True)
    month: Mapped[str] = mapped_column(String(7), comment="month of the disputed line")
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"), index=True, comment="who raised it")
    branch_id: Mapped[int] = mapped_column(ForeignKey("branch.id"))
    category: Mapped[str] = mapped_column(String(20), default="other")
    text: Mapped[str] = mapped_column(Text)
    attachment_name: Mapped[str | None] = mapped_column(String(200))
    attachment: Mapped[bytes | None] = mapped_column(comment="evidence file (small)")
    deadline: Mapped[dt.date] = mapped_column(Date, comment="answer due by")
    state: Mapped[str] = mapped_column(String(10), default=DisputeState.open, index=True)
    answer: Mapped[str | None] = mapped_column(Text)
    adjustment: Mapped[Decimal | None] = mapped_column(Money, comment="accepted: amount added next run")
    answered_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    answered_at: Mapped[dt.datetime | None] = mapped_column()
    applied_run_id: Mapped[int | None] = mapped_column(
        ForeignKey("incentive_run.id"), comment="the run whose adjustment line pays it"
    )
    created_at: Mapped[dt.datetime] = mapped_column(default=now_local)


class RuleVersion(Base):
    """A campaign's reward rules as of a date (PRODUCT.md §11.6); runs name the versions they used."""

    __tablename__ = "rule_version"
    __table_args__ = (UniqueConstraint("campaign_id", "version", name="uq_rule_version_campaign_version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaign.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column()
    effective_from: Mapped[dt.date] = mapped_column(Date, comment="applies to months ending on or after")
    rules: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    note: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=now_local)


class TrainingSession(Base):
    """A training session (培训): the Monday staff school (员工夜校), an external course …"""

    __tablename__ = "training_session"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(
        String(20), default="staff_school", comment="staff_school, external, other"
    )
    held_on: Mapped[dt.date] = mapped_column(Date, index=True)
    branch_id: Mapped[int | None] = mapped_column(ForeignKey("branch.id"), comment="NULL = union-wide")
    mandatory: Mapped[bool] = mapped_column(default=True, comment="absence counts as training_missed")
    created_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=now_local)


class Attendance(Base):
    """Whether one staff member attended one session."""

    __tablename__ = "attendance"
    __table_args__ = (UniqueConstraint("session_id", "staff_id", name="uq_attendance_session_staff"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("training_session.id", ondelete="CASCADE"))
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"), index=True)
    present: Mapped[bool] = mapped_column(default=True)
    note: Mapped[str | None] = mapped_column(String(200))


class ComplaintState(StrEnum):
    open = "open"  #: received, not yet checked
    verified = "verified"  #: counts against the staff member
    dismissed = "dismissed"  #: unfounded


class Complaint(Base):
    """A customer complaint (投诉) against a staff member; verified ones count in appraisal."""

    __tablename__ = "complaint"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"), index=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id"))
    received_on: Mapped[dt.date] = mapped_column(Date, index=True)
    text: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(10), default=ComplaintState.open)
    satisfaction: Mapped[int | None] = mapped_column(comment="customer's satisfaction 1–5 after handling")
    verified_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    verified_at: Mapped[dt.datetime | None] = mapped_column()
    created_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=now_local)


class ScorecardWeights(Base):
    """The scorecard's weights (综合考核); the latest row applies. Weights are percentages summing to 100."""

    __tablename__ = "scorecard_weights"

    id: Mapped[int] = mapped_column(primary_key=True)
    weights: Mapped[dict[str, Any]] = mapped_column(JSON, comment="results, process, service, training")
    created_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=now_local)
