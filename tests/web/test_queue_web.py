"""The manager's and the checker's pages: queue, follow-up form, fail, snooze, claim, verification."""

from __future__ import annotations

import datetime as dt
import io

from sqlalchemy import func, select

from config import clock
from tasks.models import Claim, FollowUp, Notification, Task
from tests.factories import login, make_campaign, make_customer
from tests.integration.queue_helpers import make_assignment, make_task


def _setup(session, union, **cust):
    camp = make_campaign(session, union.director_b1, [union.b1], state="active")
    c = make_customer(session, union.b1, union.m1, name="张三明", **cust)
    a = make_assignment(
        session,
        camp,
        c,
        union.m1,
        plan={
            "goal": "1-year time deposit",
            "reactions": [{"reaction": "wants cash", "response": "6-month product"}],
        },
    )
    t = make_task(session, union.m1, c, campaign=camp, assignment=a)
    session.commit()
    return camp, c, a, t


def test_home_redirects_a_manager_to_the_queue_with_masked_names_and_plan(client, session, union):
    _, _, _, t = _setup(session, union)
    login(client, union.m1)
    r = client.get("/")
    assert r.status_code == 302 and r.headers["Location"].endswith("/queue/")
    page = client.get("/queue/").get_data(as_text=True)
    assert "张*明" in page and "张三明" not in page
    assert "Today: 1" in page and "1-year time deposit" in page
    detail = client.get(f"/queue/task/{t.id}").get_data(as_text=True)
    assert "6-month product" in detail and "张三明" not in detail


def test_follow_up_form_completes_the_task(client, session, union):
    _, _, _, t = _setup(session, union)
    login(client, union.m1)
    assert client.get(f"/queue/task/{t.id}/complete").status_code == 200
    r = client.post(
        f"/queue/task/{t.id}/complete", data={"channel": "phone", "content": "", "reaction": "interested"}
    )
    assert r.status_code == 422 and b"What was said" in r.data
    assert session.scalar(select(func.count()).select_from(FollowUp)) == 0
    nxt = (clock.today() + dt.timedelta(days=2)).isoformat()
    r = client.post(
        f"/queue/task/{t.id}/complete",
        data={
            "channel": "phone",
            "content": "will come Friday",
            "reaction": "interested",
            "next_step": "branch visit",
            "next_due": nxt,
        },
    )
    assert r.status_code == 303
    session.expire_all()
    assert session.get(Task, t.id).state == "done"
    assert session.scalar(select(func.count()).select_from(Task).where(Task.source == "follow_up")) == 1
    # completing twice: 409 with the state named
    r = client.post(
        f"/queue/task/{t.id}/complete", data={"channel": "phone", "content": "again", "reaction": "neutral"}
    )
    assert r.status_code == 409 and b"it is done" in r.data


def test_fail_needs_a_reason_and_snooze_refuses_the_past(client, session, union):
    _, _, _, t = _setup(session, union)
    login(client, union.m1)
    r = client.post(
        f"/queue/task/{t.id}/snooze", data={"until": clock.today().isoformat()}, follow_redirects=True
    )
    assert b"is not in the future" in r.data
    session.expire_all()
    assert session.get(Task, t.id).state == "open"
    r = client.post(f"/queue/task/{t.id}/fail", data={"reason": ""}, follow_redirects=True)
    assert b"A reason is required" in r.data
    r = client.post(f"/queue/task/{t.id}/fail", data={"reason": "moved to the city"})
    assert r.status_code == 303
    session.expire_all()
    assert session.get(Task, t.id).failed_reason == "moved to the city"


def test_another_managers_task_is_404(client, session, union):
    _, _, _, t = _setup(session, union)
    login(client, union.m2)
    assert client.get(f"/queue/task/{t.id}").status_code == 404
    assert client.post(f"/queue/task/{t.id}/start").status_code == 404


def test_do_not_contact_start_shows_a_clear_message(client, session, union):
    _, _, _, t = _setup(session, union, do_not_contact=True)
    login(client, union.m1)
    r = client.post(f"/queue/task/{t.id}/start")
    assert r.status_code == 409 and b"do-not-contact" in r.data


def test_claim_with_photo_and_checker_verifies(client, session, union, settings):
    _, _, _, t = _setup(session, union)
    login(client, union.m1)
    r = client.post(
        "/queue/claim",
        data={
            "task_id": t.id,
            "measure": "accounts_opened",
            "quantity": "1",
            "amount": "-3",
            "evidence_text": "x",
        },
    )
    assert r.status_code == 422 and b"negative" in r.data
    r = client.post(
        "/queue/claim",
        data={
            "task_id": t.id,
            "measure": "accounts_opened",
            "quantity": "1",
            "amount": "abc",
            "evidence_text": "x",
        },
    )
    assert r.status_code == 422 and b"not a number" in r.data
    r = client.post(
        "/queue/claim",
        data={
            "task_id": t.id,
            "measure": "accounts_opened",
            "quantity": "1",
            "amount": "0",
            "evidence_text": "receipt 9",
            "evidence_file": (io.BytesIO(b"\x89PNG fake"), "receipt.png"),
        },
        content_type="multipart/form-data",
    )
    assert r.status_code == 303
    claim = session.scalar(select(Claim))
    assert (
        claim.evidence_file.startswith("claim-")
        and (settings.instance_dir / "uploads" / claim.evidence_file).exists()
    )
    assert claim.campaign_id == t.campaign_id and claim.customer_id == t.customer_id
    login(client, union.checker)
    page = client.get("/checks/").get_data(as_text=True)
    assert f"#{claim.id}" in page
    assert client.get(f"/checks/{claim.id}/evidence").data == b"\x89PNG fake"
    r = client.post(f"/checks/{claim.id}/reject", data={"reason": ""}, follow_redirects=True)
    assert b"a reason is required" in r.data
    r = client.post(f"/checks/{claim.id}/verify", data={})
    assert r.status_code == 303
    session.expire_all()
    assert session.get(Claim, claim.id).state == "verified"
    login(client, union.m1)
    assert b"verified" in client.get("/queue/claims").data
    assert (
        session.scalar(
            select(func.count()).select_from(Notification).where(Notification.staff_id == union.m1.id)
        )
        == 1
    )


def test_checker_cannot_verify_own_claim_and_other_branch_is_404(client, session, union, factories):
    from org.services import create_staff
    from tasks import claims

    dual = create_staff(session, branch=union.b1, roles=("manager", "checker"), staff_no="MK01", name="双岗")
    session.commit()
    c = claims.submit(session, dual.id, measure="accounts_opened", evidence_text="r")
    session.commit()
    login(client, dual)
    r = client.post(f"/checks/{c.id}/verify", data={})
    assert r.status_code == 403 and b"your own claim" in r.data
    assert b"your own claim" in client.get(f"/checks/{c.id}").data
    # a checker of another branch cannot even see it
    other = create_staff(session, branch=union.b2, roles=("checker",), staff_no="K0201", name="二社复核")
    session.commit()
    login(client, other)
    assert client.get(f"/checks/{c.id}").status_code == 404


def test_failure_report_and_notifications_page(client, session, union):
    _, c, _, t = _setup(session, union)
    from tasks import notify, services

    services.fail(session, t, union.m1.id, "rival bank")
    notify.notify(session, union.m1.id, "due_soon", "2 tasks due tomorrow", "/queue")
    session.commit()
    login(client, union.director_b1)
    assert b"rival bank" in client.get("/queue/report/failures").data
    assert client.get("/queue/overdue").status_code == 200
    login(client, union.m1)
    page = client.get("/queue/notifications")
    assert b"2 tasks due tomorrow" in page.data
    assert b'data-testid="bell-count">1<' in client.get("/queue/").data
    client.post("/queue/notifications", data={})
    assert notify.unread_count(session, union.m1.id) == 0


def test_appointments_page_cancels_and_marks_missed_with_csrf_and_scope(client, session, union, monkeypatch):
    from tasks import services
    from tasks.models import Appointment

    cust = make_customer(session, union.b1, union.m1)
    session.commit()
    soon = (clock.now() + dt.timedelta(hours=2)).replace(second=0, microsecond=0)
    a1 = services.book_appointment(session, union.m1.id, cust, soon, "sign the payroll agreement")
    a2 = services.book_appointment(session, union.m1.id, cust, soon + dt.timedelta(days=1), "second visit")
    session.commit()
    ids = (a1.id, a2.id)
    login(client, union.m1)
    page = client.get("/queue/appointments").get_data(as_text=True)
    assert 'data-testid="cancel-appointment"' in page
    assert 'data-testid="miss-appointment"' not in page  # not before its time
    # a cancel without a reason changes nothing
    r = client.post(f"/queue/appointments/{ids[0]}/cancel", data={"reason": ""}, follow_redirects=True)
    assert "A reason is required." in r.get_data(as_text=True)
    session.expire_all()
    assert session.get(Appointment, ids[0]).state == "booked"
    r = client.post(
        f"/queue/appointments/{ids[0]}/cancel", data={"reason": "客户出差"}, follow_redirects=True
    )
    assert "Appointment cancelled" in r.get_data(as_text=True)
    session.expire_all()
    assert session.get(Appointment, ids[0]).state == "cancelled"
    # after its time, the second one can be marked missed
    monkeypatch.setattr(clock, "now", lambda: soon + dt.timedelta(days=1, hours=1))
    page = client.get("/queue/appointments").get_data(as_text=True)
    assert 'data-testid="miss-appointment"' in page
    r = client.post(f"/queue/appointments/{ids[1]}/miss", data={"note": ""}, follow_redirects=True)
    assert "call to rebook" in r.get_data(as_text=True)
    session.expire_all()
    assert session.get(Appointment, ids[1]).state == "no_show"
    # marking it again: 409 naming the state
    r = client.post(f"/queue/appointments/{ids[1]}/miss", data={"note": ""})
    assert r.status_code == 409 and "no_show" in r.get_data(as_text=True)
    # another manager: 404, nothing changed
    login(client, union.m2)
    assert client.post(f"/queue/appointments/{ids[1]}/cancel", data={"reason": "x"}).status_code == 404


def test_a_double_tap_on_claim_makes_one_claim(client, session, union):
    """CONC-08: the claim form carries a one-time token; a second POST of the same rendering makes
    nothing and lands where the first went; a refused one can be corrected and sent again."""
    import re

    _, _, _, t = _setup(session, union)
    login(client, union.m1)
    page = client.get(f"/queue/claim?task_id={t.id}").get_data(as_text=True)
    token = re.search(r'name="once" type="hidden" value="([0-9a-f]+)"', page).group(1)
    other = client.get(f"/queue/claim?task_id={t.id}").get_data(as_text=True)
    assert token not in other  # a new token per rendering
    data = {
        "task_id": t.id,
        "once": token,
        "measure": "accounts_opened",
        "quantity": "1",
        "evidence_text": "r",
    }
    r = client.post("/queue/claim", data={**data, "amount": "-1"})
    assert r.status_code == 422  # refused: the token is free again
    first = client.post("/queue/claim", data={**data, "amount": "0"})
    second = client.post("/queue/claim", data={**data, "amount": "0"})
    assert first.status_code == second.status_code == 303
    assert second.headers["Location"] == first.headers["Location"]
    assert session.scalar(select(func.count()).select_from(Claim)) == 1
    page = client.get(second.headers["Location"]).get_data(as_text=True)
    assert "already submitted" in page


def test_card_numbers_and_passwords_are_refused_in_notes(client, session, union):
    """PII-02: a follow-up, a failure reason or a claim's evidence that carries a password, a
    verification code or a card number is refused with the field named; nothing is stored."""
    _, _, _, t = _setup(session, union)
    login(client, union.m1)
    r = client.post(
        f"/queue/task/{t.id}/complete",
        data={"channel": "phone", "content": "客户告诉我密码是 661234，让我帮他查", "reaction": "neutral"},
    )
    page = r.get_data(as_text=True)
    assert r.status_code == 422
    assert "content: this text seems to contain a password, PIN or verification code" in page
    r = client.post(
        f"/queue/task/{t.id}/fail", data={"reason": "卡 4111 1111 1111 1111 被冻结"}, follow_redirects=True
    )
    assert b"bank card number" in r.data
    session.expire_all()
    assert session.get(Task, t.id).state == "open"
    assert session.scalar(select(func.count()).select_from(FollowUp)) == 0
    r = client.post(
        "/queue/claim",
        data={
            "task_id": t.id,
            "measure": "accounts_opened",
            "quantity": "1",
            "amount": "0",
            "evidence_text": "短信验证码 882311",
        },
    )
    assert r.status_code == 422 and session.scalar(select(func.count()).select_from(Claim)) == 0
