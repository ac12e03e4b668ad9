"""Factory fixtures (a pytest plugin): a small union, staff of every role, customers, campaigns."""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy.orm import Session

from campaigns.models import Campaign, Target
from config import clock
from customers.models import Customer, CustomerTag
from org.models import Branch, Staff
from org.services import create_staff, issue_token

_seq = itertools.count(1)


@dataclass
class Union:
    """The test union: a root, two branches and staff of every role."""

    root: Branch
    b1: Branch
    b2: Branch
    admin: Staff
    director: Staff  # union-wide
    director_b1: Staff
    director_b2: Staff
    m1: Staff  # managers of B01
    m2: Staff
    m3: Staff  # manager of B02
    checker: Staff


def make_branch(session: Session, code: str, name: str | None = None, parent: Branch | None = None) -> Branch:
    b = Branch(code=code, name=name or f"{code} 信用社", parent=parent)
    session.add(b)
    session.flush()
    return b


def make_staff(session: Session, branch: Branch, roles: tuple[str, ...] = ("manager",), **kw: Any) -> Staff:
    n = next(_seq)
    kw.setdefault("staff_no", f"S{n:04d}")
    kw.setdefault("name", f"员工{n}")
    return create_staff(session, branch=branch, roles=roles, **kw)


def make_customer(session: Session, branch: Branch, manager: Staff | None = None, **kw: Any) -> Customer:
    n = next(_seq)
    tags = kw.pop("tags", [])
    kw.setdefault("customer_no", f"C{n:07d}")
    kw.setdefault("name", f"客户{n}")
    kw.setdefault("birth_date", dt.date(1980, 1, 1))
    c = Customer(branch_id=branch.id, manager_id=manager.id if manager else None, tags=tags, **kw)
    session.add(c)
    session.flush()
    for t in tags:
        session.add(CustomerTag(customer_id=c.id, tag=t))
    session.flush()
    return c


def make_campaign(session: Session, owner: Staff, branches: list[Branch], **kw: Any) -> Campaign:
    n = next(_seq)
    today = clock.today()
    targets = kw.pop("targets", None)
    kw.setdefault("code", f"CAMP-{n:04d}")
    kw.setdefault("name", f"测试活动 {n}")
    kw.setdefault("kind", "deposit_drive")
    kw.setdefault("start_date", today)
    kw.setdefault("end_date", today + dt.timedelta(days=60))
    kw.setdefault("population", {"customers": {}})
    kw.setdefault("rules", [{"id": "acc", "kind": "piece_rate", "measure": "accounts_opened", "rate": "20"}])
    c = Campaign(owner_id=owner.id, branches=branches, **kw)
    session.add(c)
    session.flush()
    if targets is None:
        targets = [Target(measure="accounts_opened", branch_id=branches[0].id, value=Decimal("10"), split="by_headcount")]
    for t in targets:
        c.targets.append(t)
    session.flush()
    return c


@pytest.fixture
def union(session: Session) -> Union:
    root = make_branch(session, "U00", "县联社")
    b1 = make_branch(session, "B01", "城关信用社", root)
    b2 = make_branch(session, "B02", "新场信用社", root)
    u = Union(
        root=root,
        b1=b1,
        b2=b2,
        admin=make_staff(session, root, ("admin",), staff_no="A0001", name="管理员"),
        director=make_staff(session, root, ("director",), staff_no="D0001", name="陈联社"),
        director_b1=make_staff(session, b1, ("director",), staff_no="D0101", name="王主任"),
        director_b2=make_staff(session, b2, ("director",), staff_no="D0201", name="周主任"),
        m1=make_staff(session, b1, ("manager",), staff_no="M0101", name="李晓燕"),
        m2=make_staff(session, b1, ("manager",), staff_no="M0102", name="张国强"),
        m3=make_staff(session, b2, ("manager",), staff_no="M0201", name="赵丽"),
        checker=make_staff(session, root, ("checker",), staff_no="K0001", name="刘复核"),
    )
    session.commit()
    return u


def login(client: Any, staff: Staff) -> None:
    """Sign ``staff`` in on ``client`` without the password round trip (Flask-Login session key)."""
    with client.session_transaction() as sess:
        sess["_user_id"] = f"{staff.id}:{staff.session_epoch}"
        sess["_fresh"] = True


def bearer(session: Session, staff: Staff) -> dict[str, str]:
    """Authorization header with a fresh API token for ``staff``."""
    token = issue_token(session, staff)
    session.commit()
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def factories() -> Any:
    """The factory functions, for tests that build their own data."""
    import types

    return types.SimpleNamespace(
        branch=make_branch,
        staff=make_staff,
        customer=make_customer,
        campaign=make_campaign,
        login=login,
        bearer=bearer,
    )
