"""Jinja filters and globals: money, dates, state labels and badges."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from flask import Flask
from flask_babel import format_decimal, get_locale

from web import labels, system_text

BADGES = {
    "draft": "secondary",
    "scheduled": "info",
    "active": "success",
    "paused": "warning",
    "closed": "dark",
    "settled": "primary",
    "cancelled": "danger",
    "open": "primary",
    "in_progress": "info",
    "done": "success",
    "failed": "danger",
    "expired": "secondary",
    "snoozed": "warning",
    "submitted": "info",
    "verified": "success",
    "rejected": "danger",
    "computing": "info",
    "computed": "warning",
    "approved": "primary",
    "locked": "dark",
}


def money(value: Any) -> str:
    """Money with thousands separators and two decimals (Decimal in, never float)."""
    if value is None or value == "":
        return "—"
    return format_decimal(Decimal(value), format="#,##0.00")


def init_app(app: Flask) -> None:
    app.jinja_env.filters["money"] = money
    app.jinja_env.filters["state"] = lambda s: str(labels.STATES.get(s, s))
    app.jinja_env.filters["trigger"] = lambda s: str(labels.TRIGGERS.get(s, s))
    app.jinja_env.filters["kind"] = lambda s: str(labels.KINDS.get(s, s))
    app.jinja_env.filters["label"] = lambda s: str(labels.VALUES.get(s) or labels.STATES.get(s) or (s or ""))
    app.jinja_env.filters["badge"] = lambda s: BADGES.get(s, "secondary")
    app.jinja_env.filters["isodate"] = lambda d: d.isoformat() if isinstance(d, dt.date) else (d or "")
    app.jinja_env.filters["systext"] = system_text.translate
    app.jinja_env.filters["dt"] = lambda d: d.strftime("%Y-%m-%d %H:%M") if d else ""
    app.jinja_env.globals["get_locale"] = get_locale
    # Babel spells zh_CN as zh_Hans_CN: compare the language, never the string
    app.jinja_env.globals["is_zh"] = lambda: get_locale().language == "zh"
    app.jinja_env.globals["url_exists"] = lambda endpoint: endpoint in app.view_functions
    app.jinja_env.globals["staff_name"] = staff_name


def staff_name(staff_id: int | None) -> str:
    """A staff member's name for history tables; the scheduler when there is none."""
    from flask import g
    from flask_babel import gettext as _

    from config.database import db
    from org.models import Staff

    if staff_id is None:
        return _("scheduler")
    cache = g.setdefault("staff_names", {})
    if staff_id not in cache:
        staff = db.session.get(Staff, staff_id)
        cache[staff_id] = staff.name if staff else "?"
    return str(cache[staff_id])
