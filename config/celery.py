"""Celery configuration: the app object, its settings and the beat schedule.

Embedded default: a SQLAlchemy transport over a SQLite file (a real worker, no broker server).
With ``CAMPAIGNFLOW_BROKER_URL=redis://…`` the same code runs on Redis with several workers.
"""

from __future__ import annotations

from typing import Any

from celery import Celery, Task
from celery.schedules import crontab

from config.database import db
from config.settings import Settings

#: Long batch jobs (incentive runs, imports) must finish well inside this (Redis redelivery).
VISIBILITY_TIMEOUT = 6 * 3600

BEAT_SCHEDULE: dict[str, dict[str, Any]] = {
    "campaign-schedule": {"task": "campaigns.run_schedule", "schedule": crontab(minute="*/5")},
}


class DatabaseTask(Task):
    """In a worker, a job's scoped session is released afterwards, whatever happens. (Run
    eagerly inside a request, it leaves the request's session alone.) With a ``job_guard`` on the
    app (the web app sets ``workflow.poison``), a message whose runs keep killing the worker is
    parked after three deliveries."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        guard = getattr(self.app, "job_guard", None)  # set by the web app: workflow.poison
        if self.request.is_eager or not self.request.id or guard is None:
            try:
                return super().__call__(*args, **kwargs)
            finally:
                if not self.request.is_eager:
                    db.session.remove()
        if not guard.begin(self.request.id, self.name, {"args": args, "kwargs": kwargs}):
            return None  # parked: acknowledged, not run
        try:
            return super().__call__(*args, **kwargs)
        finally:
            db.session.remove()
            guard.finish(self.request.id)


def celery_config(settings: Settings) -> dict[str, Any]:
    conf: dict[str, Any] = {
        "broker_url": settings.broker_url,
        "result_backend": settings.result_backend,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "timezone": settings.timezone,
        "enable_utc": True,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,  # re-queued when the worker dies; capped (workflow/poison.py)
        "worker_cancel_long_running_tasks_on_connection_loss": True,
        "worker_prefetch_multiplier": 1,
        "task_track_started": True,
        "task_time_limit": 3 * 3600,
        "task_soft_time_limit": 3 * 3600 - 300,
        "broker_connection_retry_on_startup": True,
        "beat_schedule": beat_schedule(),
        "imports": ["campaigns.jobs"] + _optional_job_modules(),
    }
    if settings.broker_url.startswith("redis"):
        conf["broker_transport_options"] = {"visibility_timeout": VISIBILITY_TIMEOUT}
        conf["result_backend_transport_options"] = {"visibility_timeout": VISIBILITY_TIMEOUT}
    if settings.celery_eager:
        conf.update(task_always_eager=True, task_eager_propagates=True, task_store_eager_result=False)
    return conf


def _optional_job_modules() -> list[str]:
    """Job modules of the domain packages that exist in this build."""
    import importlib.util

    names = [
        "workflow.outbox",
        "org.jobs",
        "customers.jobs",
        "customers.import_jobs",
        "campaigns.bounty_jobs",
        "tasks.jobs",
        "appraisal.jobs",
    ]
    return [n for n in names if importlib.util.find_spec(n) is not None]


def beat_schedule() -> dict[str, dict[str, Any]]:
    """The beat schedule: ours plus each job module's ``SCHEDULE`` dict."""
    import importlib

    schedule = dict(BEAT_SCHEDULE)
    for name in _optional_job_modules():
        schedule.update(getattr(importlib.import_module(name), "SCHEDULE", {}))
    return schedule


def make_celery(settings: Settings) -> Celery:
    app = Celery("campaignflow", task_cls=DatabaseTask)
    app.config_from_object(celery_config(settings))
    app.set_default()
    return app
