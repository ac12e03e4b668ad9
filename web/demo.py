"""The demo union: a county union with 5 branches, about 40 staff of every role, a few thousand
customers with 12 months of snapshots, and campaigns in several states. Deterministic.

Each domain package may contribute a ``demo.py`` with ``seed(session, ctx)``; they run in order.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from random import Random
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from config.database import db
from org.models import Branch, Staff
from org.services import create_staff

DEMO_PASSWORD = "demo1234"

BRANCHES = [
    ("U00", "蓬溪县农村信用合作联社", None),
    ("B01", "城关信用社", "U00"),
    ("B02", "赤城信用社", "U00"),
    ("B03", "新会信用社", "U00"),
    ("B04", "天福信用社", "U00"),
    ("B05", "明月信用社", "U00"),
]
SURNAMES = "王李张刘陈杨黄赵周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕"
GIVEN = "晓燕国强丽华建军秀英志明春梅德华玉兰文杰海燕俊峰红霞家豪淑珍永福桂芳明亮小琴"


@dataclass
class DemoContext:
    """What earlier seeders made, for later ones."""

    rng: Random
    customers: int
    branches: dict[str, Branch] = field(default_factory=dict)
    staff: dict[str, Staff] = field(default_factory=dict)
    logins: list[tuple[str, str, str]] = field(default_factory=list)  # (staff_no, name, roles)
    extra: dict[str, Any] = field(default_factory=dict)

    def person_name(self) -> str:
        return self.rng.choice(SURNAMES) + "".join(self.rng.sample(GIVEN, self.rng.choice((1, 2))))


def seed_org(session: Session, ctx: DemoContext) -> None:
    """Branches and staff: per branch a director, six or seven managers and a checker."""
    for code, name, parent in BRANCHES:
        b = Branch(code=code, name=name, parent=ctx.branches.get(parent) if parent else None)
        session.add(b)
        session.flush()
        ctx.branches[code] = b
    root = ctx.branches["U00"]

    def add(staff_no: str, name: str, branch: Branch, roles: tuple[str, ...], **kw: Any) -> Staff:
        s = create_staff(session, staff_no=staff_no, name=name, branch=branch, roles=roles, password=None, **kw)
        ctx.staff[staff_no] = s
        return s

    add("S0001", "陈代荣", root, ("director",))
    add("S0002", "系统管理员", root, ("admin",))
    add("S0003", "刘复核", root, ("checker",))
    add("S0004", "人力资源 何会计", root, ("checker",))
    for i, (code, _name, _parent) in enumerate(BRANCHES[1:], start=1):
        b = ctx.branches[code]
        add(f"S{i}100", "王主任" if i == 1 else ctx.person_name() + "主任", b, ("director",))
        for j in range(1, 8 if i <= 2 else 7):
            name = "李晓燕" if (i, j) == (1, 1) else ("张国强" if (i, j) == (1, 2) else ("赵丽" if (i, j) == (1, 3) else ctx.person_name()))
            add(f"S{i}1{j:02d}", name, b, ("manager",), senior=(j == 1))
        add(f"S{i}190", ctx.person_name(), b, ("checker",))
    from org.services import hash_password

    shared_hash = hash_password(DEMO_PASSWORD)  # one argon2 hash for every demo login: fast seeding
    for s in ctx.staff.values():
        s.password_hash = shared_hash
    ctx.logins = [
        ("S0001", "陈代荣", "director (union)"),
        ("S1100", "王主任", "director (城关信用社)"),
        ("S1101", "李晓燕", "manager"),
        ("S1102", "张国强", "manager"),
        ("S0003", "刘复核", "checker"),
        ("S0002", "系统管理员", "admin"),
    ]
    session.flush()


SEEDERS: list[str] = ["customers.demo", "campaigns.demo", "campaigns.bounty_demo", "tasks.demo", "appraisal.demo"]


def seed(customers: int = 3000, if_empty: bool = False, echo: Callable[[str], Any] = print) -> DemoContext | None:
    """Seed the demo union in one transaction; ``if_empty`` makes a second run a no-op."""
    with db.transaction() as session:
        if session.scalar(select(func.count()).select_from(Branch)):
            if if_empty:
                echo("demo union already present")
                return None
            raise RuntimeError("the database already holds a union; seed an empty database")
        ctx = DemoContext(rng=Random(20270101), customers=customers)
        seed_org(session, ctx)
        for module in SEEDERS:
            try:
                mod = importlib.import_module(module)
            except ModuleNotFoundError as exc:
                if exc.name != module:
                    raise
                continue
            echo(f"seeding {module} …")
            mod.seed(session, ctx)
            session.flush()
    echo(f"demo union ready. Password for every demo login: {DEMO_PASSWORD}")
    for staff_no, name, role in ctx.logins:
        echo(f"  {staff_no}  {name}  ({role})")
    return ctx
