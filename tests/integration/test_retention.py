"""PII-08: personal notes older than the retention period are replaced; newer ones, the records
themselves and the audit log stay. Time travels with the clock."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select

from config import clock
from org.models import AuditLog
from org.services import audit
from tasks import retention
from tasks.models import Appointment, FollowUp, Task
from tests.factories import make_campaign, make_customer
from tests.integration.queue_helpers import make_assignment, make_task


def test_old_notes_go_new_ones_and_the_records_stay(runner, session, union, monkeypatch):
    today = clock.today()
    long_ago = dt.datetime.combine(today - dt.timedelta(days=1200), dt.time(10, 0))
    recent = dt.datetime.combine(today - dt.timedelta(days=30), dt.time(10, 0))
    old_camp = make_campaign(
        session,
        union.director_b1,
        [union.b1],
        start_date=long_ago.date(),
        end_date=long_ago.date() + dt.timedelta(days=30),
    )
    cust = make_customer(session, union.b1, union.m1)
    a = make_assignment(session, old_camp, cust, union.m1, plan={"goal": "time deposit", "reactions": []})
    make_assignment(session, old_camp, make_customer(session, union.b1, union.m1), union.m1)  # no plan
    t = make_task(session, union.m1, cust, campaign=old_camp, assignment=a, state="failed")
    t.failed_reason, t.finished_at = "客户说家里有人生病，钱要留着", long_ago
    for at, text in ((long_ago, "他说女儿在成都读书，学费要用"), (recent, "愿意周五来网点")):
        session.add(
            FollowUp(
                task_id=t.id,
                customer_id=cust.id,
                staff_id=union.m1.id,
                at=at,
                channel="phone",
                content=text,
                reaction="neutral",
                next_step="call again",
            )
        )
    session.add(
        Appointment(
            customer_id=cust.id,
            staff_id=union.m1.id,
            branch_id=union.b1.id,
            at=long_ago,
            purpose="谈房贷",
            state="done",
        )
    )
    audit(session, union.m1.id, "reveal", "customer", cust.id, reason="核对")
    session.commit()
    audit_before = session.scalar(select(func.count()).select_from(AuditLog))

    r = runner.invoke(args=["tasks", "purge-notes", "--dry-run"])
    assert (
        r.exit_code == 0 and "would remove 1 follow ups, 1 appointments, 1 failed tasks, 1 plans" in r.output
    )
    session.expire_all()
    assert (
        session.scalar(
            select(func.count()).select_from(FollowUp).where(FollowUp.content == retention.REMOVED)
        )
        == 0
    )

    r = runner.invoke(args=["tasks", "purge-notes"])
    assert r.exit_code == 0 and "removed 1 follow ups" in r.output
    session.rollback()  # a fresh snapshot: see what the command committed
    notes = dict(session.execute(select(FollowUp.at, FollowUp.content)).all())
    assert notes == {long_ago: retention.REMOVED, recent: "愿意周五来网点"}
    old = session.scalar(select(FollowUp).where(FollowUp.at == long_ago))
    assert old.next_step is None and old.channel == "phone" and old.reaction == "neutral"  # the record stays
    assert session.scalar(select(Appointment.purpose)) == retention.REMOVED
    assert session.get(Task, t.id).failed_reason == retention.REMOVED
    session.refresh(a)
    assert a.plan is None
    assert session.scalar(select(func.count()).select_from(AuditLog)) == audit_before  # never touched
    # run again: nothing left to do
    assert (
        "removed 0 follow ups, 0 appointments, 0 failed tasks, 0 plans"
        in runner.invoke(args=["tasks", "purge-notes"]).output
    )
