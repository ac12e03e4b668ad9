"""Verbs on the organisation: staff accounts, passwords, API tokens, audit records."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Iterable
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from config.database import now_local
from org.models import ApiToken, AuditLog, Branch, Role, Staff, StaffRole

_hasher = PasswordHasher()

#: failed logins before the account is locked, and for how long
MAX_FAILED_LOGINS = 5
LOCK_MINUTES = 15


class AuthError(Exception):
    """Login refused; the message never says whether the user exists."""


def hash_password(password: str) -> str:
    """argon2id hash (memory-hard) of ``password``."""
    return _hasher.hash(password)


def set_roles(staff: Staff, roles: Iterable[str], branch_scoped: bool = True) -> None:
    """Replace ``staff``'s roles; directors and checkers of a non-root branch are scoped to it."""
    wanted = []
    for role in roles:
        role = role.strip()
        if not role:
            continue
        if role not in Role.__members__:
            raise ValueError(f"unknown role {role!r}; expected one of {', '.join(Role)}")
        wanted.append(role)
    staff.roles.clear()
    for role in dict.fromkeys(wanted):
        scoped = branch_scoped and role in (Role.director, Role.checker) and staff.branch.parent_id is not None
        staff.roles.append(StaffRole(role=role, branch_id=staff.branch.id if scoped else None))


def create_staff(
    session: Session,
    *,
    staff_no: str,
    name: str,
    branch: Branch,
    roles: Iterable[str] = (Role.manager,),
    password: str | None = None,
    **fields: Any,
) -> Staff:
    """Create a staff member (and login when a password is given); flushes, does not commit."""
    staff = Staff(staff_no=staff_no, name=name, branch=branch, **fields)
    if password:
        staff.password_hash = hash_password(password)
    session.add(staff)
    set_roles(staff, roles)
    session.flush()
    return staff


def authenticate(session: Session, staff_no: str, password: str, *, ip: str | None = None) -> Staff:
    """Check a login; lock the account after repeated failures; audit both outcomes."""
    staff = session.scalar(select(Staff).where(Staff.staff_no == staff_no))
    now = now_local()
    if staff is None or not staff.password_hash or staff.status == "departed":
        _hasher.hash(password)  # same cost whether or not the account exists
        audit(session, None, "login_failed", "staff", staff_no, detail={"ip": ip})
        raise AuthError("Wrong staff number or password")
    if staff.locked_until and staff.locked_until > now:
        audit(session, staff.id, "login_locked", "staff", staff.staff_no, detail={"ip": ip})
        raise AuthError("Too many failed logins; try again later")
    try:
        _hasher.verify(staff.password_hash, password)
    except (VerificationError, InvalidHashError):
        staff.failed_logins += 1
        if staff.failed_logins >= MAX_FAILED_LOGINS:
            staff.locked_until = now + dt.timedelta(minutes=LOCK_MINUTES)
            staff.failed_logins = 0
        audit(session, staff.id, "login_failed", "staff", staff.staff_no, detail={"ip": ip})
        raise AuthError("Wrong staff number or password") from None
    if _hasher.check_needs_rehash(staff.password_hash):
        staff.password_hash = hash_password(password)
    staff.failed_logins = 0
    staff.locked_until = None
    audit(session, staff.id, "login", "staff", staff.staff_no, detail={"ip": ip})
    return staff


def issue_token(session: Session, staff: Staff, name: str = "api") -> str:
    """Create an API token for ``staff``; the plain token is returned once and never stored."""
    token = "cf_" + secrets.token_urlsafe(32)
    session.add(ApiToken(staff_id=staff.id, name=name, token_hash=_token_hash(token)))
    session.flush()
    return token


def staff_for_token(session: Session, token: str) -> Staff | None:
    row = session.scalar(
        select(ApiToken).where(ApiToken.token_hash == _token_hash(token), ApiToken.revoked.is_(False))
    )
    if row is None:
        return None
    staff = session.get(Staff, row.staff_id)
    return staff if staff is not None and staff.status != "departed" else None


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def audit(
    session: Session,
    actor_id: int | None,
    action: str,
    object_type: str | None = None,
    object_id: object = None,
    *,
    fields: list[str] | None = None,
    reason: str | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditLog:
    """Write one audit row in the caller's transaction, chained to the one before (org/audit.py)."""
    from org import audit as chain

    row = AuditLog(
        at=now_local(),
        actor_id=actor_id,
        action=action,
        object_type=object_type,
        object_id=None if object_id is None else str(object_id),
        fields=fields,
        reason=reason,
        detail=detail,
    )
    return chain.append(session, row)
