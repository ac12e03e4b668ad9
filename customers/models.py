"""The customer base (客户信息库): customers, tags, balance snapshots, product holdings, alerts."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from config.database import Base, BigId, Money, now_local


class CustomerType(StrEnum):
    individual = "individual"  #: 个人
    business = "business"  #: 个体工商户 / 企业
    institution = "institution"  #: 事业单位: 财政, 学校, 医院


class Tier(StrEnum):
    vip = "vip"
    high = "high"
    mass = "mass"


class Lifecycle(StrEnum):
    prospect = "prospect"
    new = "new"
    active = "active"
    dormant = "dormant"
    lost = "lost"


class Customer(Base):
    """A customer of the union. Columns tagged C2 are personal financial information (masked)."""

    __tablename__ = "customer"
    __table_args__ = (
        Index("ix_customer_branch_manager", "branch_id", "manager_id"),
        Index("ix_customer_branch_tier", "branch_id", "tier"),
        # list filters (customers/queries.py): name prefix, age band, occupation, key customers
        Index("ix_customer_name", "name", postgresql_ops={"name": "text_pattern_ops"}),
        Index("ix_customer_birth_date", "birth_date"),
        Index("ix_customer_occupation", "occupation"),
        Index("ix_customer_key_contribution", "branch_id", "is_key", "contribution"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_no: Mapped[str] = mapped_column(String(32), unique=True, comment="natural key from core banking")
    type: Mapped[str] = mapped_column(String(12), default=CustomerType.individual)
    name: Mapped[str] = mapped_column(String(120), comment="C2 for individuals: masked in lists")
    id_number: Mapped[str | None] = mapped_column(String(18), comment="C2: resident ID, masked")
    phone: Mapped[str | None] = mapped_column(String(20), comment="C2: mobile, masked")
    gender: Mapped[str | None] = mapped_column(String(1), comment="M or F")
    birth_date: Mapped[dt.date | None] = mapped_column(Date)
    occupation: Mapped[str | None] = mapped_column(String(60))
    area: Mapped[str | None] = mapped_column(String(8), comment="urban or rural")
    address: Mapped[str | None] = mapped_column(String(200), comment="C2: masked below district")
    grid: Mapped[str | None] = mapped_column(String(40), index=True, comment="village or street grid")
    tags: Mapped[list[str]] = mapped_column(JSON, default=list, comment="also in customer_tag for filtering")
    branch_id: Mapped[int] = mapped_column(ForeignKey("branch.id"))
    manager_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"), index=True, comment="管户客户经理")
    preferred_channel: Mapped[str | None] = mapped_column(String(12), comment="phone, visit, branch, wechat")
    contact_window: Mapped[str | None] = mapped_column(String(11), comment="e.g. 18:00-21:00")
    do_not_contact: Mapped[bool] = mapped_column(Boolean, default=False)
    marketing_consent: Mapped[bool] = mapped_column(Boolean, default=True)
    notes: Mapped[str | None] = mapped_column(Text, comment="character, interests (实力、性格、爱好)")
    needs: Mapped[dict[str, Any] | None] = mapped_column(
        JSON, comment="preferred_product, term, return_expectation, risk_appetite"
    )
    referred_by_customer_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id"))
    referred_by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    lifecycle: Mapped[str] = mapped_column(String(10), default=Lifecycle.active)
    # business / institution
    credit_code: Mapped[str | None] = mapped_column(String(18), comment="unified social credit code")
    contact_person: Mapped[str | None] = mapped_column(String(60))
    employees: Mapped[int | None] = mapped_column()
    payroll_bank: Mapped[str | None] = mapped_column(String(60))
    # derived by the contribution job (§4.3)
    contribution: Mapped[Decimal | None] = mapped_column(Money)
    contribution_rank: Mapped[int | None] = mapped_column()
    tier: Mapped[str | None] = mapped_column(String(6))
    is_key: Mapped[bool] = mapped_column(
        Boolean, default=False, comment="重点客户 (top 20 % / 80 % of value)"
    )
    risk_status: Mapped[str | None] = mapped_column(String(20))
    created_at: Mapped[dt.datetime] = mapped_column(default=now_local)
    updated_at: Mapped[dt.datetime] = mapped_column(default=now_local, onupdate=now_local)


class CustomerTag(Base):
    """One tag of a customer, for indexed filtering (returning_migrant_worker, self_employed …)."""

    __tablename__ = "customer_tag"
    __table_args__ = (Index("ix_customer_tag_tag", "tag", "customer_id"),)

    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id", ondelete="CASCADE"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(40), primary_key=True)


class Snapshot(Base):
    """A customer's balances on a date (余额快照), imported from core banking. C2."""

    __tablename__ = "snapshot"
    __table_args__ = (Index("ix_snapshot_as_of", "as_of"),)

    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id", ondelete="CASCADE"), primary_key=True)
    as_of: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    deposit_demand: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    deposit_time: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    loan: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    wealth: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    avg_daily_deposit: Mapped[Decimal | None] = mapped_column(Money, comment="month average, where given")
    risk_status: Mapped[str | None] = mapped_column(String(20))


class Holding(Base):
    """A product a customer holds (mobile_banking, payroll_account, debit_card …)."""

    __tablename__ = "holding"
    __table_args__ = (Index("ix_holding_product", "product", "customer_id"),)

    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id", ondelete="CASCADE"), primary_key=True)
    product: Mapped[str] = mapped_column(String(30), primary_key=True)
    opened_on: Mapped[dt.date | None] = mapped_column(Date)
    closed_on: Mapped[dt.date | None] = mapped_column(Date, comment="empty while open")
    branch_id: Mapped[int | None] = mapped_column(ForeignKey("branch.id"))


class Alert(Base):
    """A detected change (客户变化预警); once per customer, type and period."""

    __tablename__ = "alert"
    __table_args__ = (
        UniqueConstraint("customer_id", "type", "period", name="uq_alert_customer_type_period"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id", ondelete="CASCADE"), index=True)
    type: Mapped[str] = mapped_column(String(20), comment="asset_drop, unstable_funds, risk_change")
    period: Mapped[str] = mapped_column(String(10), comment="e.g. 2026-11")
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(default=now_local)

    customer: Mapped[Customer] = relationship()
