"""Two-step sign-in (RELIABILITY AUTH-05): enrol with an authenticator app, then every sign-in
needs a current code; a code works once; wrong codes lock like wrong passwords; required mode
makes everyone enrol; an admin resets a lost phone."""

from __future__ import annotations

import dataclasses
import re
import time

import pyotp
import pytest
from sqlalchemy import select

from org import mfa
from org.models import AuditLog, Staff
from org.services import hash_password

PASSWORD = "correct horse battery"


def _password_login(client, staff):
    return client.post("/login", data={"staff_no": staff.staff_no, "password": PASSWORD})


def _key(page: str) -> str:
    return re.search(r'data-testid="mfa-key">([A-Z2-7 ]+)<', page).group(1).replace(" ", "")


def _actions(session) -> list[str]:
    session.expire_all()
    return [a for (a,) in session.execute(select(AuditLog.action).order_by(AuditLog.id))]


@pytest.fixture
def manager(session, union):
    union.m1.password_hash = hash_password(PASSWORD)
    session.commit()
    return union.m1


def test_enrol_then_every_sign_in_needs_a_fresh_code(client, session, manager):
    assert _password_login(client, manager).status_code == 302  # no second step yet
    page = client.get("/account/security").get_data(as_text=True)
    assert "Two-step sign-in is off" in page and "<svg" in page
    secret = _key(page)
    r = client.post("/account/security", data={"action": "enable", "code": "000000"})
    assert r.status_code == 422
    r = client.post("/account/security", data={"action": "enable", "code": pyotp.TOTP(secret).now()})
    assert r.status_code == 303
    session.expire_all()
    assert session.get(Staff, manager.id).totp_secret == secret
    client = client.application.test_client()  # another browser

    # the password alone no longer signs in: it leads to the code step
    r = _password_login(client, manager)
    assert r.status_code == 302 and r.headers["Location"].endswith("/login/code")
    assert client.get("/queue/").status_code == 302  # not signed in yet
    r = client.post("/login/code", data={"code": "123456"})
    assert r.status_code == 401 and "wrong, expired or already used" in r.get_data(as_text=True)
    code = pyotp.TOTP(secret).at(time.time() + mfa.STEP)  # the next step's code (one step of drift)
    r = client.post("/login/code", data={"code": code})
    assert r.status_code == 302 and client.get("/queue/").status_code == 200
    assert _actions(session)[-3:] == ["login", "mfa_failed", "mfa_ok"]

    # the same code again (replay): refused
    client = client.application.test_client()
    _password_login(client, manager)
    r = client.post("/login/code", data={"code": code})
    assert r.status_code == 401


def test_wrong_codes_lock_the_account_like_wrong_passwords(client, session, manager):
    manager.totp_secret = pyotp.random_base32()
    session.commit()
    _password_login(client, manager)
    for _ in range(5):
        client.post("/login/code", data={"code": "000000"})
    session.expire_all()
    assert session.get(Staff, manager.id).locked_until is not None
    r = _password_login(client, manager)
    assert r.status_code == 401 and "Too many failed logins" in r.get_data(as_text=True)


def test_the_code_step_expires_and_cannot_be_skipped(client, session, manager):
    manager.totp_secret = pyotp.random_base32()
    session.commit()
    r = client.post("/login/code", data={"code": pyotp.TOTP(manager.totp_secret).now()})
    assert r.status_code == 302 and r.headers["Location"].endswith("/login")  # no password step
    _password_login(client, manager)
    with client.session_transaction() as s:
        s["mfa_pending"] = {**s["mfa_pending"], "at": time.time() - 600}
    r = client.post("/login/code", data={"code": pyotp.TOTP(manager.totp_secret).now()})
    assert r.headers["Location"].endswith("/login")
    assert client.get("/queue/").status_code == 302


def test_required_mode_makes_everyone_enrol_and_forbids_turning_it_off(settings, session, manager):
    from web import create_app

    app = create_app(
        {"TESTING": True, "WTF_CSRF_ENABLED": False, "RATELIMIT_ENABLED": False},
        settings=dataclasses.replace(settings, mfa_required=True),
    )
    client = app.test_client()
    r = _password_login(client, manager)
    assert r.headers["Location"].endswith("/login/enrol")
    page = client.get("/login/enrol").get_data(as_text=True)
    assert "required" in page and "<svg" in page
    secret = _key(page)
    assert client.get("/queue/").status_code == 302
    r = client.post("/login/enrol", data={"code": pyotp.TOTP(secret).now()})
    assert r.status_code == 302 and client.get("/queue/").status_code == 200
    r = client.post("/account/security", data={"action": "disable", "code": "000000"})
    assert r.status_code == 409 and "required" in r.get_data(as_text=True)
    session.expire_all()
    assert session.get(Staff, manager.id).totp_secret == secret
    assert "mfa_enrolled" in _actions(session)


def test_admin_resets_a_lost_phone(runner, session, manager):
    manager.totp_secret = pyotp.random_base32()
    epoch = manager.session_epoch
    session.commit()
    r = runner.invoke(args=["users", "mfa-reset", manager.staff_no, "--reason", "lost phone, ticket 7"])
    assert r.exit_code == 0, r.output
    session.expire_all()
    staff = session.get(Staff, manager.id)
    assert staff.totp_secret is None and staff.session_epoch == epoch + 1
    assert _actions(session)[-1] == "mfa_reset"
    r = runner.invoke(args=["users", "mfa-reset", "NOPE", "--reason", "x"])
    assert r.exit_code == 2 and "no staff" in r.output


def test_codes_match_one_step_either_side_only():
    secret = pyotp.random_base32()
    now = 1_800_000_000.0
    totp = pyotp.TOTP(secret)
    step = int(now // mfa.STEP)
    assert mfa.matching_step(secret, totp.at(now), now) == step
    assert mfa.matching_step(secret, totp.at(now - 30), now) == step - 1
    assert mfa.matching_step(secret, totp.at(now + 30), now) == step + 1
    assert mfa.matching_step(secret, totp.at(now + 90), now) is None
    assert mfa.matching_step(secret, "12 34 5", now) is None
