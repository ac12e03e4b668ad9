"""Tasks from the campaign's later templates: follow-on after a done task, and the cadence."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select

from config import clock
from tasks import cadence, services
from tasks.models import Task
from tests.factories import make_campaign, make_customer
from tests.integration.queue_helpers import make_assignment, make_task


def _count(session, **where):
    stmt = select(func.count()).select_from(Task)
    for k, v in where.items():
        stmt = stmt.where(getattr(Task, k) == v)
    return session.scalar(stmt)


def test_payroll_chain_follows_each_done_step_once(session, union):
    templates = [
        {"kind": "contact_finance_office", "within_days": 7},
        {"kind": "negotiate", "after": "contact_finance_office", "within_days": 14},
        {"kind": "agreement", "after": "negotiate", "within_days": 30},
    ]
    camp = make_campaign(
        session,
        union.director_b1,
        [union.b1],
        state="active",
        kind="payroll_accounts",
        task_templates=templates,
    )
    hospital = make_customer(session, union.b1, union.m1, type="institution", name="县医院")
    a = make_assignment(session, camp, hospital, union.m1)
    first = make_task(session, union.m1, hospital, campaign=camp, assignment=a, kind="contact_finance_office")
    session.commit()
    assert cadence.generate(session) == 0  # nothing done yet
    services.complete(session, first, union.m1.id, None)  # not a contact kind: no follow-up needed
    assert cadence.generate(session) == 1
    assert cadence.generate(session) == 0  # a re-run makes nothing twice
    nxt = session.scalar(select(Task).where(Task.kind == "negotiate"))
    assert nxt.source_key == f"tpl:{camp.id}:1:{a.id}" and nxt.due_on == clock.today() + dt.timedelta(days=14)
    assert nxt.staff_id == union.m1.id and nxt.assignment_id == a.id
    services.complete(session, nxt, union.m1.id, None)
    assert cadence.generate(session) == 1 and _count(session, kind="agreement") == 1


def test_sequential_templates_without_after_follow_the_previous_one(session, union):
    templates = [{"kind": "visit", "within_days": 14}, {"kind": "activation", "within_days": 21}]
    camp = make_campaign(session, union.director_b1, [union.b1], state="active", task_templates=templates)
    c = make_customer(session, union.b1, union.m1)
    a = make_assignment(session, camp, c, union.m1)
    visit = make_task(session, union.m1, c, campaign=camp, assignment=a, kind="visit")
    session.commit()
    services.complete(
        session,
        visit,
        union.m1.id,
        services.FollowUpInput(channel="visit", content="showed the app", reaction="interested"),
    )
    assert cadence.generate(session) == 1 and _count(session, kind="activation") == 1


def test_cadence_every_n_days_while_the_assignment_is_worked(session, union):
    start = clock.today() - dt.timedelta(days=15)
    templates = [{"kind": "contact", "within_days": 7}, {"kind": "follow_up", "every_days": 14}]
    camp = make_campaign(
        session, union.director_b1, [union.b1], state="active", start_date=start, task_templates=templates
    )
    c1, c2 = make_customer(session, union.b1, union.m1), make_customer(session, union.b1, union.m1)
    make_assignment(session, camp, c1, union.m1)
    make_assignment(session, camp, c2, union.m1, state="declined")  # no longer worked
    session.commit()
    assert cadence.generate(session) == 1
    assert cadence.generate(session) == 0  # same period: nothing twice
    # next period, but the first one is still open: no pile-up
    assert cadence.generate(session, clock.today() + dt.timedelta(days=14)) == 0
    session.execute(Task.__table__.update().values(state="done"))
    assert cadence.generate(session, clock.today() + dt.timedelta(days=14)) == 1
    # a paused campaign gets nothing
    camp.state = "paused"
    session.flush()
    assert cadence.generate(session, clock.today() + dt.timedelta(days=28)) == 0
