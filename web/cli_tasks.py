"""``campaignflow tasks …``: the queue's scheduled work, run by hand (the same functions as the jobs).

Exit codes: 0 done; 2 bad input (an unknown staff number).
"""

from __future__ import annotations

import json
import sys

import click
from flask.cli import AppGroup, with_appcontext
from sqlalchemy import select

from config.database import db

tasks_cli = AppGroup("tasks", help="Task queues: morning run, reminders, automatic verification, a queue.")


@tasks_cli.command("morning")
@with_appcontext
def morning() -> None:
    """Wake snoozed tasks, make template follow-on/cadence tasks, send reminders and escalations."""
    from tasks import cadence, jobs

    with db.transaction() as session:
        woken = jobs.wake_snoozed(session)
    with db.transaction() as session:
        made = cadence.generate(session)
    with db.transaction() as session:
        due = jobs.due_soon_reminders(session)
        esc = jobs.overdue_escalation(session)
    click.echo(
        f"woken {woken} snoozed task(s); {made} template task(s) made; "
        f"due-soon reminders to {due} staff; overdue escalations to {esc} branch(es)"
    )


@tasks_cli.command("remind-appointments")
@with_appcontext
def remind_appointments() -> None:
    """Remind managers and accompanying directors of visits in the next 24 hours."""
    from tasks import jobs

    with db.transaction() as session:
        n = jobs.appointment_reminders(session)
    click.echo(f"reminded {n} appointment(s)")


@tasks_cli.command("auto-verify")
@with_appcontext
def auto_verify() -> None:
    """Verify claims confirmed by imported core-banking data; claw back those closed within the window."""
    from tasks import claims

    with db.transaction() as session:
        result = claims.auto_verify(session)
    with db.transaction() as session:
        result["reversed"] = claims.retention_sweep(session)
    click.echo(json.dumps(result))


@tasks_cli.command("purge-notes")
@click.option("--dry-run", is_flag=True, help="count what would be removed, change nothing")
@with_appcontext
def purge_notes(dry_run: bool) -> None:
    """Replace personal notes older than CAMPAIGNFLOW_RETENTION_DAYS (follow-ups, appointments,
    failure reasons, plans of ended campaigns); the records and the audit log stay."""
    from flask import current_app

    from config import clock
    from tasks import retention

    days = current_app.config["SETTINGS"].retention_days
    before = retention.cutoff(clock.today(), days)
    with db.transaction() as session:
        counts = retention.purge(session, before, dry_run=dry_run)
    verb = "would remove" if dry_run else "removed"
    click.echo(
        f"notes written before {before:%Y-%m-%d} ({days} days): {verb} "
        + ", ".join(f"{n} {kind.replace('_', ' ')}" for kind, n in counts.items())
    )


@tasks_cli.command("queue")
@click.argument("staff_no")
@with_appcontext
def show_queue(staff_no: str) -> None:
    """Print STAFF_NO's queue (masked customer names), as the phone shows it."""
    from customers.masking import mask_name
    from org.models import Staff
    from tasks import queue

    with db.transaction() as session:
        staff = session.scalar(select(Staff).where(Staff.staff_no == staff_no))
        if staff is None:
            click.echo(f"error: no staff with number {staff_no!r}", err=True)
            sys.exit(2)
        counts = queue.counts(session, staff.id)
        click.echo(", ".join(f"{k}: {v}" for k, v in counts.items()))
        for section, items in queue.my_queue(session, staff.id).items():
            for item in items:
                who = mask_name(item.customer.name, item.customer.type) if item.customer else ""
                flag = " [delegated]" if item.delegated else ""
                click.echo(f"{section:8} #{item.task.id} {item.task.due_on} {item.task.kind:10} {who}{flag}")


COMMANDS = [tasks_cli]
