"""Bounties (悬赏营销): a reward posted on one hard target; the verified winner takes it."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import Date, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from config.database import Base, Money, now_local
from customers.models import Customer
from org.models import Staff
from workflow.engine import Versioned


class BountyState(StrEnum):
    """States of a bounty (PRODUCT.md §5)."""

    open = "open"  #: posted; any manager of its branch may take it
    taken = "taken"  #: one manager holds it exclusively until ``taken_until``
    won = "won"  #: the taker's claim on the target customer was verified
    paid = "paid"  #: paid in an incentive run
    withdrawn = "withdrawn"  #: called off by a director
    expired = "expired"  #: its deadline passed while open


class Bounty(Versioned, Base):
    """A reward on one hard target (a hospital's payroll, one large depositor)."""

    __tablename__ = "bounty"
    __table_args__ = (Index("ix_bounty_state_branch", "state", "branch_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int | None] = mapped_column(
        ForeignKey("campaign.id", ondelete="SET NULL"),
        index=True,
        comment="campaign it belongs to (any kind)",
    )
    branch_id: Mapped[int] = mapped_column(
        ForeignKey("branch.id"), comment="scope: the target customer's branch"
    )
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"), index=True, comment="the hard target")
    amount: Mapped[Decimal] = mapped_column(Money, comment="reward in yuan")
    deadline: Mapped[dt.date] = mapped_column(Date, comment="last day it can be won")
    exclusive_days: Mapped[int] = mapped_column(default=14, comment="days a taker holds it exclusively")
    state: Mapped[str] = mapped_column(String(12), default=BountyState.open)
    taken_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"), comment="who holds it now")
    taken_until: Mapped[dt.date | None] = mapped_column(Date, comment="exclusive until this day (inclusive)")
    winner_id: Mapped[int | None] = mapped_column(
        ForeignKey("staff.id"), comment="whose verified claim won it"
    )
    posted_by: Mapped[int] = mapped_column(ForeignKey("staff.id"), comment="the director who posted it")
    paid_in: Mapped[str | None] = mapped_column(String(40), comment="the incentive run that paid it")
    created_at: Mapped[dt.datetime] = mapped_column(default=now_local)

    customer: Mapped[Customer] = relationship()
    taker: Mapped[Staff | None] = relationship(foreign_keys=[taken_by])
    winner: Mapped[Staff | None] = relationship(foreign_keys=[winner_id])
