"""The menu: each area registers its entries with the roles that see them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Flask, url_for
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


def nav_items() -> list[dict[str, str]]:
    if not current_user.is_authenticated:
        return []
    from web.auth import current_scope

    scope = current_scope()
    return [
        {"url": url_for(i.endpoint), "label": str(i.label)}
        for i in sorted(_ITEMS, key=lambda i: i.order)
        if scope.has(*i.roles)
    ]


def init_app(app: Flask) -> None:
    app.jinja_env.globals["nav_items"] = nav_items
