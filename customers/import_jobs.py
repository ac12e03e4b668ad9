"""The import job: an uploaded file imported in the background, its progress and report kept.

The web page stores the upload under ``instance/uploads/<random>.csv|.xlsx`` (never the user's
file name), creates a :class:`~workflow.models.JobProgress` row and sends
:func:`import_uploaded_file`. The job writes the row-by-row report next to the upload
(``<random>.report.csv``), deletes the upload and leaves the summary in ``JobProgress.result``.

The import itself runs in one transaction. On PostgreSQL it reports progress as it reads; on
SQLite (one writer, snapshot reads) a first pass over the file reports progress, then the import
runs without reporting.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from celery import shared_task

from config.database import db
from customers.fileformats import FileError, RowError, read_rows
from customers.imports import BATCH_SIZE, import_file, write_report
from workflow.progress import track

#: Errors kept in ``JobProgress.result`` for the page; the full list is in the report file.
RESULT_ERRORS = 200


def report_path(upload: Path) -> Path:
    """Where the report of an upload goes: ``<random>.report.csv`` beside it."""
    return upload.with_name(upload.stem + ".report.csv")


def count_lines(path: Path) -> int:
    """Rough number of data rows of a CSV (newlines minus the header), read in chunks."""
    lines = 0
    with open(path, "rb") as f:
        while chunk := f.read(1024 * 1024):
            lines += chunk.count(b"\n")
    return max(lines - 1, 0)


@shared_task(name="customers.import_file", ignore_result=True, acks_late=True)
def import_uploaded_file(progress_id: int, kind: str, path: str, strict: bool = False) -> dict[str, Any]:
    """Import the stored upload at ``path`` as ``kind``; the result lands in the progress row."""
    upload = Path(path)
    report = report_path(upload)
    total = count_lines(upload) if upload.suffix == ".csv" and upload.exists() else 0
    summary: dict[str, Any]
    with track(progress_id) as reporter:

        def progress(done: int, phase: str) -> None:
            reporter(done, max(total, done), phase)

        try:
            live: Any = progress
            if db.engine is not None and db.engine.dialect.name == "sqlite":
                # SQLite has one writer and snapshot reads: progress rows cannot be committed
                # beside the import's transaction, so a first pass reads the file (showing
                # progress) and the import then runs without reporting.
                rows = 0
                for rows, _raw in enumerate(read_rows(upload, upload.name, kind), start=1):
                    if rows % BATCH_SIZE == 0:
                        progress(rows, "reading")
                progress(rows, "checking and applying")
                live = None
            with db.transaction() as session:
                result = import_file(session, kind, upload, upload.name, strict=strict, progress=live)
        except FileError as exc:
            errors = [RowError(0, "", "", problem) for problem in exc.problems]
            summary = {"kind": kind, "strict": strict, "error": str(exc), "problems": exc.problems}
        except OSError as exc:
            errors = [RowError(0, "", "", f"the stored upload cannot be read: {exc.strerror or exc}")]
            summary = {
                "kind": kind,
                "strict": strict,
                "error": errors[0].reason,
                "problems": [errors[0].reason],
            }
        else:
            errors = result.errors
            summary = result.summary()
        with open(report, "w", encoding="utf-8-sig", newline="") as out:
            write_report(errors, out)
        summary["report"] = report.name
        summary["shown_errors"] = [
            {"row": e.row, "column": e.column, "value": e.value, "reason": e.reason}
            for e in errors[:RESULT_ERRORS]
        ]
        reporter.result = summary
        _remove(upload)
    return summary


def _remove(path: Path) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass
