"""Scheduled checks of the organisation's records: the audit chain, every night."""

from __future__ import annotations

import logging

from celery import shared_task
from celery.schedules import crontab
from sqlalchemy import select

from config.database import db

log = logging.getLogger(__name__)


def check_audit_chain() -> bool:
    """Verify the audit log's chain; when broken, log it and tell every admin (once per row)."""
    from org import audit
    from org.models import Role, StaffRole

    with db.transaction() as session:
        report = audit.verify(session)
    if report.intact:
        return True
    log.error("audit chain broken: %s", report.problem)
    from tasks.notify import notify

    with db.transaction() as session:
        admins = session.scalars(select(StaffRole.staff_id).where(StaffRole.role == Role.admin).distinct())
        for staff_id in admins:
            notify(
                session,
                staff_id,
                "audit",
                f"Audit log check failed: {report.problem}",
                link="/admin/audit",
                key=f"audit-broken:{report.broken_at}",
            )
    return False


@shared_task(name="org.audit_verify", ignore_result=True)
def audit_verify() -> bool:
    return check_audit_chain()


SCHEDULE = {"org-audit-verify": {"task": "org.audit_verify", "schedule": crontab(minute=15, hour=2)}}
