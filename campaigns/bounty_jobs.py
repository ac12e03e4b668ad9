"""Scheduled job of bounties: release ended exclusivity, expire open bounties past deadline.

``config/celery.py`` imports this module when present, registering the task and merging its
``SCHEDULE`` entry into the beat schedule.
"""

from __future__ import annotations

from celery import shared_task
from celery.schedules import crontab

from campaigns import bounties
from config.database import db


@shared_task(name="campaigns.release_bounties", ignore_result=True)
def release_bounties() -> dict[str, int]:
    """Bounties whose exclusive period ended go back to open; open ones past deadline expire."""
    with db.transaction() as session:
        return bounties.release_expired(session)


#: merged into the beat schedule: shortly after midnight (Asia/Shanghai), and again at noon
SCHEDULE = {
    "campaigns.release_bounties": {
        "task": "campaigns.release_bounties",
        "schedule": crontab(minute=10, hour="0,12"),
    },
}
