"""``/healthz``: is the database reachable, is the broker reachable."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify
from sqlalchemy import text

from config.database import db

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Any:
    """200 with both checks when all is well, 503 naming what failed."""
    checks: dict[str, str] = {}
    try:
        db.session.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - report any failure
        checks["database"] = f"error: {type(exc).__name__}"
    settings = current_app.config["SETTINGS"]
    if settings.celery_eager:
        checks["broker"] = "ok (eager: jobs run in-process)"
    else:
        try:
            celery = current_app.extensions["celery"]
            with celery.connection_for_write() as conn:
                conn.ensure_connection(max_retries=1, timeout=2)
            checks["broker"] = "ok"
        except Exception as exc:  # noqa: BLE001
            checks["broker"] = f"error: {type(exc).__name__}"
    healthy = all(v.startswith("ok") for v in checks.values())
    return jsonify({"status": "ok" if healthy else "degraded", **checks}), (200 if healthy else 503)
