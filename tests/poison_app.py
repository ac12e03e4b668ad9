"""A worker app for tests/integration/test_poison.py: the product's app plus one job that kills the
worker process running it (what an out-of-memory kill does), to prove the redelivery cap."""

import os

from make_celery import celery_app, flask_app  # noqa: F401 - the worker needs both


@celery_app.task(name="tests.kill_my_worker")
def kill_my_worker() -> None:
    os._exit(9)
