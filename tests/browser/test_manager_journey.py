"""JOURNEYS 2 and 3 in headless Chromium on a phone-size screen (390×844): a manager signs in with
the real login form, completes a task with a follow-up and claims a result with a photo; a checker
verifies it; the ledger holds the event. A screenshot of each step goes to test-artifacts/."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from werkzeug.serving import make_server

from appraisal.models import LedgerEvent
from config.settings import PROJECT_ROOT
from org.services import hash_password
from tasks.models import Claim, FollowUp, Task
from tests.factories import make_campaign, make_customer
from tests.integration.queue_helpers import make_assignment, make_task

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = PROJECT_ROOT / "test-artifacts" / "manager-journey"
PASSWORD = "field-work-2026"


@pytest.fixture
def live_server(settings) -> Iterator[str]:  # noqa: ANN001
    """The real app (CSRF on) served by werkzeug on a free port in a thread."""
    from web import create_app

    app = create_app({"RATELIMIT_ENABLED": False}, settings=settings)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=5)


@pytest.fixture
def chromium() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium package (.ci/run does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


def _phone(browser) -> object:  # noqa: ANN001
    ctx = browser.new_context(
        viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True, has_touch=True
    )
    return ctx.new_page()


def _login(page, base: str, staff_no: str) -> None:  # noqa: ANN001
    page.goto(f"{base}/login")
    page.fill("input[name=staff_no]", staff_no)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")


def test_manager_completes_a_task_claims_and_checker_verifies(
    session, union, live_server, chromium, tmp_path
):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for staff in (union.m1, union.checker):
        staff.password_hash = hash_password(PASSWORD)
    camp = make_campaign(session, union.director_b1, [union.b1], state="active")
    customer = make_customer(session, union.b1, union.m1, name="张建明", tier="vip", occupation="农民")
    plan = {
        "goal": "move the remittance into a 1-year time deposit",
        "reactions": [{"reaction": "wants cash for the new year", "response": "offer the 6-month product"}],
    }
    a = make_assignment(session, camp, customer, union.m1, plan=plan)
    task = make_task(
        session, union.m1, customer, campaign=camp, assignment=a, title="call about time deposits"
    )
    session.commit()
    base = live_server

    # 1. the manager signs in on her phone and lands on her queue
    page = _phone(chromium)
    _login(page, base, union.m1.staff_no)
    assert page.url.endswith("/queue/")
    assert "张*明" in page.content() and "张建明" not in page.content()
    assert "Today: 1" in page.inner_text("[data-testid=queue-counts]")
    page.screenshot(path=str(ARTIFACTS / "1-queue.png"), full_page=True)

    # 2. complete with a follow-up (the plan is shown before the contact)
    page.click(f"[data-testid=complete-{task.id}]")
    assert "1-year time deposit" in page.inner_text("[data-testid=plan]")
    page.select_option("select[name=channel]", "phone")
    page.fill("textarea[name=content]", "他想过年用现金，介绍了6个月定期，愿意周五来网点")
    page.select_option("select[name=reaction]", "converted")
    page.screenshot(path=str(ARTIFACTS / "2-follow-up.png"), full_page=True)
    page.click("[data-testid=save-follow-up]")
    page.wait_for_load_state("networkidle")
    assert "/queue/claim" in page.url  # a reached result goes straight to the claim form

    # 3. claim the result with a photo of the receipt
    photo = tmp_path / "receipt.png"
    photo.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
    page.select_option("select[name=measure]", "accounts_opened")
    page.fill("input[name=quantity]", "1")
    page.fill("input[name=amount]", "80000")
    page.fill("textarea[name=evidence_text]", "定期存单 No. 0012345")
    page.set_input_files("input[name=evidence_file]", str(photo))
    page.screenshot(path=str(ARTIFACTS / "3-claim.png"), full_page=True)
    page.dblclick("[data-testid=submit-claim]")  # an impatient double tap (CONC-08): one claim
    page.wait_for_url("**/queue/claims")
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(ARTIFACTS / "4-my-claims.png"), full_page=True)

    session.rollback()  # end the read snapshot: see what the server committed
    session.expire_all()
    assert session.get(Task, task.id).state == "done"
    assert session.scalar(select(FollowUp).where(FollowUp.task_id == task.id)).reaction == "converted"
    claim = session.scalars(select(Claim)).one()  # the double tap made one claim
    assert claim.state == "submitted" and claim.evidence_file

    # 4. the checker verifies it
    checker = _phone(chromium)
    _login(checker, base, union.checker.staff_no)
    checker.goto(f"{base}/checks/")
    checker.click(f"[data-testid=claim-{claim.id}] a")
    checker.screenshot(path=str(ARTIFACTS / "5-check.png"), full_page=True)
    checker.click("[data-testid=verify]")
    checker.wait_for_load_state("networkidle")
    checker.screenshot(path=str(ARTIFACTS / "6-verified.png"), full_page=True)

    # 5. the ledger holds the event
    session.rollback()  # end the read snapshot: see what the server committed
    session.expire_all()
    claim = session.get(Claim, claim.id)
    assert claim.state == "verified" and claim.verifier_id == union.checker.id
    event = session.scalar(select(LedgerEvent).where(LedgerEvent.claim_id == claim.id))
    assert event is not None and event.staff_id == union.m1.id and event.measure == "accounts_opened"
    assert str(event.amount) == "80000.00"

    # the manager sees it verified
    page.goto(f"{base}/queue/claims")
    assert "verified" in page.inner_text(f"[data-testid=claim-state-{claim.id}]")
    page.screenshot(path=str(ARTIFACTS / "7-manager-sees-verified.png"), full_page=True)
