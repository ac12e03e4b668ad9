"""``/healthz``: 200 with the database and the broker checked, 503 naming what failed."""

from __future__ import annotations

import dataclasses
import os

from config.settings import Settings


def health(settings: Settings):  # noqa: ANN201
    from web import create_app

    app = create_app({"TESTING": True}, settings=settings)
    with app.app_context():
        r = app.test_client().get("/healthz")
        return r.status_code, r.get_json()


def test_healthy_with_eager_jobs(client):
    r = client.get("/healthz")
    assert r.status_code == 200
    body = r.get_json()
    assert body["status"] == "ok" and body["database"] == "ok"
    assert body["broker"].startswith("ok")


def test_healthy_with_a_real_broker(settings, tmp_path):
    # the CI's second pass sets CAMPAIGNFLOW_BROKER_URL (Redis); otherwise the embedded SQLite transport
    broker = os.environ.get("CAMPAIGNFLOW_BROKER_URL") or f"sqla+sqlite:///{tmp_path / 'broker.sqlite'}"
    status, body = health(dataclasses.replace(settings, celery_eager=False, broker_url=broker))
    assert status == 200, body
    assert body == {"status": "ok", "database": "ok", "broker": "ok"}


def test_unreachable_broker_is_503(settings):
    status, body = health(
        dataclasses.replace(settings, celery_eager=False, broker_url="redis://127.0.0.1:9/0")
    )
    assert status == 503
    assert body["status"] == "degraded" and body["database"] == "ok"
    assert body["broker"].startswith("error: ")


def test_unreachable_database_is_503(settings, tmp_path):
    bad = f"sqlite:///{tmp_path / 'no' / 'such' / 'dir' / 'x.sqlite'}"
    status, body = health(dataclasses.replace(settings, database_url=bad))
    assert status == 503
    assert body["status"] == "degraded" and body["database"].startswith("error: ")
    assert body["broker"].startswith("ok")


def test_health_needs_no_login_and_reveals_no_detail(client):
    r = client.get("/healthz")
    text = r.get_data(as_text=True)
    assert r.status_code == 200
    assert "sqlite:///" not in text and "postgresql://" not in text and "secret" not in text.lower()
