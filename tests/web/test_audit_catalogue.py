"""The audit log records sign-out, refused pages and every person's verdict on a claim
(RELIABILITY AUD-01), besides sign-in, reveals, exports and imports tested elsewhere."""

from __future__ import annotations

from sqlalchemy import select

from org.models import AuditLog
from org.services import hash_password
from tasks import claims
from tests.factories import login
from tests.web.test_queue_api import task  # noqa: F401 - fixture


def _rows(session, action):
    session.rollback()
    session.expire_all()
    return list(session.scalars(select(AuditLog).where(AuditLog.action == action).order_by(AuditLog.id)))


def test_sign_out_is_audited(client, session, union):
    union.m1.password_hash = hash_password("a long enough password")
    session.commit()
    client.post("/login", data={"staff_no": union.m1.staff_no, "password": "a long enough password"})
    assert client.post("/logout").status_code == 302
    (row,) = _rows(session, "logout")
    assert row.actor_id == union.m1.id and row.object_id == union.m1.staff_no


def test_a_refused_page_is_audited_with_who_and_where(client, session, union):
    login(client, union.m1)
    assert client.get("/admin/audit").status_code == 403
    (row,) = _rows(session, "access_denied")
    assert row.actor_id == union.m1.id and row.detail["path"] == "/admin/audit"
    assert row.detail["needs"] == ["admin"]


def test_verdicts_on_claims_are_audited_and_so_is_verifying_ones_own(client, session, union, task):  # noqa: F811
    c1 = claims.submit(
        session,
        union.m1.id,
        measure="accounts_opened",
        quantity="1",
        amount="0",
        task_id=task.id,
        customer_id=task.customer_id,
        campaign_id=task.campaign_id,
        evidence_text="r",
    )
    c2 = claims.submit(
        session,
        union.m1.id,
        measure="accounts_opened",
        quantity="1",
        amount="0",
        task_id=task.id,
        customer_id=task.customer_id,
        campaign_id=task.campaign_id,
        evidence_text="r2",
    )
    session.commit()
    claims.verify(session, c1, union.checker.id, note="receipt seen")
    claims.reject(session, c2, union.checker.id, "same phone as another account")
    session.commit()
    (v,) = _rows(session, "claim_verify")
    (r,) = _rows(session, "claim_reject")
    assert (v.actor_id, v.object_id, v.reason) == (union.checker.id, str(c1.id), "receipt seen")
    assert r.reason == "same phone as another account" and r.detail["staff_id"] == union.m1.id
    # the claimant trying to verify their own (a checker too): refused, and the refusal is audited
    from org.services import create_staff

    dual = create_staff(session, branch=union.b1, roles=("manager", "checker"), staff_no="MK09", name="双岗")
    session.commit()
    c3 = claims.submit(
        session, dual.id, measure="accounts_opened", quantity="1", amount="0", evidence_text="r3"
    )
    session.commit()
    login(client, dual)
    r = client.post(f"/checks/{c3.id}/verify", data={})
    assert r.status_code == 403
    denied = _rows(session, "access_denied")
    assert denied and denied[-1].actor_id == dual.id and "own claim" in denied[-1].reason


def test_a_burst_of_refusals_and_the_reveal_cap_alert_the_admins(client, session, union, settings):
    import dataclasses

    from tasks.models import Notification

    login(client, union.m1)
    for _ in range(12):
        assert client.get("/admin/audit").status_code == 403
    session.rollback()
    told = session.scalars(select(Notification).where(Notification.kind == "security")).all()
    assert [n.staff_id for n in told] == [union.admin.id]  # once for the burst
    assert union.m1.staff_no in told[0].text and "refused 10 times" in told[0].text

    # the reveal cap: the 429 tells the admins once that day
    from web import create_app

    app = create_app(
        {"TESTING": True, "WTF_CSRF_ENABLED": False, "RATELIMIT_ENABLED": False},
        settings=dataclasses.replace(settings, reveal_limit_per_day=1),
    )
    from tests.factories import make_customer

    c = make_customer(session, union.b1, union.m1)
    session.commit()
    web = app.test_client()
    login(web, union.m1)
    ok = web.post(f"/customers/{c.id}/reveal", data={"reason": "核对身份信息", "fields": ["phone"]})
    assert ok.status_code == 200
    for _ in range(2):
        assert web.post(f"/customers/{c.id}/reveal", data={"reason": "核对身份信息"}).status_code == 429
    session.rollback()
    cap = session.scalars(select(Notification).where(Notification.text.like("%daily limit%"))).all()
    assert len(cap) == 1 and cap[0].staff_id == union.admin.id
