"""``campaignflow serve``: the web app and a background worker (with the scheduler) together."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import click
from flask import current_app
from flask.cli import with_appcontext
from werkzeug.serving import run_simple


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535), envvar="PORT")
@click.option("--worker/--no-worker", default=True, show_default=True, help="start a Celery worker with beat")
@with_appcontext
def serve(host: str, port: int, worker: bool) -> None:
    """Run the web app at http://HOST:PORT and, unless jobs run eagerly, a worker beside it."""
    settings = current_app.config["SETTINGS"]
    child = None
    if worker and not settings.celery_eager:
        schedule_file = os.path.join(str(settings.instance_dir), "celerybeat-schedule")
        child = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "make_celery", "worker", "-B", "-s", schedule_file,
             "-c", "2", "-l", "WARNING"],
        )
        click.echo(f"worker started (pid {child.pid}) on {settings.broker_url.split('://')[0]}")

    def _stop(*_: object) -> None:
        if child and child.poll() is None:
            child.terminate()
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, _stop)
    click.echo(f"campaignflow at http://{host}:{port}/  (Ctrl-C stops web and worker)")
    try:
        run_simple(host, port, current_app._get_current_object(), threaded=True, use_reloader=False)  # type: ignore[attr-defined]
    finally:
        if child and child.poll() is None:
            child.terminate()
            child.wait(timeout=20)
