"""``campaignflow tasks …`` commands."""

from __future__ import annotations

import datetime as dt

from config import clock
from tests.factories import make_customer
from tests.integration.queue_helpers import make_task


def test_queue_morning_and_auto_verify(runner, session, union):
    c = make_customer(session, union.b1, union.m1, name="李四海")
    make_task(session, union.m1, c)
    make_task(
        session,
        union.m1,
        c,
        state="snoozed",
        snoozed_until=clock.today(),
        due=clock.today() - dt.timedelta(days=1),
    )
    session.commit()
    r = runner.invoke(args=["tasks", "queue", union.m1.staff_no])
    assert r.exit_code == 0 and "today: 1" in r.output and "李*海" in r.output and "李四海" not in r.output
    r = runner.invoke(args=["tasks", "morning"])
    assert r.exit_code == 0 and "woken 1 snoozed" in r.output
    r = runner.invoke(args=["tasks", "auto-verify"])
    assert r.exit_code == 0 and '"verified": 0' in r.output
    assert runner.invoke(args=["tasks", "remind-appointments"]).exit_code == 0
    r = runner.invoke(args=["tasks", "queue", "NOPE"])
    assert r.exit_code == 2 and "no staff" in r.output
