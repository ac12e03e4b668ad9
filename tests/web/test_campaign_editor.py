"""Journey 1 in the campaign editor: a director walks the steps, a manager may not."""

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
from tests.factories import login, make_campaign, make_customer


def step_url(campaign_id: int, step: str) -> str:
    return f"/campaigns/editor/{campaign_id}/edit/{step}"


def field_errors(html: str, name: str) -> str:
    m = re.search(rf'data-field="{name}">(.*?)</div>\s*</div>', html, re.S)
    return m.group(1) if m else ""


def basics(**kw):
    today = clock.today()
    data = {
        "kind": "deposit_drive",
        "name": "开门红",
        "code": "DEP-E-01",
        "start": today.isoformat(),
        "end": (today + dt.timedelta(days=90)).isoformat(),
        "branches": ["B01"],
    }
    data.update(kw)
    return data


def test_director_walks_the_steps_and_launches(client, session, union):
    first, last = last_complete_month(clock.today())
    customers = [make_customer(session, union.b1, union.m1, tags=["self_employed"]) for _ in range(2)]
    customers.append(make_customer(session, union.b1, union.m2, tags=["returning_migrant_worker"]))
    make_customer(session, union.b1, union.m2, tags=["farmer"])
    make_customer(session, union.b2, union.m3, tags=["self_employed"])  # other branch
    session.add(Snapshot(customer_id=customers[0].id, as_of=last, deposit_demand=Decimal(1000000)))
    session.commit()
    login(client, union.director_b1)

    page = client.get("/campaigns/")
    assert b"/campaigns/editor/new" in page.data and b"New campaign" in page.data

    # step 1: every field validated with a message beside it
    r = client.post("/campaigns/editor/new", data=basics(end="2000-01-01", code="bad code", branches=[]))
    assert r.status_code == 422
    html = r.get_data(as_text=True)
    assert "on or after the start" in field_errors(html, "end")
    assert "Letters, digits" in field_errors(html, "code")
    assert "at least one branch" in field_errors(html, "branches")
    assert session.scalar(select(func.count()).select_from(Campaign)) == 0

    r = client.post("/campaigns/editor/new", data=basics())
    assert r.status_code == 303
    c = session.scalar(select(Campaign).where(Campaign.code == "DEP-E-01"))
    assert c.state == "draft" and c.owner_id == union.director_b1.id
    assert [t["kind"] for t in c.task_templates] == ["contact", "follow_up"]
    assert [r["id"] for r in c.rules] == ["dep", "bonus"]  # the kind's defaults
    assert r.headers["Location"].endswith(step_url(c.id, "population"))

    # a second campaign with the same code is refused beside the code
    r = client.post("/campaigns/editor/new", data=basics(name="again"))
    assert r.status_code == 422 and "already used by campaign DEP-E-01" in field_errors(
        r.get_data(as_text=True), "code"
    )

    # step 2: live count (htmx) and save
    r = client.get(
        f"/campaigns/editor/{c.id}/population/count?tags_any=self_employed,returning_migrant_worker"
    )
    assert r.status_code == 200 and "3 customers" in r.get_data(as_text=True)
    r = client.get(f"/campaigns/editor/{c.id}/population/count?tags_any=farmer")
    assert "1 customer" in r.get_data(as_text=True)
    r = client.post(
        step_url(c.id, "population"),
        data={"tags_any": "self_employed, returning_migrant_worker", "age_min": "18"},
    )
    assert r.status_code == 303
    session.commit()
    assert c.population == {
        "customers": {"tags_any": ["self_employed", "returning_migrant_worker"], "age_min": 18}
    }
    r = client.get(step_url(c.id, "population"))
    assert "3 customers" in r.get_data(as_text=True)

    # step 3: the grid; split by headcount fills the staff targets
    grid = {"measure": "new_deposits", "basis": "daily_average", f"b_{union.b1.id}": "2000000"}
    r = client.post(step_url(c.id, "targets"), data=grid | {"action": "split_headcount"})
    html = r.get_data(as_text=True)
    assert r.status_code == 200
    assert re.search(rf'name="s_{union.m1.id}"[^>]*value="1000000.00"', html)
    assert re.search(rf'name="s_{union.m2.id}"[^>]*value="1000000.00"', html)

    # a point-in-time (时点) deposit target is refused with the launch check's reason
    staff_values = {
        f"s_{union.m1.id}": "1000000",
        f"s_{union.m2.id}": "1000000",
        f"split_{union.b1.id}": "by_headcount",
    }
    r = client.post(
        step_url(c.id, "targets"), data=grid | staff_values | {"basis": "point_in_time", "action": "save"}
    )
    assert r.status_code == 422
    reason = field_errors(r.get_data(as_text=True), "basis")
    assert "Refused by the launch check" in reason and "daily averages (日均)" in reason
    session.commit()
    assert c.targets == []

    r = client.post(step_url(c.id, "targets"), data=grid | staff_values | {"action": "save"})
    assert r.status_code == 303
    session.commit()
    assert sorted((t.staff_id or 0, int(t.value)) for t in c.targets) == [
        (0, 2000000),
        (union.m1.id, 1000000),
        (union.m2.id, 1000000),
    ]

    # a negative target is refused beside its cell
    r = client.post(
        step_url(c.id, "targets"), data=grid | staff_values | {f"s_{union.m1.id}": "-5", "action": "save"}
    )
    assert r.status_code == 422 and "Not below 0" in field_errors(
        r.get_data(as_text=True), f"s_{union.m1.id}"
    )

    # step 4: rules with the what-if on last month's data
    r = client.get(step_url(c.id, "rules"))
    html = r.get_data(as_text=True)
    assert "Estimated cost on last month" in html
    # m1: 1 000 000 new daily-average deposits × 2‰ = 2 000, and 100 % of 1 000 000 → 500 bonus
    assert "2,500.00" in html
    assert "rate: 0.002" in html

    r = client.post(
        step_url(c.id, "rules"),
        data={
            "rules": "- {id: x, kind: lottery, measure: new_deposits}",
            "tasks": "- {kind: contact, within_days: 7}",
            "action": "save",
        },
    )
    assert r.status_code == 422
    assert "rules[0].kind" in field_errors(r.get_data(as_text=True), "rules")
    session.commit()
    assert [r["id"] for r in c.rules] == ["dep", "bonus"]  # nothing changed

    rules_yaml = "- {id: dep, kind: percentage, measure: new_deposits, rate: 0.002, cap: 5000}\n"
    r = client.post(
        step_url(c.id, "rules"),
        data={
            "rules": rules_yaml,
            "tasks": "- {kind: contact, within_days: 5}",
            "budget": "1500",
            "action": "save",
        },
    )
    assert r.status_code == 303
    session.commit()
    assert c.budget == Decimal("1500.00") and c.task_templates == [{"kind": "contact", "within_days": 5}]
    html = client.get(step_url(c.id, "rules")).get_data(as_text=True)
    assert "1,500.00" in html and "Before the budget: 2,000.00" in html

    # step 5: review and launch
    r = client.get(step_url(c.id, "review"))
    html = r.get_data(as_text=True)
    assert r.status_code == 200 and "3 customers" in html and "Launch check" in html
    assert "code: DEP-E-01" in html
    r = client.post(f"/campaigns/editor/{c.id}/launch")
    assert r.status_code == 303 and r.headers["Location"].endswith(f"/campaigns/{c.id}")
    session.commit()
    assert c.state == "active"
    assert (
        session.scalar(select(func.count()).select_from(Assignment).where(Assignment.campaign_id == c.id))
        == 3
    )
    assert session.scalar(select(func.count()).select_from(Task).where(Task.campaign_id == c.id)) == 3

    # launched: no more editing; a second launch is refused with the state and the allowed triggers
    r = client.post(step_url(c.id, "basics"), data=basics(name="changed"))
    assert r.status_code == 409 and "only a draft can be edited" in r.get_data(as_text=True)
    r = client.post(f"/campaigns/editor/{c.id}/launch")
    assert r.status_code == 409
    assert "it is active" in r.get_data(as_text=True) and "pause" in r.get_data(as_text=True)


def test_launch_refused_by_the_launch_check_shows_the_reason(client, session, union):
    make_customer(session, union.b1, union.m1)
    c = make_campaign(
        session,
        union.director_b1,
        [union.b1],
        rules=[
            {
                "id": "dep",
                "kind": "percentage",
                "measure": "new_deposits",
                "rate": "0.002",
                "basis": "point_in_time",
            }
        ],
    )
    session.commit()
    login(client, union.director_b1)
    html = client.get(step_url(c.id, "review")).get_data(as_text=True)
    assert 'data-testid="finding-point_in_time_rule"' in html
    r = client.post(f"/campaigns/editor/{c.id}/launch")
    assert r.status_code == 409
    html = r.get_data(as_text=True)
    assert "Launch refused" in html and "point-in-time (时点)" in html
    session.commit()
    assert c.state == "draft"


def test_a_manager_gets_403_and_another_branch_director_404(client, session, union):
    c = make_campaign(session, union.director_b1, [union.b1])
    session.commit()
    login(client, union.m1)
    assert client.get("/campaigns/editor/new").status_code == 403
    assert client.post("/campaigns/editor/new", data=basics()).status_code == 403
    assert client.get(step_url(c.id, "basics")).status_code == 403
    assert client.post(f"/campaigns/editor/{c.id}/launch").status_code == 403
    assert b"/campaigns/editor/new" not in client.get("/campaigns/").data
    login(client, union.director_b2)
    assert client.get(step_url(c.id, "targets")).status_code == 404
    # a branch director cannot reach beyond their branch
    r = client.post("/campaigns/editor/new", data=basics(branches=["B01"]))
    assert r.status_code == 422
    session.commit()
    assert session.scalar(select(func.count()).select_from(Campaign)) == 1


def test_count_is_grouped_like_the_journey(app):
    from web.campaign_editor import format_count

    with app.test_request_context():
        assert format_count(1284) == "1 284 customers"
        assert format_count(1) == "1 customer"


def test_split_by_weight_and_stacked_targets_flagged(client, session, union):
    c = make_campaign(session, union.director_b1, [union.b1], targets=[])
    session.commit()
    login(client, union.director_b1)
    b, m1, m2 = union.b1.id, union.m1.id, union.m2.id
    grid = {
        "measure": "accounts_opened",
        "basis": "daily_average",
        f"b_{b}": "300",
        f"w_{m1}": "2",
        f"w_{m2}": "1",
    }
    r = client.post(step_url(c.id, "targets"), data=grid | {"action": "split_weight"})
    html = r.get_data(as_text=True)
    assert re.search(rf'name="s_{m1}"[^>]*value="200.00"', html) and re.search(
        rf'name="s_{m2}"[^>]*value="100.00"', html
    )
    assert re.search(r'<option selected value="by_weight">|<option value="by_weight" selected', html)

    r = client.post(step_url(c.id, "targets"), data=grid | {f"split_{b}": "by_weight", "action": "save"})
    assert r.status_code == 303, re.findall(r"<li>(.*?)</li>", r.get_data(as_text=True), re.S)
    session.commit()
    (t,) = c.targets
    assert t.split == "by_weight" and {k: Decimal(v) for k, v in t.weights.items()} == {
        "M0101": 2,
        "M0102": 1,
    }

    staff = {f"s_{m1}": "250", f"s_{m2}": "100"}
    r = client.post(step_url(c.id, "targets"), data=grid | staff | {"action": "save"})
    assert r.status_code == 303
    html = client.get(r.headers["Location"]).get_data(as_text=True)
    assert 'data-testid="finding-stacked_targets"' in html
    assert "层层加码" in html and "350" in html and "50 more than its target 300" in html


def test_editor_forms_need_the_csrf_token(csrf_app):
    from config.database import db
    from tests.factories import make_branch, make_staff

    session = db.session()
    director = make_staff(session, make_branch(session, "B01"), ("director",), staff_no="D0101")
    session.commit()
    client = csrf_app.test_client()
    login(client, director)
    r = client.post("/campaigns/editor/new", data=basics())
    assert r.status_code in (400, 422)
    assert session.scalar(select(func.count()).select_from(Campaign)) == 0
    session.rollback()


def test_picking_the_kinds_default_rules(client, session, union):
    c = make_campaign(session, union.director_b1, [union.b1], rules=[])
    session.commit()
    login(client, union.director_b1)
    r = client.post(
        step_url(c.id, "rules"), data={"rules": "", "pick": ["dep", "bonus"], "tasks": "", "action": "pick"}
    )
    html = r.get_data(as_text=True)
    assert r.status_code == 200
    assert "{id: dep, kind: percentage, measure: new_deposits, rate: 0.002, cap: 5000}" in html
    assert "at: 1, amount: 500" in html
    session.commit()
    assert c.rules == []  # picking only fills the editor; saving stores
