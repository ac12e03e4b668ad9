"""JOURNEY 1 — the director launches a deposit-season drive (旺季存款营销), end to end in the web client.

王主任 opens Campaigns → New, picks "deposit drive", names it 开门红 (1 January – 31 March), chooses
returning migrant workers and the self-employed of her branch and sees the count before going on;
splits the branch's 日均 target by headcount over her managers, picks the kind's default rules
(2‰ capped at 5 000; 500 at 100 %) and sees the what-if on last month's data; a point-in-time (时点)
target is refused with its reason; she launches; the job's progress is shown; the campaign page
shows its diagram with "active" lit and the history "launched by 王主任".
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

from sqlalchemy import func, select

from campaigns.launch_check import last_complete_month
from campaigns.models import Assignment, Campaign
from config import clock
from customers.models import Snapshot
from tasks.models import Task
from tests.factories import login, make_customer, make_staff
from workflow.models import JobProgress


def _step(cid: int, step: str) -> str:
    return f"/campaigns/editor/{cid}/edit/{step}"


def _field_error(html: str, name: str) -> str:
    m = re.search(rf'data-field="{name}">(.*?)</div>\s*</div>', html, re.S)
    return m.group(1) if m else ""


def test_journey_1_director_launches_a_deposit_drive(client, session, union):
    u = union
    # her branch has four managers (m1, m2 + two more) and a population in the two segments
    m4 = make_staff(session, u.b1, staff_no="M0103", name="孙红")
    m5 = make_staff(session, u.b1, staff_no="M0104", name="周强")
    managers = [u.m1, u.m2, m4, m5]
    wanted = []
    for i in range(7):
        tag = "returning_migrant_worker" if i % 2 else "self_employed"
        wanted.append(make_customer(session, u.b1, managers[i % 4], tags=[tag]))
    make_customer(session, u.b1, u.m1, tags=["farmer"])  # another segment: not counted
    make_customer(session, u.b2, u.m3, tags=["self_employed"])  # another branch: not counted
    # last month's data for the what-if: m1's customer holds 1 000 000 on daily average
    first, last = last_complete_month(clock.today())
    session.add(Snapshot(customer_id=wanted[0].id, as_of=last, deposit_demand=Decimal(1_000_000)))
    session.commit()
    login(client, u.director_b1)

    # Campaigns → New
    assert "/campaigns/editor/new" in client.get("/campaigns/").get_data(as_text=True)
    new = client.get("/campaigns/editor/new").get_data(as_text=True)
    assert "deposit drive" in new
    year = clock.today().year + 1
    r = client.post(
        "/campaigns/editor/new",
        data={
            "kind": "deposit_drive",
            "name": "开门红",
            "code": "KMH-J1",
            "start": dt.date(year, 1, 1).isoformat(),
            "end": dt.date(year, 3, 31).isoformat(),
            "branches": ["B01"],
        },
    )
    assert r.status_code == 303
    c = session.scalar(select(Campaign).where(Campaign.code == "KMH-J1"))
    assert (c.name, c.state, c.kind) == ("开门红", "draft", "deposit_drive")

    # population: the count before going on
    r = client.get(
        f"/campaigns/editor/{c.id}/population/count?tags_any=returning_migrant_worker,self_employed"
    )
    assert "7 customers" in r.get_data(as_text=True)
    r = client.post(_step(c.id, "population"), data={"tags_any": "returning_migrant_worker, self_employed"})
    assert r.status_code == 303
    assert "7 customers" in client.get(_step(c.id, "population")).get_data(as_text=True)

    # targets: the branch's 日均 target split by headcount over her four managers
    grid = {"measure": "new_deposits", "basis": "daily_average", f"b_{u.b1.id}": "4000000"}
    empty_cells = {f"s_{m.id}": "" for m in managers}  # a browser posts the empty cells too
    r = client.post(_step(c.id, "targets"), data=grid | empty_cells | {"action": "split_headcount"})
    html = r.get_data(as_text=True)
    for m in managers:
        assert re.search(rf'name="s_{m.id}"[^>]*value="1000000.00"', html), m.staff_no
    staff_cells = {f"s_{m.id}": "1000000" for m in managers} | {f"split_{u.b1.id}": "by_headcount"}

    # she tries a point-in-time (时点) target: refused with the launch check's reason
    r = client.post(
        _step(c.id, "targets"), data=grid | staff_cells | {"basis": "point_in_time", "action": "save"}
    )
    assert r.status_code == 422
    reason = _field_error(r.get_data(as_text=True), "basis")
    assert "Refused by the launch check" in reason and "daily averages (日均)" in reason
    session.expire_all()
    assert session.get(Campaign, c.id).targets == []
    r = client.post(_step(c.id, "targets"), data=grid | staff_cells | {"action": "save"})
    assert r.status_code == 303
    session.expire_all()
    assert len(session.get(Campaign, c.id).targets) == 5  # the branch and its four managers

    # rules: the kind's defaults picked, then the what-if on last month's data
    r = client.post(
        _step(c.id, "rules"), data={"rules": "", "pick": ["dep", "bonus"], "tasks": "", "action": "pick"}
    )
    html = r.get_data(as_text=True)
    assert "rate: 0.002" in html and "cap: 5000" in html and "amount: 500" in html
    session.expire_all()
    assert [r["id"] for r in session.get(Campaign, c.id).rules] == ["dep", "bonus"]
    html = client.get(_step(c.id, "rules")).get_data(as_text=True)
    assert "Estimated cost on last month" in html
    # m1: 1 000 000 × 2‰ = 2 000, and 100 % of her 1 000 000 target → the 500 bonus
    assert "2,500.00" in html

    # review, then launch
    html = client.get(_step(c.id, "review")).get_data(as_text=True)
    assert "7 customers" in html and "Launch check" in html
    r = client.post(f"/campaigns/editor/{c.id}/launch")
    assert r.status_code == 303 and r.headers["Location"].endswith(f"/campaigns/{c.id}")

    # the assignments and their first contact tasks were made by the job (eager in tests)
    session.expire_all()
    progress = session.scalar(select(JobProgress).where(JobProgress.subject == "campaign:KMH-J1"))
    assert progress.kind == "launch" and progress.state == "done" and progress.percent == 100
    n_assign = session.scalar(
        select(func.count()).select_from(Assignment).where(Assignment.campaign_id == c.id)
    )
    n_tasks = session.scalar(
        select(func.count()).select_from(Task).where(Task.campaign_id == c.id, Task.kind == "contact")
    )
    assert n_assign == 7 and n_tasks == 7

    page = client.get(f"/campaigns/{c.id}").get_data(as_text=True)
    # the campaign starts next January: it is scheduled now, and goes active on its start date
    assert f'id="progress-{progress.id}"' in page and "100%" in page
    state = session.get(Campaign, c.id).state
    assert state == "scheduled"
    assert re.search(r'<g class="state current" data-state="scheduled">', page)
    history = page[page.index('data-testid="history"') :]
    assert re.search(r"<td>王主任</td><td>launch</td><td>draft</td><td>scheduled</td>", history), history

    # on the start date the schedule makes it active: "active" lit in the diagram
    import time_machine

    from campaigns import services

    with time_machine.travel(dt.datetime(year, 1, 1, 9, 0, tzinfo=clock.ZONE), tick=False):
        assert services.run_schedule(session)["started"] == 1
        session.commit()
    session.expire_all()
    page = client.get(f"/campaigns/{c.id}").get_data(as_text=True)
    assert session.get(Campaign, c.id).state == "active"
    assert re.search(r'<g class="state current" data-state="active">', page)
    assert re.search(r'data-testid="campaign-state">\s*active', page)
    history = page[page.index('data-testid="history"') :]
    assert "王主任" in history


def test_journey_1_a_campaign_starting_today_is_active_at_once(client, session, union):
    """Launched on or after its start date: active straight away, lit, 'launched by' the director."""
    u = union
    make_customer(session, u.b1, u.m1, tags=["self_employed"])
    session.commit()
    login(client, u.director_b1)
    today = clock.today()
    r = client.post(
        "/campaigns/editor/new",
        data={
            "kind": "deposit_drive",
            "name": "开门红",
            "code": "KMH-NOW",
            "start": today.isoformat(),
            "end": (today + dt.timedelta(days=90)).isoformat(),
            "branches": ["B01"],
        },
    )
    assert r.status_code == 303
    c = session.scalar(select(Campaign).where(Campaign.code == "KMH-NOW"))
    client.post(_step(c.id, "population"), data={"tags_any": "self_employed"})
    r = client.post(
        _step(c.id, "targets"),
        data={
            "measure": "new_deposits",
            "basis": "daily_average",
            f"b_{u.b1.id}": "200000",
            f"s_{u.m1.id}": "100000",
            f"s_{u.m2.id}": "100000",
            f"split_{u.b1.id}": "by_headcount",
            "action": "save",
        },
    )
    assert r.status_code == 303
    r = client.post(f"/campaigns/editor/{c.id}/launch")
    assert r.status_code == 303
    page = client.get(f"/campaigns/{c.id}").get_data(as_text=True)
    assert re.search(r'<g class="state current" data-state="active">', page)
    rows = re.findall(r"<tr><td[^>]*>[^<]*</td><td>([^<]*)</td><td>([^<]*)</td>", page)
    assert ("王主任", "launch") in [(who.strip(), what.strip()) for who, what in rows], rows
