"""Campaigns, their branches and targets, and assignments of customers to staff."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Date, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from config.database import Base, BigId, Money, now_local
from org.models import Branch, Staff
from workflow.engine import Versioned


class CampaignState(StrEnum):
    """States of a campaign (PRODUCT.md §5) and who moves it there."""

    draft = "draft"  #: being written by its director; editable
    scheduled = "scheduled"  #: launched, waiting for its start date (the scheduler starts it)
    active = "active"  #: running: its tasks are in the queues
    paused = "paused"  #: halted by a director: its tasks are hidden from queues
    closed = "closed"  #: end date reached or closed early: open tasks expired
    settled = "settled"  #: its last month's incentive run is locked
    cancelled = "cancelled"  #: called off with a reason: tasks cancelled, nothing paid


EDITABLE = {CampaignState.draft}
RUNNING = {CampaignState.scheduled, CampaignState.active, CampaignState.paused}
TERMINAL = {CampaignState.settled, CampaignState.cancelled}


class CampaignKind(StrEnum):
    """Kinds of campaign (PRODUCT.md §3); their defaults live in :mod:`campaigns.kinds`."""

    street_canvassing = "street_canvassing"
    payroll_accounts = "payroll_accounts"
    online_offline = "online_offline"
    deposit_drive = "deposit_drive"
    retention = "retention"
    bounty = "bounty"


class Campaign(Versioned, Base):
    """A time-boxed marketing effort of one kind with targets, task templates and reward rules."""

    __tablename__ = "campaign"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True, comment="natural key, e.g. DEP-2027-01")
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(30))
    owner_id: Mapped[int] = mapped_column(ForeignKey("staff.id"), comment="the director who owns it")
    all_branches: Mapped[bool] = mapped_column(default=False, comment="branches: all")
    start_date: Mapped[dt.date] = mapped_column(Date)
    end_date: Mapped[dt.date] = mapped_column(Date)
    population: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, comment="saved filter / lists")
    task_templates: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    rules: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list, comment="current reward rules")
    rules_none: Mapped[bool] = mapped_column(default=False, comment="explicitly launched without rules")
    budget: Mapped[Decimal | None] = mapped_column(Money)
    priority: Mapped[int] = mapped_column(default=0, comment="higher sorts first in queues")
    state: Mapped[str] = mapped_column(String(12), default=CampaignState.draft, index=True)
    state_reason: Mapped[str | None] = mapped_column(Text, comment="reason of the last pause/cancel/close")
    launched_at: Mapped[dt.datetime | None] = mapped_column()
    created_at: Mapped[dt.datetime] = mapped_column(default=now_local)

    owner: Mapped[Staff] = relationship()
    branches: Mapped[list[Branch]] = relationship(secondary="campaign_branch", order_by="Branch.code")
    targets: Mapped[list[Target]] = relationship(
        back_populates="campaign", cascade="all, delete-orphan", order_by="Target.id"
    )


class CampaignBranch(Base):
    """A branch in a campaign's scope."""

    __tablename__ = "campaign_branch"

    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaign.id", ondelete="CASCADE"), primary_key=True)
    branch_id: Mapped[int] = mapped_column(ForeignKey("branch.id"), primary_key=True)


class Target(Base):
    """A KPI goal (任务指标) for a branch or one staff member in a campaign."""

    __tablename__ = "target"

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaign.id", ondelete="CASCADE"), index=True)
    measure: Mapped[str] = mapped_column(String(40))
    branch_id: Mapped[int | None] = mapped_column(ForeignKey("branch.id"))
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    value: Mapped[Decimal] = mapped_column(Money)
    split: Mapped[str | None] = mapped_column(String(20), comment="by_headcount or by_weight")
    weights: Mapped[dict[str, Any] | None] = mapped_column(JSON, comment="staff_no -> weight for by_weight")
    basis: Mapped[str] = mapped_column(String(20), default="daily_average", comment="daily_average or point_in_time")

    campaign: Mapped[Campaign] = relationship(back_populates="targets")


class AssignmentState(StrEnum):
    """States of an assignment (PRODUCT.md §5)."""

    pool = "pool"  #: not given to anyone; staff of the branch may claim it
    assigned = "assigned"  #: given to a staff member
    contacted = "contacted"  #: a first contact was recorded
    interested = "interested"  #: the customer showed interest
    converted = "converted"  #: a verified result
    declined = "declined"  #: the customer said no
    unreachable = "unreachable"  #: could not be reached
    closed = "closed"  #: the campaign closed without a result


class Assignment(Versioned, Base):
    """One customer given to one staff member (or left in the branch pool) within a campaign."""

    __tablename__ = "assignment"
    __table_args__ = (
        UniqueConstraint("campaign_id", "customer_id", name="uq_assignment_campaign_customer"),
        Index("ix_assignment_staff_state", "staff_id", "state"),
        Index("ix_assignment_campaign_state", "campaign_id", "state"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaign.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"), index=True)
    branch_id: Mapped[int] = mapped_column(ForeignKey("branch.id"), index=True)
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"), comment="owner; NULL while in the pool")
    state: Mapped[str] = mapped_column(String(12), default=AssignmentState.assigned)
    reason: Mapped[str | None] = mapped_column(
        String(200), comment="why it went to this person (explainable assignment)"
    )
    shares: Mapped[dict[str, Any] | None] = mapped_column(JSON, comment="split credit: staff_id -> share")
    plan: Mapped[dict[str, Any] | None] = mapped_column(JSON, comment="follow-up plan: goal, reactions, responses")
    created_at: Mapped[dt.datetime] = mapped_column(default=now_local)
