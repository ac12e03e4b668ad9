"""``campaignflow incentives run|approve|lock|export``, ``campaignflow import events`` and
``campaignflow ledger check-totals``.

Exit status: 0 done; 1 (import) some rows rejected, (check-totals) totals differ from the
events; 2 bad input (bad or future month, unknown
branch or staff, approving an unfinished run, changing a locked month, unusable file) — the
message names the problem and nothing is changed.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, NoReturn

import click
from flask.cli import AppGroup, with_appcontext
from sqlalchemy import select

from config.database import db

incentives_cli = AppGroup(
    "incentives", help="Monthly incentive runs (月度绩效核算): run, approve, lock, export."
)
SHOWN_ERRORS = 20


def _fail(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(2)


def _staff(session: Any, staff_no: str | None, option: str = "--by") -> Any:
    from org.models import Staff

    if not staff_no:
        return None
    staff = session.scalar(select(Staff).where(Staff.staff_no == staff_no))
    if staff is None:
        _fail(f"{option}: no staff member {staff_no!r}")
    return staff


def _domain_errors() -> tuple[type[BaseException], ...]:
    from appraisal.ledger import LedgerError, MonthError
    from appraisal.runs import RunError
    from workflow.errors import WorkflowError

    return (MonthError, RunError, LedgerError, WorkflowError)


@incentives_cli.command("run")
@click.option("--month", required=True, help="YYYY-MM (this month or earlier)")
@click.option("--scope", default=None, help="a branch code; default: the whole union")
@click.option("--by", "by", default=None, help="staff_no of who runs it (recorded)")
@with_appcontext
def run_cmd(month: str, scope: str | None, by: str | None) -> None:
    """Compute (or recompute) the run of MONTH; a progress bar shows its phases."""
    from appraisal.ledger import parse_month
    from appraisal.runs import PHASES, compute_run, run_delay

    errors = _domain_errors()
    try:
        month = parse_month(month)  # a bad month is refused before any progress is shown
    except errors as exc:
        _fail(str(exc))
    try:
        with click.progressbar(length=PHASES, label=f"incentive run {month}", file=sys.stderr) as bar:
            seen = [0]

            def progress(done: int, total: int, message: str) -> None:
                bar.label = f"incentive run {month}: {message}"
                bar.update(done - seen[0])
                seen[0] = done

            with db.transaction() as session:
                actor = _staff(session, by)
                run = compute_run(
                    session,
                    month,
                    scope,
                    progress=progress,
                    actor_id=actor.id if actor else None,
                    delay=run_delay(),
                )
                bar.update(PHASES - seen[0])
                summary = (run.month, run.scope_key, run.state, run.line_count, run.staff_count, run.total)
    except errors as exc:
        _fail(str(exc))
    click.echo("run {} {}: {} — {} lines, {} staff, total {:.2f}".format(*summary))


def _load_run(session: Any, month: str, scope: str | None) -> Any:
    from appraisal.runs import get_run

    return get_run(session, month, scope)


@incentives_cli.command("approve")
@click.option("--month", required=True)
@click.option("--scope", default=None)
@click.option("--by", "by", required=True, help="staff_no of the approving director (not the one who ran it)")
@with_appcontext
def approve_cmd(month: str, scope: str | None, by: str) -> None:
    """Approve the computed run of MONTH (a director; four eyes)."""
    from appraisal.runs import approve_run

    try:
        with db.transaction() as session:
            actor = _staff(session, by)
            run = approve_run(session, _load_run(session, month, scope), actor)
            state = run.state
    except _domain_errors() as exc:
        _fail(str(exc))
    click.echo(f"run {month}: {state}")


@incentives_cli.command("lock")
@click.option("--month", required=True)
@click.option("--scope", default=None)
@click.option("--by", "by", required=True, help="staff_no of the checker / HR clerk who closes the month")
@click.option("--imports-done", is_flag=True, help="confirm the month's core-banking imports are complete")
@with_appcontext
def lock_cmd(month: str, scope: str | None, by: str, imports_done: bool) -> None:
    """Lock the approved run of MONTH once the close checklist is complete; nothing of it changes after."""
    from appraisal.runs import close_checklist, lock_run

    try:
        with db.transaction() as session:
            actor = _staff(session, by)
            run = _load_run(session, month, scope)
            for item in close_checklist(session, run, imports_done):
                click.echo(f"[{'x' if item.ok else ' '}] {item.label}: {item.detail}", err=True)
            lock_run(session, run, actor.id, imports_done)
    except _domain_errors() as exc:
        _fail(str(exc))
    click.echo(f"run {month}: locked")


@incentives_cli.command("export")
@click.option("--month", required=True)
@click.option("--scope", default=None)
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="FILE.csv or FILE.xlsx",
)
@click.option("--lines", is_flag=True, help="every statement line instead of the payroll sheet")
@click.option("--by", "by", default=None, help="staff_no of who exports (audited)")
@with_appcontext
def export_cmd(month: str, scope: str | None, out: Path, lines: bool, by: str | None) -> None:
    """Export the payroll sheet (approved or locked runs) or every line of MONTH."""
    from appraisal.exports import export_run
    from org.services import audit

    fmt = out.suffix.lower().lstrip(".")
    if fmt not in ("csv", "xlsx"):
        _fail(f"--out: the file must end in .csv or .xlsx, found {out.name!r}")
    try:
        with db.transaction() as session:
            actor = _staff(session, by)
            run = _load_run(session, month, scope)
            if run.state == "computing":
                _fail(f"the run of {month} is still computing")
            if not lines and run.state not in ("approved", "locked"):
                _fail(
                    f"the payroll sheet of {month} needs an approved run (it is {run.state}); use --lines to check it"
                )
            data = export_run(session, run, fmt, lines)
            audit(
                session,
                actor.id if actor else None,
                "export",
                "incentive_run",
                run.id,
                detail={"month": month, "scope": run.scope_key, "lines": lines, "format": fmt, "via": "cli"},
            )
            try:
                out.write_bytes(data)
            except OSError as exc:
                _fail(f"--out: cannot write {out}: {exc.strerror or exc}")
    except _domain_errors() as exc:
        _fail(str(exc))
    click.echo(f"wrote {out}")


# ---------------------------------------------------------------------------------------------
# import events


@click.command(
    "events", help="Import verified events (§8 events file) into the ledger from FILE (.csv or .xlsx)."
)
@click.argument("file", type=click.Path(exists=True, dir_okay=False, readable=True, path_type=Path))
@click.option("--strict", is_flag=True, help="Apply nothing if any row is bad.")
@click.option(
    "--report",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write the row-by-row report (row, column, value, reason) to this CSV file.",
)
@with_appcontext
def events_cmd(file: Path, strict: bool, report: Path | None) -> None:
    from appraisal.ledger import import_events
    from customers.fileformats import FileError, RowError, iter_validated

    if file.suffix.lower() not in (".csv", ".xlsx"):
        _report(report, [RowError(0, "", "", f"unsupported file type {file.suffix!r}")])
        _fail(f"{file}: unsupported file type {file.suffix or '(none)'!r}; give a .csv or .xlsx file")
    try:
        with db.transaction() as session:
            result = import_events(session, iter_validated(file, file.name, "events"), strict=strict)
            if strict and result.errors:
                session.rollback()
    except FileError as exc:
        _report(report, [RowError(0, "", "", p) for p in exc.problems])
        _fail(f"{file}: {exc}")
    _report(report, result.errors)
    for error in result.errors[:SHOWN_ERRORS]:
        shown = f" {error.value!r}" if error.value else ""
        click.echo(f"row {error.row} {error.column}{shown}: {error.reason}", err=True)
    if len(result.errors) > SHOWN_ERRORS:
        click.echo(f"… and {len(result.errors) - SHOWN_ERRORS} more problems", err=True)
    refused = len({e.row for e in result.errors})
    if strict and result.errors:
        click.echo(f"events: {result.read} rows read, {refused} rejected; --strict: nothing applied")
    else:
        click.echo(
            f"events: {result.read} rows read, {result.added} added, {result.unchanged} already in the ledger, "
            f"{refused} rejected"
        )
    sys.exit(1 if result.errors else 0)


def _report(report: Path | None, errors: list[Any]) -> None:
    if report is None:
        return
    import csv

    from appraisal.exports import neutral

    try:
        with open(report, "w", encoding="utf-8-sig", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(("row", "column", "value", "reason"))
            for e in errors:
                writer.writerow([e.row, e.column, neutral(e.value), neutral(e.reason)])
    except OSError as exc:
        _fail(f"cannot write the report {report}: {exc.strerror or exc}")


# ---------------------------------------------------------------------------------------------
# ledger check-totals

ledger_cli = AppGroup("ledger", help="The ledger (业绩台账): check its totals against its events.")


@ledger_cli.command("check-totals")
@click.option("--month", default=None, help="YYYY-MM; default: every month")
@click.option(
    "--rebuild",
    is_flag=True,
    help="Recompute the totals of each month that differs (audited), then check again.",
)
@click.option("--by", "by", default=None, help="staff_no of who rebuilds (audited)")
@with_appcontext
def check_totals_cmd(month: str | None, rebuild: bool, by: str | None) -> None:
    """Compare ledger_total with a fresh GROUP BY of ledger_event; exit 1 listing the differences."""
    from appraisal.ledger import check_totals, parse_month, rebuild_totals
    from org.services import audit

    try:
        month = parse_month(month) if month is not None else None
    except _domain_errors() as exc:
        _fail(f"--month: {exc}")
    with db.transaction() as session:
        actor = _staff(session, by)
        actor_id = actor.id if actor else None
        differences = check_totals(session, month)
    where = f"month {month}" if month else "every month"
    if not differences:
        click.echo(f"ledger totals match the events ({where})")
        return
    for d in differences[:SHOWN_ERRORS]:
        click.echo(d.describe(), err=True)
    if len(differences) > SHOWN_ERRORS:
        click.echo(f"… and {len(differences) - SHOWN_ERRORS} more differences", err=True)
    months = sorted({d.month for d in differences})
    if not rebuild:
        click.echo(
            f"ledger totals DIFFER from the events: {len(differences)} row(s) in {', '.join(months)}; "
            "--rebuild recomputes them"
        )
        sys.exit(1)
    for bad in months:
        with db.transaction() as session:
            rows = rebuild_totals(session, bad)
            audit(
                session,
                actor_id,
                "ledger_totals_rebuild",
                "ledger_total",
                bad,
                detail={
                    "month": bad,
                    "differences": sum(1 for d in differences if d.month == bad),
                    "rows": rows,
                    "via": "cli",
                },
            )
        click.echo(f"rebuilt the totals of {bad}: {rows} row(s)")
    with db.transaction() as session:
        left = [d for m in months for d in check_totals(session, m)]
    if left:
        for d in left[:SHOWN_ERRORS]:
            click.echo(d.describe(), err=True)
        click.echo(f"ledger totals still differ after the rebuild: {len(left)} row(s)")
        sys.exit(1)
    click.echo(f"ledger totals match the events ({where}) after rebuilding {', '.join(months)}")


COMMANDS: list[click.Command] = [incentives_cli, ledger_cli]
try:
    from web.cli_customers import import_cli

    import_cli.add_command(events_cmd, "events")
except ImportError:  # the customers area is not built: our own `import` group
    import_cli = AppGroup("import", help="Import files.")
    import_cli.add_command(events_cmd, "events")
    COMMANDS.append(import_cli)
