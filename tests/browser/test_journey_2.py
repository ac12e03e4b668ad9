"""JOURNEY 2 in headless Chromium on a phone (390×844): 李晓燕 signs in with the real login form,
sees "Today: 12, overdue: 2", opens the first task (masked name, suggestion, plan), records the
follow-up that books Friday's branch visit (her director accompanies the key customer), then
claims "time deposit opened, 80 000" with a photo of the receipt. Screenshots of every step go
to test-artifacts/journey-2/."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from config import clock
from config.settings import PROJECT_ROOT
from org.services import hash_password
from tasks.models import Appointment, Claim, FollowUp, Task
from tests.browser.test_manager_journey import chromium, live_server  # noqa: F401 - fixtures
from tests.journeys.test_journey_2_manager_queue import build_queue, next_friday

pytestmark = pytest.mark.browser

ARTIFACTS = PROJECT_ROOT / "test-artifacts" / "journey-2"
PASSWORD = "field-work-2026"


def fresh(session) -> None:  # noqa: ANN001
    """End the read snapshot and forget loaded rows: see what the server committed."""
    session.rollback()
    session.expire_all()


def test_journey_2_on_her_phone(session, union, live_server, chromium, tmp_path):  # noqa: F811
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    u = union
    u.m1.password_hash = hash_password(PASSWORD)
    camp, zhang, a, first = build_queue(session, u)
    ids = {"m1": u.m1.id, "dir": u.director_b1.id, "zhang": zhang.id, "first": first.id}
    session.commit()
    base = live_server

    ctx = chromium.new_context(
        viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True, has_touch=True
    )
    page = ctx.new_page()
    page.goto(f"{base}/login")
    page.fill("input[name=staff_no]", "M0101")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")

    # 8:30 — her queue
    assert page.url.endswith("/queue/")
    counts = page.inner_text("[data-testid=queue-counts]")
    assert "Today: 12" in counts and "Overdue: 2" in counts
    body = page.content()
    assert "张*明" in body and "张建明" not in body
    # nothing wider than the phone
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.screenshot(path=str(ARTIFACTS / "1-queue.png"), full_page=True)

    # the first task: suggestion and follow-up plan
    card = page.locator(f"[data-testid=task-{ids['first']}]")
    assert "Suggested" in card.inner_text()
    card.locator("a.fw-bold").click()
    page.wait_for_load_state("networkidle")
    assert "visit" in page.inner_text("[data-testid=suggestion]").lower()
    plan = page.inner_text("[data-testid=plan]")
    assert "1-year time deposit" in plan and "wants cash for the new year" in plan and "6-month" in plan
    page.screenshot(path=str(ARTIFACTS / "2-task.png"), full_page=True)

    # she calls and records the follow-up; Friday's branch visit is booked
    page.click("[data-testid=complete]")
    page.wait_for_load_state("networkidle")
    friday = next_friday(clock.today())
    page.select_option("select[name=channel]", "phone")
    page.fill("textarea[name=content]", "他想过年用现金；介绍了6个月定期，愿意周五来网点")
    page.select_option("select[name=reaction]", "interested")
    page.fill("input[name=next_step]", "branch visit Friday")
    page.fill("input[name=next_due]", friday.isoformat())
    page.fill("input[name=appointment_at]", f"{friday.isoformat()}T10:00")
    page.screenshot(path=str(ARTIFACTS / "3-follow-up.png"), full_page=True)
    page.click("[data-testid=save-follow-up]")
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(ARTIFACTS / "4-after-follow-up.png"), full_page=True)

    fresh(session)
    assert session.get(Task, ids["first"]).state == "done"
    fu = session.scalar(select(FollowUp).where(FollowUp.task_id == ids["first"]))
    assert (fu.reaction, fu.next_step) == ("interested", "branch visit Friday")
    appt = session.scalar(select(Appointment).where(Appointment.customer_id == ids["zhang"]))
    assert appt.at == dt.datetime.combine(friday, dt.time(10, 0)) and appt.accompanied_by_id == ids["dir"]
    fresh(session)

    page.goto(f"{base}/queue/appointments")
    assert friday.isoformat() in page.content()
    page.screenshot(path=str(ARTIFACTS / "5-appointments.png"), full_page=True)

    # later: the claim with a photo of the receipt
    photo = tmp_path / "receipt.png"
    photo.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
    page.goto(f"{base}/queue/claim?task_id={ids['first']}")
    page.select_option("select[name=measure]", "accounts_opened")
    page.fill("input[name=quantity]", "1")
    page.fill("input[name=amount]", "80000")
    page.fill("textarea[name=evidence_text]", "一年期定期存单 No. 0012345")
    page.set_input_files("input[name=evidence_file]", str(photo))
    page.screenshot(path=str(ARTIFACTS / "6-claim.png"), full_page=True)
    page.click("[data-testid=submit-claim]")
    page.wait_for_load_state("networkidle")
    assert page.url.endswith("/queue/claims")
    page.screenshot(path=str(ARTIFACTS / "7-my-claims.png"), full_page=True)
    fresh(session)
    claim = session.scalar(select(Claim))
    assert (str(claim.amount), claim.customer_id, claim.state) == ("80000.00", ids["zhang"], "submitted")
    assert claim.evidence_file
    fresh(session)
    ctx.close()
