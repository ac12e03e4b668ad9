"""The JSON API under ``/api/v1`` (token auth, OpenAPI document at ``/api/docs/openapi.json``).

Each area adds its endpoints to :data:`api` (an ``APIBlueprint``); :func:`register_api` wires it.
"""

from __future__ import annotations

import importlib
from typing import Any

from flask import Flask, g, request
from flask_openapi3 import APIBlueprint, Tag

from config.database import db
from org.models import Staff
from org.scope import Scope
from org.services import staff_for_token
from web.api import idempotency
from web.extensions import csrf

SECURITY = [{"bearer": []}]
api = APIBlueprint("api", __name__, url_prefix="/api/v1", abp_security=SECURITY)


@api.before_request
def _token_first() -> None:
    """Default deny (RELIABILITY AUTH-02): no valid bearer token, 401 — before a body is read."""
    api_staff()


idempotency.init_api(api)  # Idempotency-Key on money requests (RELIABILITY CONC-06)


class Unauthorized(Exception):
    http_status = 401


def api_staff() -> Staff:
    """The staff member of the bearer token (401 without a valid token)."""
    if "api_staff" not in g:
        header = request.headers.get("Authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else ""
        staff = staff_for_token(db.session, token) if token else None
        if staff is None:
            raise Unauthorized()
        g.api_staff = staff
    return g.api_staff  # type: ignore[no-any-return]


def api_scope() -> Scope:
    if "api_scope" not in g:
        g.api_scope = Scope.of(db.session, api_staff())
    return g.api_scope  # type: ignore[no-any-return]


def register_api(app: Flask) -> None:
    from web.api import campaigns  # noqa: F401 - registers its endpoints on `api`

    for module in ("web.api.customers", "web.api.queue", "web.api.appraisal", "web.api.campaign_staff"):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
    csrf.exempt(api)
    app.register_api(api)  # type: ignore[attr-defined]

    @app.errorhandler(Unauthorized)
    def _unauthorized(exc: Unauthorized) -> Any:
        return {"error": "Unauthorized", "message": "A valid bearer token is required"}, 401


TAGS = {name: Tag(name=name) for name in ("campaigns", "customers", "queue", "appraisal", "me")}
