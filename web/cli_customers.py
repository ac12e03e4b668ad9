"""``campaignflow import branches|staff|customers|snapshots|holdings FILE [--strict] [--report OUT.csv]``.

Exit status: 0 every row applied, 1 some rows rejected (or, with ``--strict``, nothing applied
because of them), 2 the file is unusable or the arguments are bad (the message names the problem).

Other areas add their own import commands to the same group::

    from web.cli_customers import import_cli
    import_cli.add_command(my_events_command, "events")
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
from flask.cli import AppGroup, with_appcontext

from config.database import db
from customers.fileformats import FileError, RowError
from customers.imports import KINDS, ImportResult, import_file, write_report

import_cli = AppGroup(
    "import",
    help="Import core-banking files (CSV UTF-8/GB18030 or XLSX, English or Chinese headers).",
)

#: Errors echoed to the terminal; the full list goes to --report.
SHOWN_ERRORS = 20


def _progress_console() -> object:
    from rich.console import Console

    return Console(stderr=True)


def run_import(kind: str, file: Path, strict: bool, report: Path | None) -> None:
    """Run one import with a progress display; exits with 0, 1 or 2."""
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    if file.suffix.lower() not in (".csv", ".xlsx"):
        _fail(f"{file}: unsupported file type {file.suffix or '(none)'!r}; give a .csv or .xlsx file", report)
    with Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,} rows"),
        TimeElapsedColumn(),
        console=_progress_console(),  # type: ignore[arg-type]
        transient=True,
    ) as bar:
        task = bar.add_task(f"{kind}: reading", total=None)

        def progress(done: int, phase: str) -> None:
            bar.update(task, completed=done, description=f"{kind}: {phase}")

        try:
            with db.transaction() as session:
                result = import_file(session, kind, file, file.name, strict=strict, progress=progress)
        except FileError as exc:
            bar.stop()
            _fail(f"{file}: {exc}", report, exc.problems)
        except OSError as exc:
            bar.stop()
            _fail(f"{file}: cannot read the file: {exc.strerror or exc}", report)
    _finish(result, report)


def _fail(message: str, report: Path | None, problems: list[str] | None = None) -> None:
    click.echo(f"error: {message}", err=True)
    if report is not None:
        _write(report, [RowError(0, "", "", problem) for problem in (problems or [message])])
    sys.exit(2)


def _write(report: Path, errors: list[RowError]) -> None:
    try:
        with open(report, "w", encoding="utf-8-sig", newline="") as out:
            write_report(errors, out)
    except OSError as exc:
        click.echo(f"error: cannot write the report {report}: {exc.strerror or exc}", err=True)
        sys.exit(2)


def _finish(result: ImportResult, report: Path | None) -> None:
    if report is not None:
        _write(report, result.errors)
    for error in result.errors[:SHOWN_ERRORS]:
        shown = f" {error.value!r}" if error.value else ""
        column = f" {error.column}" if error.column else ""
        click.echo(f"row {error.row}{column}{shown}: {error.reason}", err=True)
    if len(result.errors) > SHOWN_ERRORS:
        hint = f" (all in {report})" if report else " (use --report OUT.csv for all of them)"
        click.echo(f"… and {len(result.errors) - SHOWN_ERRORS} more problems{hint}", err=True)
    if result.refused:
        click.echo(
            f"{result.kind}: {result.rows} rows read, {result.rejected} rejected; --strict: nothing applied"
        )
    else:
        click.echo(
            f"{result.kind}: {result.rows} rows read, {result.applied} applied, {result.rejected} rejected"
        )
    sys.exit(1 if result.errors else 0)


def _make_command(kind: str) -> click.Command:
    @click.command(
        kind, help=f"Import {kind} from FILE (.csv or .xlsx); see docs/admin-guide.md for the columns."
    )
    @click.argument("file", type=click.Path(exists=True, dir_okay=False, readable=True, path_type=Path))
    @click.option("--strict", is_flag=True, help="Apply nothing if any row is bad.")
    @click.option(
        "--report",
        type=click.Path(dir_okay=False, writable=True, path_type=Path),
        help="Write the row-by-row report (row, column, value, reason) to this CSV file.",
    )
    @with_appcontext
    def command(file: Path, strict: bool, report: Path | None) -> None:
        run_import(kind, file, strict, report)

    return command


for _kind in KINDS:
    import_cli.add_command(_make_command(_kind))

COMMANDS = [import_cli]
