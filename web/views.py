"""The home page: each role lands where its work is."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, redirect, render_template, request, session, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required

from config.database import db
from org.models import Staff
from web import LOCALES, nav
from web.auth import current_scope

bp = Blueprint("main", __name__)
nav.register("main.workflows", _l("Workflows"), ("director", "admin", "checker"), order=90)


@bp.get("/")
@login_required
def home() -> Any:
    scope = current_scope()
    links = []
    if scope.has("manager") and "queue.my_queue" in _endpoints():
        return redirect(url_for("queue.my_queue"))
    if scope.has("director", "admin", "checker"):
        return redirect(url_for("campaigns.index"))
    return render_template("home.html", links=links)


@bp.post("/lang")
def set_language() -> Any:
    """Switch language (a POST, CSRF-checked); a signed-in user's choice is kept on their profile."""
    code = request.form.get("code", "")
    if code in LOCALES:
        session["lang"] = code
        if current_user.is_authenticated:
            staff = db.session.get(Staff, current_user.staff.id)
            staff.locale = code
            db.session.commit()
    target = request.referrer or url_for("main.home")
    return redirect(target)


@bp.get("/workflows")
@login_required
def workflows() -> Any:
    """Every state machine of the product, drawn from its own definition, for directors to read."""
    from config.database import import_models
    from web import labels
    from workflow.diagram import render_svg
    from workflow.engine import Workflow

    import_models()
    machines = [
        {
            "name": wf.name,
            "svg": render_svg(wf, labels=labels.state_labels(), trigger_labels=labels.trigger_labels()),
            "rows": [(t.source, t.trigger, t.dest, [g.name for g in t.guards], t.reason_required) for t in wf.transitions],
        }
        for wf in sorted(Workflow.registry.values(), key=lambda w: w.name)
    ]
    return render_template("workflows.html", machines=machines)


def _endpoints() -> set[str]:
    from flask import current_app

    return set(current_app.view_functions)
