"""AUTH-11: the client's address comes from X-Forwarded-For only behind the configured number of
trusted proxies; otherwise the header is ignored and cannot be spoofed."""

from __future__ import annotations

import dataclasses

from sqlalchemy import select

from org.models import AuditLog
from org.services import hash_password


def _login_ip(settings, session, union, hops: int) -> str:
    from web import create_app

    app = create_app(
        {"TESTING": True, "WTF_CSRF_ENABLED": False, "RATELIMIT_ENABLED": False},
        settings=dataclasses.replace(settings, proxy_hops=hops),
    )
    union.m1.password_hash = hash_password("a long enough password")
    session.commit()
    app.test_client().post(
        "/login",
        data={"staff_no": union.m1.staff_no, "password": "a long enough password"},
        headers={"X-Forwarded-For": "203.0.113.7"},
        environ_base={"REMOTE_ADDR": "10.0.0.2"},
    )
    session.rollback()
    row = session.scalars(
        select(AuditLog).where(AuditLog.action == "login").order_by(AuditLog.id.desc())
    ).first()
    return row.detail["ip"]


def test_without_a_trusted_proxy_the_header_is_ignored(settings, session, union):
    assert _login_ip(settings, session, union, 0) == "10.0.0.2"


def test_behind_one_trusted_proxy_the_client_address_is_used(settings, session, union):
    assert _login_ip(settings, session, union, 1) == "203.0.113.7"


def test_a_bad_value_stops_start_up_naming_the_variable():
    import pytest

    from config.settings import ConfigError, Settings

    with pytest.raises(ConfigError, match="CAMPAIGNFLOW_PROXY_HOPS"):
        Settings.from_env({"CAMPAIGNFLOW_PROXY_HOPS": "two"})
