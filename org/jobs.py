"""Scheduled checks of the organisation's records: the audit chain, every night."""

from __future__ import annotations

import logging

from celery import shared_task
from celery.schedules import crontab

from config.database import db

log = logging.getLogger(__name__)


def check_audit_chain() -> bool:
    """Verify the audit log's chain; when broken, log it and tell every admin (once per row)."""
    from org import audit

    with db.transaction() as session:
        report = audit.verify(session)
    if report.intact:
        return True
    log.error("audit chain broken: %s", report.problem)
    from tasks.notify import notify_admins

    with db.transaction() as session:
        notify_admins(
            session,
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
