"""JOURNEY 1 in headless Chromium: 王主任 signs in with the real login form and walks the campaign
editor — basics, population with its live count (htmx), targets split by headcount, the
point-in-time (时点) target refused with its reason, the kind's default rules and the what-if —
then launches; the campaign page shows the job's progress, the diagram with its state lit and the
history "launch" by 王主任. Screenshots of every step go to test-artifacts/journey-1/."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from campaigns.launch_check import last_complete_month
from campaigns.models import Assignment, Campaign
from config import clock
from config.settings import PROJECT_ROOT
from customers.models import Snapshot
from org.services import hash_password
from tests.browser.test_manager_journey import chromium, live_server  # noqa: F401 - fixtures
from tests.factories import make_customer, make_staff

pytestmark = pytest.mark.browser

ARTIFACTS = PROJECT_ROOT / "test-artifacts" / "journey-1"
PASSWORD = "director-2026"


def fresh(session) -> None:  # noqa: ANN001
    session.rollback()
    session.expire_all()


def test_journey_1_in_the_browser(session, union, live_server, chromium):  # noqa: F811
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    u = union
    u.director_b1.password_hash = hash_password(PASSWORD)
    m4 = make_staff(session, u.b1, staff_no="M0103", name="孙红")
    m5 = make_staff(session, u.b1, staff_no="M0104", name="周强")
    managers = [u.m1, u.m2, m4, m5]
    customers = [
        make_customer(
            session, u.b1, managers[i % 4], tags=["returning_migrant_worker" if i % 2 else "self_employed"]
        )
        for i in range(9)
    ]
    make_customer(session, u.b1, u.m1, tags=["farmer"])
    _first, last = last_complete_month(clock.today())
    session.add(Snapshot(customer_id=customers[0].id, as_of=last, deposit_demand=Decimal(1_000_000)))
    ids = {"b1": u.b1.id, "managers": [m.id for m in managers]}
    session.commit()
    base = live_server

    ctx = chromium.new_context(viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    page.on("dialog", lambda d: d.accept())  # the "Launch this campaign now?" confirmation
    page.goto(f"{base}/login")
    page.fill("input[name=staff_no]", "D0101")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")

    # Campaigns → New
    page.goto(f"{base}/campaigns/")
    page.click("a[href$='/campaigns/editor/new']")
    page.wait_for_load_state("networkidle")
    year = clock.today().year + 1
    page.select_option("select[name=kind]", "deposit_drive")
    page.fill("input[name=name]", "开门红")
    page.fill("input[name=code]", "KMH-B1")
    page.fill("input[name=start]", dt.date(year, 1, 1).isoformat())
    page.fill("input[name=end]", dt.date(year, 3, 31).isoformat())
    page.check("input[name=branches][value=B01]")
    page.screenshot(path=str(ARTIFACTS / "1-basics.png"), full_page=True)
    page.click("button:has-text('Save and go on')")
    page.wait_for_load_state("networkidle")
    assert "/edit/population" in page.url

    # population: the live count as she types
    page.fill("input[name=tags_any]", "returning_migrant_worker, self_employed")
    page.wait_for_function(
        "document.querySelector('#population-count') && "
        "document.querySelector('#population-count').innerText.includes('9 customers')",
        timeout=10_000,
    )
    page.screenshot(path=str(ARTIFACTS / "2-population.png"), full_page=True)
    page.click("button:has-text('Save and go on')")
    page.wait_for_load_state("networkidle")
    assert "/edit/targets" in page.url

    # targets: the branch's 日均 target split by headcount
    page.fill(f"input[name=b_{ids['b1']}]", "4000000")
    page.click("button[value=split_headcount]")
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(ARTIFACTS / "3-targets-split.png"), full_page=True)
    for sid in ids["managers"]:
        assert page.input_value(f"input[name=s_{sid}]") == "1000000.00"
    page.screenshot(path=str(ARTIFACTS / "3-targets-split.png"), full_page=True)
    # a point-in-time target: refused with the reason
    page.select_option("select[name=basis]", "point_in_time")
    page.click("button[value=save]")
    page.wait_for_load_state("networkidle")
    reason = page.inner_text("[data-field=basis]")
    assert "Refused by the launch check" in reason and "daily averages (日均)" in reason
    page.screenshot(path=str(ARTIFACTS / "4-point-in-time-refused.png"), full_page=True)
    page.select_option("select[name=basis]", "daily_average")
    page.click("button[value=save]")
    page.wait_for_load_state("networkidle")
    assert page.locator("[data-field=basis]").count() == 0  # saved: no message any more

    # rules: the kind's defaults picked; the what-if on last month's data
    page.goto(page.url.split("/edit/")[0] + "/edit/rules")
    page.fill("textarea[name=rules]", "")
    page.check("input[name=pick][value=dep]")
    page.check("input[name=pick][value=bonus]")
    page.click("button[value=pick]")
    page.wait_for_load_state("networkidle")
    rules = page.input_value("textarea[name=rules]")
    assert "rate: 0.002" in rules and "cap: 5000" in rules and "amount: 500" in rules
    page.click("button[value=save]")
    page.wait_for_load_state("networkidle")
    page.goto(page.url.split("/edit/")[0] + "/edit/rules")
    body = page.inner_text("body")
    assert "Estimated cost on last month" in body and "2,500.00" in body
    page.screenshot(path=str(ARTIFACTS / "5-rules-what-if.png"), full_page=True)

    # review and launch
    page.goto(page.url.split("/edit/")[0] + "/edit/review")
    assert "9 customers" in page.inner_text("body")
    page.screenshot(path=str(ARTIFACTS / "6-review.png"), full_page=True)
    page.click("button:has-text('Launch')")
    page.wait_for_load_state("networkidle")
    assert "/campaigns/" in page.url and "/editor/" not in page.url
    page.wait_for_function(
        "document.querySelector('[role=progressbar]') && "
        "document.querySelector('[role=progressbar]').getAttribute('aria-valuenow') === '100'",
        timeout=20_000,
    )
    page.screenshot(path=str(ARTIFACTS / "7-launched.png"), full_page=True)
    lit = page.locator("svg g.state.current")
    assert lit.count() == 1 and lit.get_attribute("data-state") == "scheduled"  # starts next January
    history = page.inner_text("[data-testid=history]")
    assert "王主任" in history and "launch" in history

    fresh(session)
    c = session.scalar(select(Campaign).where(Campaign.code == "KMH-B1"))
    assert c.state == "scheduled"
    assert (
        session.scalar(select(func.count()).select_from(Assignment).where(Assignment.campaign_id == c.id))
        == 9
    )
    fresh(session)
    ctx.close()
