"""Builders shared by the queue, follow-up and claim tests."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

from campaigns.models import Assignment
from config import clock
from tasks.models import Task

_n = itertools.count(1)


def make_assignment(session: Any, campaign: Any, customer: Any, staff: Any, **kw: Any) -> Assignment:
    a = Assignment(
        campaign_id=campaign.id,
        customer_id=customer.id,
        branch_id=customer.branch_id,
        staff_id=staff.id,
        state=kw.pop("state", "assigned"),
        **kw,
    )
    session.add(a)
    session.flush()
    return a


def make_task(
    session: Any,
    staff: Any,
    customer: Any = None,
    *,
    campaign: Any = None,
    assignment: Any = None,
    due: dt.date | None = None,
    **kw: Any,
) -> Task:
    t = Task(
        kind=kw.pop("kind", "contact"),
        title=kw.pop("title", f"task {next(_n)}"),
        campaign_id=campaign.id if campaign else None,
        assignment_id=assignment.id if assignment else None,
        customer_id=customer.id if customer else None,
        branch_id=staff.branch_id,
        staff_id=staff.id,
        due_on=due or clock.today(),
        **kw,
    )
    session.add(t)
    session.flush()
    return t
