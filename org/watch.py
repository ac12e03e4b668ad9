"""Behavioural alerts on the audit log (RELIABILITY AUD-05): the admins hear about a burst of
refused requests and about someone reaching the daily cap of unmaskings.

Each alert is an in-app notification to every admin (``tasks.notify``), at most once per person
and hour (refusals) or day (reveal cap), with a link to the audit page filtered on that person.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from config.database import now_local
from org.models import AuditLog, Staff

#: refused requests within an hour that make an alert
REFUSAL_BURST = 10


def _tell_admins(session: Session, text: str, link: str, key: str) -> None:
    from tasks.notify import notify_admins

    notify_admins(session, "security", text, link=link, key=key)


def after_refusal(session: Session, staff_id: int) -> bool:
    """Call after auditing a refusal: alert when this person was refused ``REFUSAL_BURST`` times
    within the last hour. Returns whether the admins were told now."""
    now = now_local()
    n = session.scalar(
        select(func.count())
        .select_from(AuditLog)
        .where(
            AuditLog.actor_id == staff_id,
            AuditLog.action == "access_denied",
            AuditLog.at >= now - dt.timedelta(hours=1),
        )
    )
    if int(n or 0) != REFUSAL_BURST:  # exactly at the threshold: once per burst
        return False
    staff = session.get(Staff, staff_id)
    who = staff.staff_no if staff else str(staff_id)
    _tell_admins(
        session,
        f"{who} was refused {REFUSAL_BURST} times within an hour (pages or records outside their role)",
        f"/admin/audit?staff={who}&action=access_denied",
        f"refusals:{staff_id}:{now:%Y%m%d%H}",
    )
    return True


def reveal_cap_reached(session: Session, staff_id: int, limit: int) -> None:
    """Someone asked to unmask personal data beyond the daily cap: tell the admins (once a day)."""
    staff = session.get(Staff, staff_id)
    who = staff.staff_no if staff else str(staff_id)
    _tell_admins(
        session,
        f"{who} reached the daily limit of {limit} unmaskings of personal data",
        f"/admin/audit?staff={who}&action=reveal",
        f"reveal-cap:{staff_id}:{now_local():%Y%m%d}",
    )
