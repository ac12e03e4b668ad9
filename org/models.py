"""Branches, staff (who may log in), their roles, API tokens and the audit log."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from config.database import Base, BigId, now_local


class Role(StrEnum):
    """What a person may do; one person may hold several (PRODUCT.md §1)."""

    admin = "admin"  #: 系统管理员 — users, branches, roles, imports
    director = "director"  #: 联社领导 / 信用社主任 — campaigns, targets, rules, approvals
    manager = "manager"  #: 客户经理 — own customers and tasks
    checker = "checker"  #: 绩效管理员 / 复核员 — verification, disputes, payroll exports


class StaffStatus(StrEnum):
    """Whether a staff member can be given work (inactive, on-leave and departed never are)."""

    active = "active"
    on_leave = "on_leave"
    inactive = "inactive"
    departed = "departed"


class Branch(Base):
    """A branch (信用社 / 网点); the union is the root (no parent)."""

    __tablename__ = "branch"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(20), unique=True, comment="branch_code, natural key")
    name: Mapped[str] = mapped_column(String(100))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("branch.id"), comment="parent branch")

    parent: Mapped[Branch | None] = relationship(remote_side=[id])


class Staff(Base):
    """A person who works in the union; with a password hash they may log in (username = staff_no)."""

    __tablename__ = "staff"

    id: Mapped[int] = mapped_column(primary_key=True)
    staff_no: Mapped[str] = mapped_column(String(20), unique=True, comment="natural key, login name")
    name: Mapped[str] = mapped_column(String(60))
    branch_id: Mapped[int] = mapped_column(ForeignKey("branch.id"), index=True)
    email: Mapped[str | None] = mapped_column(String(120))
    phone: Mapped[str | None] = mapped_column(String(20), comment="C2 personal data")
    hired_on: Mapped[dt.date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(12), default=StaffStatus.active)
    senior: Mapped[bool] = mapped_column(Boolean, default=False, comment="senior manager: gets key customers")
    capacity: Mapped[int] = mapped_column(default=400, comment="most open assignments per campaign")
    substitute_id: Mapped[int | None] = mapped_column(
        ForeignKey("staff.id"), comment="who takes delegated tasks while this person is away"
    )
    away_until: Mapped[dt.date | None] = mapped_column(Date)
    password_hash: Mapped[str | None] = mapped_column(String(200))
    locale: Mapped[str | None] = mapped_column(String(10), comment="zh_CN or en; None follows the browser")
    failed_logins: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[dt.datetime | None] = mapped_column()
    session_epoch: Mapped[int] = mapped_column(default=0, comment="bumped on logout to kill old sessions")
    totp_secret: Mapped[str | None] = mapped_column(
        String(64), comment="second-factor seed (base32, authentication data); set by enrolment (org/mfa.py)"
    )
    totp_last_step: Mapped[int | None] = mapped_column(comment="time step of the last accepted code (no replay)")
    created_at: Mapped[dt.datetime] = mapped_column(default=now_local)

    branch: Mapped[Branch] = relationship()
    roles: Mapped[list[StaffRole]] = relationship(
        back_populates="staff", cascade="all, delete-orphan", lazy="selectin"
    )

    def role_names(self) -> set[str]:
        return {r.role for r in self.roles}

    def has_role(self, *roles: str) -> bool:
        return bool(self.role_names() & set(roles))


class StaffRole(Base):
    """One role of a staff member; ``branch_id`` NULL means union-wide scope."""

    __tablename__ = "staff_role"
    __table_args__ = (UniqueConstraint("staff_id", "role", name="uq_staff_role_staff_role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(12))
    branch_id: Mapped[int | None] = mapped_column(
        ForeignKey("branch.id"), comment="scope: this branch only; NULL = the whole union"
    )

    staff: Mapped[Staff] = relationship(back_populates="roles")


class ApiToken(Base):
    """A bearer token for the JSON API; only its SHA-256 is stored."""

    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(60))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=now_local)
    revoked: Mapped[bool] = mapped_column(default=False)


class IdempotencyKey(Base):
    """One API request made with an ``Idempotency-Key`` (RELIABILITY CONC-06): per staff member and
    key, the request's fingerprint and, once answered, its response — a retry gets the same
    answer instead of a second claim or verdict. Kept 24 hours (``web/api/idempotency.py``)."""

    __tablename__ = "idempotency_key"
    __table_args__ = (
        UniqueConstraint("staff_id", "key", name="uq_idempotency_key_staff_key"),
        Index("ix_idempotency_key_staff_created", "staff_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(100))
    fingerprint: Mapped[str] = mapped_column(String(64), comment="SHA-256 of method, path and body")
    state: Mapped[str] = mapped_column(String(10), default="pending", comment="pending or done")
    status: Mapped[int | None] = mapped_column(comment="HTTP status of the stored response")
    body: Mapped[str | None] = mapped_column(Text, comment="the stored response body (JSON)")
    created_at: Mapped[dt.datetime] = mapped_column(default=now_local)


class AuditLog(Base):
    """Who did what sensitive thing, when, to what and why (unmasking, exports, logins, approvals).

    Append-only (the database refuses UPDATE and DELETE) and hash-chained: write it only through
    ``org.services.audit`` (see ``org/audit.py``)."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_at", "at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(default=now_local)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id", ondelete="SET NULL"), index=True)
    action: Mapped[str] = mapped_column(String(40), comment="reveal, export, login, login_failed …")
    object_type: Mapped[str | None] = mapped_column(String(40))
    object_id: Mapped[str | None] = mapped_column(String(60))
    fields: Mapped[list[str] | None] = mapped_column(JSON, comment="which fields were shown in full")
    reason: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    prev_hash: Mapped[str | None] = mapped_column(String(64), comment="hash of the row before (org/audit.py)")
    hash: Mapped[str | None] = mapped_column(String(64), comment="SHA-256 over prev_hash and this row")
