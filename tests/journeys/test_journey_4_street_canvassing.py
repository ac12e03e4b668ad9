"""JOURNEY 4 — street canvassing (扫街扫楼), end to end in the web client, for what the product has.

A branch runs a canvassing week over grids G03–G06: the editor's population picks the shops of
those grids; launch gives each manager the shops of whole grids, each with a first "visit" task;
on each visit the manager records the contact and registers a new prospect on the spot; the
dashboard shows the contact rate and the funnel to accounts opened.

The dashboard's per-grid table (and its XLSX) shows the visits done, contacts, conversions and
prospects made in each grid.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import re

import openpyxl
from sqlalchemy import func, select

from campaigns.models import Assignment, Campaign
from config import clock
from config.database import db
from customers.masking import mask_name
from customers.models import Customer
from tasks.models import FollowUp, Task
from tests.factories import login, make_customer


def test_journey_4_canvassing_week_over_four_grids(client, session, union):
    u = union
    grids = ["G03", "G04", "G05", "G06"]
    for g in grids:
        for i in range(3):
            make_customer(session, u.b1, None, type="business", name=f"{g}商户{i}", grid=g)
    make_customer(session, u.b1, None, type="business", name="G07商户", grid="G07")  # outside
    make_customer(session, u.b1, None, type="individual", name="居民", grid="G03")  # not a shop
    session.commit()
    login(client, u.director_b1)
    today = clock.today()
    r = client.post(
        "/campaigns/editor/new",
        data={
            "kind": "street_canvassing",
            "name": "扫街周",
            "code": "SJ-W1",
            "start": today.isoformat(),
            "end": (today + dt.timedelta(days=6)).isoformat(),
            "branches": ["B01"],
        },
    )
    assert r.status_code == 303
    c = session.scalar(select(Campaign).where(Campaign.code == "SJ-W1"))
    assert c.task_templates[0]["kind"] == "visit"
    count = client.get(
        f"/campaigns/editor/{c.id}/population/count?type_in=business&grid_in=G03,G04,G05,G06"
    ).get_data(as_text=True)
    assert "12 customers" in count
    r = client.post(
        f"/campaigns/editor/{c.id}/edit/population",
        data={"type_in": ["business"], "grid_in": "G03, G04, G05, G06"},
    )
    assert r.status_code == 303
    r = client.post(
        f"/campaigns/editor/{c.id}/edit/targets",
        data={
            "measure": "visits",
            "basis": "daily_average",
            f"b_{u.b1.id}": "12",
            f"s_{u.m1.id}": "6",
            f"s_{u.m2.id}": "6",
            f"split_{u.b1.id}": "by_headcount",
            "action": "save",
        },
    )
    assert r.status_code == 303, r.get_data(as_text=True)[-2000:]
    r = client.post(f"/campaigns/editor/{c.id}/launch")
    assert r.status_code == 303
    session.rollback()

    # each manager gets shops, each with a first visit task
    rows = session.execute(
        select(Assignment.staff_id, func.count())
        .where(Assignment.campaign_id == c.id)
        .group_by(Assignment.staff_id)
    ).all()
    assert dict(rows) == {u.m1.id: 6, u.m2.id: 6}
    # … and the shops of one grid all go to one manager, who is told why
    owners = session.execute(
        select(Customer.grid, Assignment.staff_id, Assignment.reason)
        .join(Customer, Customer.id == Assignment.customer_id)
        .where(Assignment.campaign_id == c.id)
    ).all()
    per_grid: dict[str, set[int]] = {}
    for grid, staff_id, reason in owners:
        per_grid.setdefault(grid, set()).add(staff_id)
        assert reason.startswith(f"whole grid ({grid}, "), reason
    assert sorted(per_grid) == grids and all(len(s) == 1 for s in per_grid.values())
    visits = list(session.scalars(select(Task).where(Task.campaign_id == c.id, Task.staff_id == u.m1.id)))
    assert len(visits) == 6 and {t.kind for t in visits} == {"visit"}

    # 李晓燕 visits two shops: records the contact, and at the second registers a new prospect
    db.session.remove()
    login(client, u.m1)
    queue = client.get("/queue/").get_data(as_text=True)
    assert "Today: " in queue
    first, second = sorted(visits, key=lambda t: t.id)[:2]
    r = client.post(
        f"/queue/task/{first.id}/complete",
        data={"channel": "visit", "content": "老板不在，留了宣传单", "reaction": "neutral"},
    )
    assert r.status_code == 303
    r = client.post(
        f"/queue/task/{second.id}/complete",
        data={
            "channel": "visit",
            "content": "店主有兴趣开收款码，隔壁店主也想了解",
            "reaction": "interested",
            "prospect_name": "隔壁王老板",
            "prospect_phone": "13700001234",
        },
    )
    assert r.status_code == 303, r.get_data(as_text=True)[-1500:]
    session.rollback()
    assert session.scalar(select(func.count()).select_from(FollowUp).where(FollowUp.channel == "visit")) == 2
    prospect = session.scalar(select(Customer).where(Customer.name == "隔壁王老板"))
    assert prospect is not None and prospect.lifecycle == "prospect"
    assert prospect.manager_id == u.m1.id and prospect.branch_id == u.b1.id
    assert "canvassing" in (prospect.tags or []) and "SJ-W1" in prospect.tags
    visited_grid = session.scalar(select(Customer.grid).where(Customer.id == second.customer_id))
    assert prospect.grid == visited_grid  # the neighbour lives in the grid being walked

    # the dashboard: contact rate and the funnel (2 of 12 contacted, 1 interested)
    login(client, u.director_b1)
    page = client.get(f"/campaigns/{c.id}/dashboard").get_data(as_text=True)
    rate = re.search(r'data-testid="contact-rate">([^<]*)<', page).group(1)
    assert rate.strip().startswith("16.7"), rate
    charts = [
        json.loads(x.replace("&#34;", '"').replace("&#39;", "'"))
        for x in re.findall(r"data-chart='([^']*)'", page)
    ]
    funnel = next(ch for ch in charts if ch.get("type") in ("bar", "funnel") and "12" in json.dumps(ch))
    assert [12, 2, 1, 0] == [int(v) for v in funnel["data"]["datasets"][0]["data"]][:4]

    # visits per grid: on the page and in the XLSX
    assert "Per grid (扫街扫楼)" in page
    visited = {
        session.scalar(select(Customer.grid).where(Customer.id == t.customer_id)) for t in (first, second)
    }
    r = client.get(f"/campaigns/{c.id}/dashboard/grids.xlsx")
    assert r.status_code == 200
    rows = list(openpyxl.load_workbook(io.BytesIO(r.data)).active.iter_rows(values_only=True))
    by_grid = {row[0]: row for row in rows[1:]}
    assert sorted(by_grid) == grids  # G07 and the resident are not in the campaign
    assert all(by_grid[g][1] == 3 for g in grids)  # three shops each
    assert sum(by_grid[g][2] for g in grids) == 2  # two visits done
    assert sum(by_grid[g][3] for g in grids) == 2  # two contacted
    for g in visited:
        assert by_grid[g][2] >= 1
    assert rows[0][6] == "Prospects made"
    assert {g: by_grid[g][6] for g in grids} == {g: int(g == visited_grid) for g in grids}

    # the prospects can be found by the campaign's code in the customer list
    listing = client.get("/customers/?tag=SJ-W1").get_data(as_text=True)
    assert mask_name("隔壁王老板") in listing and "隔壁王老板" not in listing  # masked in lists
    assert not any(f"{g}商户" in listing for g in grids)  # the shops visited are not prospects
