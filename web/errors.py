"""Error pages and JSON errors: 404 for anything outside the caller's scope, 409 for workflow errors."""

from __future__ import annotations

from typing import Any

from flask import Flask, jsonify, render_template, request
from flask_babel import gettext as _
from werkzeug.exceptions import HTTPException

from config.database import db
from org.scope import Forbidden, NotFound
from workflow.errors import WorkflowError


def wants_json() -> bool:
    return request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json"


def _error(status: int, title: str, message: str, extra: dict[str, Any] | None = None) -> Any:
    db.session.rollback()
    if wants_json():
        return jsonify({"error": title, "message": message, **(extra or {})}), status
    return render_template("error.html", status=status, title=title, message=message), status


def audit_refusal(message: str | None = None, **detail: Any) -> None:
    """Write who was refused what, and alert on a burst (RELIABILITY AUD-01, AUD-05); never let
    the audit break the answer. ``detail`` adds to the path and method recorded."""
    from flask import g
    from flask_login import current_user

    staff = current_user.staff if current_user.is_authenticated else g.get("api_staff")
    if staff is None:
        return
    from org.services import audit

    try:
        audit(
            db.session,
            staff.id,
            "access_denied",
            "endpoint",
            request.endpoint,
            reason=message[:300] if message else None,
            detail={"path": request.path, "method": request.method, **detail},
        )
        from org import watch

        watch.after_refusal(db.session, staff.id)
        db.session.commit()
    except Exception:  # noqa: BLE001 - the refusal is answered either way
        db.session.rollback()
        import logging

        logging.getLogger(__name__).exception("could not audit a refusal")


def init_app(app: Flask) -> None:
    @app.errorhandler(WorkflowError)
    def _workflow(exc: WorkflowError) -> Any:
        return _error(exc.http_status, _("Not possible"), str(exc), exc.to_dict())

    @app.errorhandler(NotFound)
    def _not_found(exc: NotFound) -> Any:
        return _error(404, _("Not found"), _("There is nothing here, or it is outside your scope."))

    @app.errorhandler(Forbidden)
    def _forbidden(exc: Forbidden) -> Any:
        response = _error(403, _("Not allowed"), str(exc))
        audit_refusal(str(exc))
        return response

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Any:
        messages = {
            400: _("The request was not understood (a form may have expired: reload and try again)."),
            401: _("Please sign in."),
            403: _("Your role does not allow this."),
            404: _("There is nothing here, or it is outside your scope."),
            409: _("Someone else changed this at the same time; reload and try again."),
            413: _("The file is too large."),
            429: _("Too many attempts; wait a minute and try again."),
        }
        return _error(exc.code or 500, exc.name, messages.get(exc.code or 0, exc.description or ""))
