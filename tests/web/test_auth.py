"""Sign-in through the real form with CSRF on: argon2 passwords, a message that does not reveal
whether an account exists, lockout, logout that kills old cookies, CSRF on every form, and the
language switch kept on the profile."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from campaigns.models import Campaign
from config.database import Base
from org.models import AuditLog, Staff
from org.services import MAX_FAILED_LOGINS, hash_password
from tests.factories import make_campaign

PASSWORD = "Correct-Horse-9"
TOKEN = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


@pytest.fixture(autouse=True)
def _close_test_session(session):  # noqa: ANN001, ANN202
    """Requests to ``csrf_app`` run in their own app context, whose teardown takes the scoped
    session away from this test; close the test's session so no transaction stays open (on
    PostgreSQL an idle transaction would block the per-test TRUNCATE)."""
    yield
    session.close()


@pytest.fixture
def web(csrf_app):  # noqa: ANN001, ANN201
    return csrf_app.test_client()


@pytest.fixture
def director(session, union) -> Staff:  # noqa: ANN001
    staff = union.director_b1
    staff.password_hash = hash_password(PASSWORD)
    session.commit()
    return staff


def csrf_token(client, path: str = "/login") -> str:  # noqa: ANN001
    page = client.get(path)
    assert page.status_code == 200, (path, page.status_code)
    match = TOKEN.search(page.get_data(as_text=True))
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def sign_in(client, staff_no: str, password: str):  # noqa: ANN001, ANN201
    token = csrf_token(client)
    return client.post("/login", data={"staff_no": staff_no, "password": password, "csrf_token": token})


def flash_text(response) -> str:  # noqa: ANN001
    return response.get_data(as_text=True)


def test_password_is_an_argon2id_hash(director: Staff) -> None:
    assert director.password_hash.startswith("$argon2id$")
    assert PASSWORD not in director.password_hash


def test_login_through_the_form(web, director, session) -> None:  # noqa: ANN001
    r = sign_in(web, director.staff_no, PASSWORD)
    assert r.status_code == 302
    assert web.get("/campaigns/").status_code == 200
    assert session.scalar(select(func.count(AuditLog.id)).where(AuditLog.action == "login")) == 1


def test_login_without_csrf_token_is_refused(web, director) -> None:  # noqa: ANN001
    r = web.post("/login", data={"staff_no": director.staff_no, "password": PASSWORD})
    assert r.status_code == 400
    assert web.get("/campaigns/").status_code == 302  # still signed out


def test_wrong_password_and_unknown_account_look_the_same(web, director) -> None:  # noqa: ANN001
    wrong = sign_in(web, director.staff_no, "not-the-password")
    unknown = sign_in(web, "NOBODY99", "not-the-password")
    assert wrong.status_code == unknown.status_code == 401
    for r in (wrong, unknown):
        text = flash_text(r)
        assert "Wrong staff number or password" in text
        assert "does not exist" not in text and "unknown" not in text.lower()
    assert web.get("/campaigns/").status_code == 302


def test_lockout_after_five_failures(web, director, session) -> None:  # noqa: ANN001
    assert MAX_FAILED_LOGINS == 5
    for _ in range(5):
        assert sign_in(web, director.staff_no, "bad guess").status_code == 401
    # now even the right password is refused, with a message that says so
    r = sign_in(web, director.staff_no, PASSWORD)
    assert r.status_code == 401
    assert "Too many failed logins" in flash_text(r)
    assert web.get("/campaigns/").status_code == 302
    session.rollback()  # end the test session's read snapshot
    session.expire_all()
    assert session.get(Staff, director.id).locked_until is not None


def test_four_failures_then_success_resets_the_count(web, director, session) -> None:  # noqa: ANN001
    for _ in range(4):
        sign_in(web, director.staff_no, "bad guess")
    assert sign_in(web, director.staff_no, PASSWORD).status_code == 302
    session.rollback()  # end the test session's read snapshot
    session.expire_all()
    assert session.get(Staff, director.id).failed_logins == 0


def test_logout_invalidates_the_old_cookie(csrf_app, director) -> None:  # noqa: ANN001
    web = csrf_app.test_client()
    assert sign_in(web, director.staff_no, PASSWORD).status_code == 302
    cookie = web.get_cookie("session")
    assert cookie is not None
    old_value = cookie.value

    token = csrf_token(web, "/campaigns/")
    assert web.post("/logout", data={"csrf_token": token}).status_code == 302
    assert web.get("/campaigns/").status_code == 302

    # replaying the cookie from before the logout on another client: back to the login page
    thief = csrf_app.test_client()
    thief.set_cookie("session", old_value)
    r = thief.get("/campaigns/")
    assert r.status_code == 302 and "/login" in r.headers["Location"]


def test_logout_needs_a_csrf_token(web, director) -> None:  # noqa: ANN001
    sign_in(web, director.staff_no, PASSWORD)
    assert web.post("/logout").status_code == 400
    assert web.get("/campaigns/").status_code == 200  # still signed in


def _row_counts(session) -> dict[str, int]:  # noqa: ANN001
    session.rollback()
    return {t.name: session.scalar(select(func.count()).select_from(t)) for t in Base.metadata.sorted_tables}


def _fill(rule: str, values: dict[str, object]) -> str:
    return re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", lambda m: str(values[m.group(1)]), rule)


def test_every_post_form_without_csrf_token_is_400_and_changes_nothing(csrf_app, session, union) -> None:  # noqa: ANN001
    admin = union.admin
    admin.password_hash = hash_password(PASSWORD)
    campaign = make_campaign(session, union.director, [union.b1], state="active")
    session.commit()
    web = csrf_app.test_client()
    assert sign_in(web, admin.staff_no, PASSWORD).status_code == 302
    before = _row_counts(session)

    rules = [
        r
        for r in csrf_app.url_map.iter_rules()
        if "POST" in (r.methods or ()) and not r.rule.startswith("/api/") and r.endpoint != "static"
    ]
    assert {"auth.login", "auth.logout", "main.set_language", "campaigns.action"} <= {
        r.endpoint for r in rules
    }
    for rule in rules:
        url = _fill(rule.rule, {arg: ("x" if arg == "step" else campaign.id) for arg in rule.arguments})
        r = web.post(url, data={"action": "pause", "reason": "no token", "code": "en", "name": "x"})
        assert r.status_code == 400, f"{rule.endpoint} {url} answered {r.status_code} without a CSRF token"

    assert _row_counts(session) == before
    session.rollback()  # end the test session's read snapshot
    session.expire_all()
    assert session.get(Campaign, campaign.id).state == "active"
    assert web.get("/campaigns/").status_code == 200  # the sign-in survived (logout was refused too)


def test_language_switch_is_kept_on_the_profile(csrf_app, director, session) -> None:  # noqa: ANN001
    web = csrf_app.test_client()
    sign_in(web, director.staff_no, PASSWORD)
    token = csrf_token(web, "/campaigns/")

    r = web.post("/lang", data={"code": "zh_CN", "csrf_token": token}, headers={"Referer": "/campaigns/"})
    assert r.status_code == 302
    session.rollback()  # end the test session's read snapshot
    session.expire_all()
    assert session.get(Staff, director.id).locale == "zh_CN"

    r = web.post("/lang", data={"code": "en", "csrf_token": token})
    session.rollback()  # end the test session's read snapshot
    session.expire_all()
    assert session.get(Staff, director.id).locale == "en"
    page = web.get("/campaigns/", headers={"Accept-Language": "zh-CN"}).get_data(as_text=True)
    assert '<html lang="en">' in page and 'value="zh_CN">中文</button>' in page

    # a new device: after signing in, the profile's choice wins over the browser's
    other = csrf_app.test_client()
    sign_in(other, director.staff_no, PASSWORD)
    page = other.get("/campaigns/", headers={"Accept-Language": "zh-CN"}).get_data(as_text=True)
    assert '<html lang="en">' in page


def test_locale_chosen_for_the_request_follows_the_profile(csrf_app, director, session) -> None:  # noqa: ANN001
    from flask import request_finished
    from flask_babel import get_locale

    web = csrf_app.test_client()
    sign_in(web, director.staff_no, PASSWORD)
    web.post("/lang", data={"code": "zh_CN", "csrf_token": csrf_token(web, "/campaigns/")})
    seen: list[str] = []

    def spy(sender, response, **extra):  # noqa: ANN001, ANN003, ANN202
        locale = get_locale()
        seen.append(f"{locale.language}_{locale.territory}")

    with request_finished.connected_to(spy, csrf_app):
        web.get("/campaigns/", headers={"Accept-Language": "en"})
    assert seen == ["zh_CN"]


def test_chinese_pages_render_as_chinese(csrf_app, director, session) -> None:  # noqa: ANN001
    web = csrf_app.test_client()
    sign_in(web, director.staff_no, PASSWORD)
    web.post("/lang", data={"code": "zh_CN", "csrf_token": csrf_token(web, "/campaigns/")})
    page = web.get("/campaigns/", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert '<html lang="zh-CN">' in page
    assert 'value="en">English</button>' in page  # the switch offers the other language


def test_unknown_language_is_ignored(csrf_app, director, session) -> None:  # noqa: ANN001
    web = csrf_app.test_client()
    sign_in(web, director.staff_no, PASSWORD)
    token = csrf_token(web, "/campaigns/")
    web.post("/lang", data={"code": "fr", "csrf_token": token})
    session.rollback()  # end the test session's read snapshot
    session.expire_all()
    assert session.get(Staff, director.id).locale is None


def test_signed_out_language_choice_lives_in_the_session(web) -> None:  # noqa: ANN001
    token = csrf_token(web)
    web.post("/lang", data={"code": "en", "csrf_token": token})
    assert '<html lang="en">' in web.get("/login", headers={"Accept-Language": "zh-CN"}).get_data(
        as_text=True
    )
    with web.session_transaction() as sess:
        assert sess["lang"] == "en"
    web.post("/lang", data={"code": "zh_CN", "csrf_token": csrf_token(web)})
    with web.session_transaction() as sess:
        assert sess["lang"] == "zh_CN"
