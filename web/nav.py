"""The menu: each area registers its entries with the roles that see them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Flask, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user


@dataclass(frozen=True)
class NavItem:
    endpoint: str
    label: Any  # a lazy gettext string
    roles: tuple[str, ...]
    order: int


_ITEMS: list[NavItem] = []


def register(endpoint: str, label: Any, roles: tuple[str, ...], order: int = 50) -> None:
    if not any(i.endpoint == endpoint for i in _ITEMS):
        _ITEMS.append(NavItem(endpoint, label, roles, order))


#: Menu groups, in order; an entry goes to the group of its endpoint (or of its blueprint).
GROUPS: list[tuple[str, Any]] = [
    ("work", _l("My work")),
    ("customers", _l("Customers")),
    ("campaigns", _l("Campaigns")),
    ("appraisal", _l("Appraisal")),
    ("admin", _l("Administration")),
]
_GROUP_OF = {
    "queue": "work",
    "checks": "work",
    "campaign_staff.pool_page": "work",
    "customers": "customers",
    "customers.audit_log": "admin",
    "campaigns": "campaigns",
    "campaign_editor": "campaigns",
    "campaign_dashboard": "campaigns",
    "campaign_staff": "campaigns",
    "bounties": "campaigns",
    "queue.overdue": "campaigns",
    "queue.failures": "campaigns",
    "appraisal": "appraisal",
    "org": "admin",
    "main": "admin",
}


def group_of(endpoint: str) -> str:
    return _GROUP_OF.get(endpoint) or _GROUP_OF.get(endpoint.split(".")[0], "admin")


def nav_items() -> list[dict[str, Any]]:
    """The menu of the signed-in person: groups of entries their roles may open."""
    if not current_user.is_authenticated:
        return []
    from web.auth import current_scope

    scope = current_scope()
    visible = [i for i in sorted(_ITEMS, key=lambda i: i.order) if scope.has(*i.roles)]
    menu = []
    for key, label in GROUPS:
        entries = [{"url": url_for(i.endpoint), "label": str(i.label)} for i in visible if group_of(i.endpoint) == key]
        if entries:
            menu.append({"key": key, "label": str(label), "items": entries})
    return menu


def init_app(app: Flask) -> None:
    app.jinja_env.globals["nav_items"] = nav_items
