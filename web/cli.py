"""The ``campaignflow`` command line (also reachable as ``flask --app web`` commands)."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys

import click
from flask import Flask, current_app
from flask.cli import AppGroup, FlaskGroup, with_appcontext

from config import migrate
from config.database import db

db_cli = AppGroup("db", help="Database schema (Alembic migrations).")
users_cli = AppGroup("users", help="Staff accounts and API tokens.")
demo_cli = AppGroup("demo", help="The demo union.")


def _url() -> str:
    return str(current_app.config["SETTINGS"].database_url)


@db_cli.command("upgrade")
@click.option("--revision", default="head", show_default=True)
@with_appcontext
def db_upgrade(revision: str) -> None:
    """Bring the database schema up to date."""
    migrate.upgrade(_url(), revision)
    click.echo(f"database at {revision}")


@db_cli.command("downgrade")
@click.argument("revision")
@with_appcontext
def db_downgrade(revision: str) -> None:
    """Step the schema back to REVISION (e.g. base)."""
    migrate.downgrade(_url(), revision)
    click.echo(f"database at {revision}")


@db_cli.command("regenerate")
def db_regenerate() -> None:
    """Developers: rewrite the initial migration from the models."""
    click.echo(migrate.regenerate_initial())


@users_cli.command("create")
@click.option("--staff-no", required=True)
@click.option("--name", required=True)
@click.option("--branch", "branch_code", required=True, help="branch_code")
@click.option("--roles", default="manager", show_default=True, help="director;manager;checker;admin")
@click.password_option()
@with_appcontext
def users_create(staff_no: str, name: str, branch_code: str, roles: str, password: str) -> None:
    """Create a staff member who can log in."""
    from sqlalchemy import select

    from org.models import Branch
    from org.services import create_staff

    with db.transaction() as session:
        branch = session.scalar(select(Branch).where(Branch.code == branch_code))
        if branch is None:
            raise click.BadParameter(f"no branch with code {branch_code!r}", param_hint="--branch")
        try:
            create_staff(
                session, staff_no=staff_no, name=name, branch=branch, roles=roles.replace(",", ";").split(";"), password=password
            )
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--roles") from None
    click.echo(f"created {staff_no}")


@users_cli.command("mfa-reset")
@click.argument("staff_no")
@click.option("--reason", required=True, help="why (audited), e.g. 'lost phone, ticket 123'")
@with_appcontext
def users_mfa_reset(staff_no: str, reason: str) -> None:
    """Turn STAFF_NO's two-step sign-in off (a lost phone); their open sessions end."""
    from sqlalchemy import select

    from org import mfa
    from org.models import Staff
    from org.services import audit

    with db.transaction() as session:
        staff = session.scalar(select(Staff).where(Staff.staff_no == staff_no))
        if staff is None:
            raise click.BadParameter(f"no staff with number {staff_no!r}", param_hint="STAFF_NO")
        mfa.reset(session, staff)
        audit(session, None, "mfa_reset", "staff", staff.staff_no, reason=reason.strip() or None)
    click.echo(f"two-step sign-in of {staff_no} reset; they set it up again at their next sign-in if required")


@users_cli.command("token")
@click.argument("staff_no")
@click.option("--name", default="cli", show_default=True)
@with_appcontext
def users_token(staff_no: str, name: str) -> None:
    """Issue an API token for STAFF_NO (printed once)."""
    from sqlalchemy import select

    from org.models import Staff
    from org.services import issue_token

    with db.transaction() as session:
        staff = session.scalar(select(Staff).where(Staff.staff_no == staff_no))
        if staff is None:
            raise click.BadParameter(f"no staff member {staff_no!r}", param_hint="STAFF_NO")
        click.echo(issue_token(session, staff, name))


@demo_cli.command("seed")
@click.option("--customers", default=3000, show_default=True, type=click.IntRange(50, 2_000_000))
@click.option("--if-empty", is_flag=True, help="do nothing when the union already has branches")
@with_appcontext
def demo_seed(customers: int, if_empty: bool) -> None:
    """Seed the demo union (deterministic): branches, staff, customers, snapshots, campaigns."""
    from web.demo import seed

    seed(customers=customers, if_empty=if_empty, echo=click.echo)


@click.command("worker")
@click.option("--beat/--no-beat", default=True, show_default=True, help="also run the scheduler")
@click.option("--concurrency", default=2, show_default=True, type=click.IntRange(1, 64))
def worker(beat: bool, concurrency: int) -> None:
    """Start a Celery worker (and the beat scheduler) on the configured broker."""
    args = [sys.executable, "-m", "celery", "-A", "make_celery", "worker", "-c", str(concurrency), "-l", "INFO"]
    if beat:
        args += ["-B", "-s", os.path.join(str(current_app.config["SETTINGS"].instance_dir), "celerybeat-schedule")]
    raise SystemExit(subprocess.call(args))


@click.command("schedule")
@with_appcontext
def schedule() -> None:
    """Run the campaign scheduler once now (start due campaigns, close ended ones)."""
    from campaigns.services import run_schedule

    with db.transaction() as session:
        result = run_schedule(session)
    click.echo(f"started {result['started']}, closed {result['closed']}")


@click.command("diagrams")
@click.option("--out", default="docs/state-machines.md", show_default=True, type=click.Path(dir_okay=False))
def diagrams(out: str) -> None:
    """Write every state machine's diagram (Mermaid) and transition table to OUT."""
    from workflow.diagram import machines_markdown

    with open(out, "w", encoding="utf-8") as fh:
        fh.write(machines_markdown())
    click.echo(f"wrote {out}")


def register_cli(app: Flask) -> None:
    for group in (db_cli, users_cli, demo_cli):
        app.cli.add_command(group)
    from web.serve import serve

    app.cli.add_command(worker)
    app.cli.add_command(schedule)
    app.cli.add_command(serve)
    app.cli.add_command(diagrams)
    for module in ("web.cli_customers", "web.cli_campaigns", "web.cli_tasks", "web.cli_appraisal", "web.cli_org"):
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            continue
        for command in mod.COMMANDS:
            app.cli.add_command(command)


def main() -> None:
    """Console script ``campaignflow``."""
    from config.settings import ConfigError
    from web import create_app

    cli = FlaskGroup(create_app=create_app, help="campaignflow: campaigns, task queues and incentives.")
    try:
        cli.main(prog_name="campaignflow")
    except ConfigError as exc:
        click.echo(f"campaignflow: configuration error: {exc}", err=True)
        raise SystemExit(2) from None
