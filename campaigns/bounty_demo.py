"""Demo bounties (JOURNEYS 5): 3 000 元 on the county hospital's payroll, taken by a manager for
14 days, and an open one on the largest depositor of another branch.

Run by the demo orchestrator when ``campaigns.bounty_demo`` is in ``web.demo.SEEDERS``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns import bounties
from config import clock
from customers.models import Customer
from org.scope import Scope


def seed(session: Session, ctx: Any) -> None:
    today = clock.today()
    director_b1 = ctx.staff.get("S1100")
    manager = ctx.staff.get("S1102")
    if director_b1 is None or manager is None:
        return
    b1 = ctx.branches["B01"].id
    hospital = session.scalars(
        select(Customer).where(Customer.branch_id == b1, Customer.name.like("%医院%")).order_by(Customer.id)
    ).first()
    if hospital is not None:
        b = bounties.post(
            session,
            Scope.of(session, director_b1),
            customer_id=hospital.id,
            title=f"{hospital.name}代发工资 (payroll agreement)",
            amount="3000",
            deadline=today + dt.timedelta(days=45),
            exclusive_days=14,
            description="Win the hospital's payroll: agreement signed and accounts opened on site.",
        )
        bounties.take(session, Scope.of(session, manager), b.id)
    director_b2 = ctx.staff.get("S2100")
    if director_b2 is not None and "B02" in ctx.branches:
        big = session.scalars(
            select(Customer)
            .where(Customer.branch_id == ctx.branches["B02"].id, Customer.contribution.is_not(None))
            .order_by(Customer.contribution.desc(), Customer.id)
        ).first()
        if big is not None:
            bounties.post(
                session,
                Scope.of(session, director_b2),
                customer_id=big.id,
                title="大额存款户回流 (win back a large depositor)",
                amount="1500",
                deadline=today + dt.timedelta(days=30),
                exclusive_days=10,
            )
    session.flush()
