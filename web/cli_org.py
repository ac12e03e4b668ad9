"""``campaignflow audit verify``: check the audit log's hash chain (org/audit.py).

Exit codes: 0 the chain is intact; 1 a row was changed or removed (named in the message).
"""

from __future__ import annotations

import sys

import click
from flask.cli import AppGroup, with_appcontext

from config.database import db

audit_cli = AppGroup("audit", help="The audit log: check that no row was changed or removed.")


@audit_cli.command("verify")
@with_appcontext
def verify() -> None:
    """Walk the audit log's hash chain and report the first row that does not match."""
    from org import audit

    with db.transaction() as session:
        report = audit.verify(session)
    if report.intact:
        click.echo(f"audit log intact: {report.checked} row(s) chained")
        return
    click.echo(f"audit log BROKEN after {report.checked} good row(s): {report.problem}", err=True)
    sys.exit(1)


COMMANDS: list[click.Command] = [audit_cli]
