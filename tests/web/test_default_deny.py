"""AUTH-02: every route answers an anonymous caller with a sign-in (pages: 302 to /login) or 401
(API), except the few that are public by design. Walks the app's url_map, so a new route that
forgets its decorator fails here."""

from __future__ import annotations

import re

import pytest

#: open to everyone, on purpose
PUBLIC = {
    "static",
    "auth.login",
    "auth.login_code",  # only with a fresh password step in the session; else back to /login
    "auth.login_enrol",
    "health.healthz",
    "main.set_language",
}
#: the OpenAPI document and the bundled Swagger UI (blueprints of flask-openapi3): public docs
PUBLIC_PREFIXES = ("openapi.", "swagger.")


def _url(rule) -> str:  # noqa: ANN001
    return re.sub(r"<(?:[^:>]+:)?([^>]+)>", "1", rule.rule)


def _rules(app):  # noqa: ANN001, ANN202
    return [
        r
        for r in app.url_map.iter_rules()
        if r.endpoint not in PUBLIC and not r.endpoint.startswith(PUBLIC_PREFIXES)
    ]


def test_anonymous_callers_are_sent_to_sign_in_everywhere(app):
    web = app.test_client()
    seen = 0
    for rule in _rules(app):
        for method in ("GET", "POST"):
            if method not in (rule.methods or ()):
                continue
            url = _url(rule)
            r = web.open(url, method=method, json={} if rule.rule.startswith("/api/") else None)
            if rule.rule.startswith("/api/"):
                assert r.status_code == 401, f"{method} {url} ({rule.endpoint}) answered {r.status_code}"
            else:
                assert r.status_code in (302, 401), (
                    f"{method} {url} ({rule.endpoint}) answered {r.status_code}"
                )
                if r.status_code == 302:
                    assert "/login" in r.headers["Location"], f"{method} {url} redirects elsewhere"
            seen += 1
    assert seen > 100  # the whole app was walked


@pytest.mark.parametrize("endpoint", sorted(PUBLIC))
def test_the_public_ones_exist(app, endpoint):
    assert endpoint in {r.endpoint for r in app.url_map.iter_rules()}
