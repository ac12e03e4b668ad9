"""JOURNEY 6 — a customer's money leaves (客户变化预警), end to end in the web client.

The nightly snapshot import (uploaded on /admin/imports) shows a customer's balance down 60 % from
last month. An alert opens a retention task for his relationship manager, due in 3 days; when it is
left untouched, the morning job tells the branch director. The manager's follow-up records the
reason (moved to a rival bank's wealth product).
"""

from __future__ import annotations

import datetime as dt
import io
import re
from decimal import Decimal

import time_machine
from sqlalchemy import insert, select

from config import clock
from customers.models import Alert, Snapshot
from org.models import Staff
from tasks.jobs import morning
from tasks.models import FollowUp, Notification, Task
from tests.factories import login, make_customer


def month_ends(before: dt.date, n: int) -> list[dt.date]:
    """The last ``n`` month ends before ``before``'s month, oldest first."""
    out, d = [], before.replace(day=1)
    for _ in range(n):
        d = d - dt.timedelta(days=1)
        out.append(d)
        d = d.replace(day=1)
    return out[::-1]


def test_journey_6_balance_drop_alert_retention_task_escalation_and_reason(client, session, union):
    u = union
    m1, director_b1, admin = u.m1.id, u.director_b1.id, u.admin.id

    def sign_in(staff_id: int) -> None:
        login(client, session.get(Staff, staff_id))

    today = clock.today()
    ends = month_ends(today, 7)  # six months of history and last month's end
    qian = make_customer(session, u.b1, u.m1, name="钱大富", customer_no="C0660001")
    steady = make_customer(session, u.b1, u.m2, name="孙平稳", customer_no="C0660002")
    session.execute(
        insert(Snapshot),
        [
            {"customer_id": c.id, "as_of": d, "deposit_demand": Decimal(100_000)}
            for c in (qian, steady)
            for d in ends[:-1]
        ],
    )
    session.commit()
    qian_id = qian.id

    # the nightly import: last month-end's snapshot, his balance down 60 %
    sign_in(admin)
    csv = f"customer_no,as_of,deposit_demand\nC0660001,{ends[-1]},40000.00\nC0660002,{ends[-1]},101000.00\n"
    r = client.post(
        "/admin/imports",
        data={"kind": "snapshots", "file": (io.BytesIO(csv.encode()), "snapshots.csv")},
        content_type="multipart/form-data",
    )
    assert r.status_code == 303, r.get_data(as_text=True)[-1500:]
    assert "2 rows applied" in client.get(r.headers["Location"]).get_data(as_text=True)
    session.rollback()

    # one alert, one retention task for his relationship manager, due in 3 days
    (alert,) = session.scalars(select(Alert)).all()
    assert (alert.customer_id, alert.type) == (qian_id, "asset_drop")
    task = session.scalar(select(Task).where(Task.source_key == f"alert:{alert.id}"))
    assert (task.kind, task.staff_id, task.state) == ("retention", m1, "open")
    assert task.due_on == today + dt.timedelta(days=3)

    # the manager sees it: on the alerts page and in her queue
    sign_in(m1)
    alerts_page = client.get("/customers/alerts").get_data(as_text=True)
    row = alerts_page[alerts_page.index("<tbody>") :]
    assert re.search(r"asset.drop", row) and "100,000.00 → 40,000.00" in row
    assert f"due {task.due_on.isoformat()}" in row
    assert "钱大富" in row  # her own customer (the relationship manager sees the name on customer pages)
    queue = client.get("/queue/").get_data(as_text=True)
    assert f'data-testid="task-{task.id}"' in queue and "钱*富" in queue

    # untouched: four days later the morning job tells the branch director
    with time_machine.travel(
        dt.datetime.combine(today + dt.timedelta(days=4), dt.time(7, 0), tzinfo=clock.ZONE), tick=False
    ):
        out = morning()
    assert out["escalated"] >= 1
    told = session.scalars(
        select(Notification).where(Notification.staff_id == director_b1, Notification.kind == "overdue")
    ).all()
    assert len(told) == 2
    summary = next(n for n in told if "in branch B01" in n.text)
    assert "1 overdue task(s) in branch B01" in summary.text and summary.link == "/queue/overdue"
    # and by name: which customer (masked), which alert, whose task, how late
    named = next(n for n in told if n is not summary)
    assert "钱*富" in named.text and "asset drop" in named.text and "李晓燕" in named.text
    assert "钱大富" not in named.text and named.link == f"/queue/task/{task.id}"
    # the director opens the overdue list and finds the retention task
    sign_in(director_b1)
    bell = client.get("/queue/notifications").get_data(as_text=True)
    assert "overdue task(s) in branch B01" in bell

    # the manager calls him; the follow-up records why the money left
    sign_in(m1)
    reason = "转到他行理财产品 (moved to a rival bank's wealth product)"
    r = client.post(
        f"/queue/task/{task.id}/complete",
        data={
            "channel": "phone",
            "content": "客户说他行理财收益高，已转出6万",
            "reaction": "declined",
            "failure_reason": reason,
        },
    )
    assert r.status_code == 303, r.get_data(as_text=True)[-1500:]
    session.rollback()
    assert session.get(Task, task.id).state == "done"
    fu = session.scalar(select(FollowUp).where(FollowUp.task_id == task.id))
    assert (fu.customer_id, fu.reaction, fu.failure_reason) == (qian_id, "declined", reason)
    card = client.get(f"/customers/{qian_id}").get_data(as_text=True)
    assert "他行理财" in card
