"""``campaignflow campaigns …``: load, export, launch and list campaigns from the terminal.

Exit codes: 0 done; 1 refused by the engine (the campaign's state or a launch guard, the text
names the state and the triggers allowed); 2 bad input (a bad file, listed error by error with
its path; an unknown campaign code or staff number). A refused file stores nothing.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup, with_appcontext
from sqlalchemy import func, select

from config.database import db

campaigns_cli = AppGroup("campaigns", help="Campaigns: load and export YAML definitions, launch, list.")


def _fail(message: str, code: int) -> None:
    click.echo(message, err=True)
    sys.exit(code)


def _campaign_by_code(session, code: str):  # noqa: ANN001, ANN202
    from campaigns.models import Campaign

    campaign = session.scalar(select(Campaign).where(Campaign.code == code))
    if campaign is None:
        _fail(f"error: no campaign with code {code!r}", 2)
    return campaign


@campaigns_cli.command("load")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--replace", is_flag=True, help="update the draft campaign with the same code instead of refusing it"
)
@with_appcontext
def load(file: Path, replace: bool) -> None:
    """Load a campaign from a YAML FILE (PRODUCT.md §8) as a draft; a bad file is refused whole."""
    from campaigns.definition import DefinitionErrors, NotEditable, load_definition, load_yaml
    from campaigns.launch_check import check
    from campaigns.models import Campaign

    try:
        text = file.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        _fail(f"error: {file} is not UTF-8 text ({exc.reason})", 2)
    try:
        with db.transaction() as session:
            data = load_yaml(text)
            existing = None
            if replace and isinstance(data, dict) and isinstance(data.get("code"), str):
                existing = session.scalar(select(Campaign).where(Campaign.code == data["code"]))
            campaign = load_definition(session, data, existing)
            findings = check(session, campaign)
            summary = (
                f"{'updated' if existing else 'loaded'} {campaign.code} ({campaign.state}): "
                f"{len(campaign.targets)} targets, {len(campaign.task_templates or [])} task templates, "
                f"{len(campaign.rules or [])} rules"
            )
    except DefinitionErrors as exc:
        click.echo(f"refused: {file} has {len(exc.errors)} problem(s); nothing was stored", err=True)
        for e in exc.errors:
            click.echo(f"  {e.path}: expected {e.expected}, found {e.found}", err=True)
        sys.exit(2)
    except NotEditable as exc:
        _fail(f"refused: {exc}", 1)
    click.echo(summary)
    for f in findings:
        click.echo(f"  {'BLOCKS LAUNCH' if f.blocking else f.level}: {f.message}")


@campaigns_cli.command("export")
@click.argument("code")
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="write to this file (default: stdout)",
)
@with_appcontext
def export(code: str, out: Path | None) -> None:
    """Export campaign CODE as YAML (loading it back gives the same campaign)."""
    from campaigns.definition import dump_yaml, export_definition

    with db.transaction() as session:
        text = dump_yaml(export_definition(_campaign_by_code(session, code)))
    if out is None:
        click.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        click.echo(f"wrote {out}")


@campaigns_cli.command("launch")
@click.argument("code")
@click.option("--actor", "actor_no", help="staff_no of the director launching it (default: its owner)")
@click.option("--in-process", is_flag=True, help="generate assignments in this process instead of a worker")
@click.option(
    "--wait/--no-wait", default=True, show_default=True, help="follow the generation job's progress"
)
@click.option(
    "--timeout", default=3600, show_default=True, type=click.IntRange(1), help="seconds to follow it"
)
@with_appcontext
def launch(code: str, actor_no: str | None, in_process: bool, wait: bool, timeout: int) -> None:
    """Launch campaign CODE (launch check and guards first), then generate its assignments and first tasks."""
    from campaigns import services
    from org.models import Staff
    from org.scope import Forbidden, Scope
    from workflow.errors import WorkflowError

    celery = current_app.extensions["celery"]
    eager_before = celery.conf.task_always_eager
    if in_process:
        celery.conf.task_always_eager = True
    try:
        with db.transaction() as session:
            campaign = _campaign_by_code(session, code)
            actor = campaign.owner
            if actor_no:
                actor = session.scalar(select(Staff).where(Staff.staff_no == actor_no))
                if actor is None:
                    _fail(f"error: no staff member {actor_no!r}", 2)
            try:
                services.require_director_of(Scope.of(session, actor), campaign)
            except Forbidden as exc:
                _fail(f"refused: {actor.staff_no}: {exc}", 1)
            progress = services.launch(session, campaign, actor.id)
            progress_id, state = progress.id, campaign.state
    except WorkflowError as exc:
        _fail(f"refused ({exc.http_status}): {exc}", 1)
    finally:
        celery.conf.task_always_eager = eager_before
    click.echo(f"{code}: {state}; generating assignments and first tasks (job {progress_id})")
    if wait:
        _follow(progress_id, timeout)


def _follow(progress_id: int, timeout: int) -> None:
    """Show the job's progress until it is done or failed."""
    from workflow.models import JobProgress

    deadline = time.monotonic() + timeout
    shown = 0
    with click.progressbar(length=100, label="launch", show_percent=True) as bar:
        while True:
            with db.transaction() as session:
                p = session.get(JobProgress, progress_id)
                state, percent, message, result = p.state, p.percent, p.message, p.result
            if percent > shown:
                bar.update(percent - shown)
                shown = percent
            if state in ("done", "failed") or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    if state == "failed":
        _fail(f"the generation job failed: {message}", 1)
    if state != "done":
        _fail(f"still {state} after {timeout}s (is a worker running? `campaignflow worker`)", 1)
    click.echo("done: " + ", ".join(f"{k} {v}" for k, v in (result or {}).items()))


@campaigns_cli.command("list")
@click.option("--state", help="only campaigns in this state")
@with_appcontext
def list_campaigns(state: str | None) -> None:
    """List campaigns: code, state, kind, period, assignments, name."""
    from campaigns.models import Assignment, Campaign

    with db.transaction() as session:
        counts = dict(
            session.execute(
                select(Assignment.campaign_id, func.count()).group_by(Assignment.campaign_id)
            ).all()
        )
        stmt = select(Campaign).order_by(Campaign.start_date.desc(), Campaign.code)
        if state:
            stmt = stmt.where(Campaign.state == state)
        rows = [
            (c.code, c.state, c.kind, f"{c.start_date}–{c.end_date}", str(counts.get(c.id, 0)), c.name)
            for c in session.scalars(stmt)
        ]
    if not rows:
        click.echo("no campaigns")
        return
    header = ("code", "state", "kind", "period", "assigned", "name")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(5)]
    for r in [header, *rows]:
        click.echo("  ".join(v.ljust(w) for v, w in zip(r[:5], widths, strict=True)) + "  " + r[5])


COMMANDS = [campaigns_cli]
