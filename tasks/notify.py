"""Notifications behind a small interface: in-app (the bell) and a logger (the place for SMS or
WeChat Work later). Domain code calls :func:`notify`; nothing here imports Flask."""

from __future__ import annotations

import logging
import os
from typing import Protocol

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from config.database import now_local
from tasks.models import Notification

log = logging.getLogger("campaignflow.notify")


class Notifier(Protocol):
    """Sends one notification to one staff member. ``key`` (optional) makes it idempotent."""

    def send(
        self,
        session: Session,
        staff_id: int,
        kind: str,
        text: str,
        link: str | None = None,
        key: str | None = None,
    ) -> None: ...


class InAppNotifier:
    """Stores a :class:`Notification` row: the bell in the navbar counts the unread ones."""

    def send(
        self,
        session: Session,
        staff_id: int,
        kind: str,
        text: str,
        link: str | None = None,
        key: str | None = None,
    ) -> None:
        if key is not None:
            exists = session.scalar(
                select(Notification.id).where(Notification.staff_id == staff_id, Notification.key == key)
            )
            if exists:
                return
        session.add(Notification(staff_id=staff_id, kind=kind, text=text, link=link, key=key))
        session.flush()


class LogNotifier:
    """Writes the notification to the log (a second channel; SMS / WeChat Work would sit here)."""

    def send(
        self,
        session: Session,
        staff_id: int,
        kind: str,
        text: str,
        link: str | None = None,
        key: str | None = None,
    ) -> None:
        log.info("notify staff=%s kind=%s key=%s text=%s link=%s", staff_id, kind, key, text, link)


_NOTIFIERS: dict[str, Notifier] = {"inapp": InAppNotifier(), "log": LogNotifier()}


def notifiers() -> list[Notifier]:
    """The configured channels (``CAMPAIGNFLOW_NOTIFIERS``, default ``inapp,log``)."""
    names = os.environ.get("CAMPAIGNFLOW_NOTIFIERS", "inapp,log")
    return [_NOTIFIERS[n.strip()] for n in names.split(",") if n.strip() in _NOTIFIERS]


def notify(
    session: Session, staff_id: int, kind: str, text: str, link: str | None = None, key: str | None = None
) -> None:
    for n in notifiers():
        n.send(session, staff_id, kind, text, link, key)


def notify_admins(
    session: Session, kind: str, text: str, link: str | None = None, key: str | None = None
) -> None:
    """Tell every admin (security alerts, a broken audit chain, a parked job)."""
    from org.models import Role, StaffRole

    for (admin_id,) in session.execute(
        select(StaffRole.staff_id).where(StaffRole.role == Role.admin).distinct()
    ):
        notify(session, admin_id, kind, text, link=link, key=key)


def unread_count(session: Session, staff_id: int) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(Notification)
            .where(Notification.staff_id == staff_id, Notification.read_at.is_(None))
        )
        or 0
    )


def recent(session: Session, staff_id: int, limit: int = 30) -> list[Notification]:
    return list(
        session.scalars(
            select(Notification)
            .where(Notification.staff_id == staff_id)
            .order_by(Notification.id.desc())
            .limit(limit)
        )
    )


def mark_all_read(session: Session, staff_id: int) -> int:
    from sqlalchemy import update

    res = session.execute(
        update(Notification)
        .where(Notification.staff_id == staff_id, Notification.read_at.is_(None))
        .values(read_at=now_local())
    )
    return int(getattr(res, "rowcount", 0) or 0)
