"""Appraisal endpoints of the JSON API: my statement, incentive runs."""

from __future__ import annotations

from typing import Any

from flask import abort
from pydantic import BaseModel, Field
from sqlalchemy import or_, select

from appraisal import runs
from appraisal.models import IncentiveRun, RunState
from campaigns.models import Campaign
from config.database import db
from web.api import TAGS, api, api_scope, api_staff


class LineOut(BaseModel):
    id: int
    campaign_code: str | None
    rule_id: str
    rule_version: int | None
    kind: str
    measure: str | None
    input: str | None
    target: str | None
    amount: str = Field(description="yuan, two decimals, as text (exact)")
    what_if: str | None = Field(None, description="what one more result would add")
    formula: str
    explanation: str
    explanation_zh: str


class StatementOut(BaseModel):
    month: str | None
    run_state: str | None
    total: str
    lines: list[LineOut]


class StatementQuery(BaseModel):
    month: str | None = Field(None, pattern=r"^\d{4}-(0[1-9]|1[0-2])$")


class RunOut(BaseModel):
    id: int
    month: str
    scope: str
    state: str
    line_count: int
    staff_count: int
    total: str
    rule_versions: dict[str, int] | None
    result_hash: str | None


class RunList(BaseModel):
    items: list[RunOut]


def _text(value: Any) -> str | None:
    return None if value is None else f"{value:f}"


@api.get("/appraisal/statement", tags=[TAGS["appraisal"]], responses={200: StatementOut})
def my_statement(query: StatementQuery) -> Any:
    """The caller's own statement of a month (default: the latest computed run), every line explained."""
    staff = api_staff()
    stmt = select(IncentiveRun).where(
        IncentiveRun.state != RunState.computing,
        or_(IncentiveRun.scope_branch_id.is_(None), IncentiveRun.scope_branch_id == staff.branch_id),
    )
    if query.month:
        stmt = stmt.where(IncentiveRun.month == query.month)
    run = db.session.scalars(
        stmt.order_by(IncentiveRun.month.desc(), IncentiveRun.scope_branch_id.desc().nulls_last())
    ).first()
    if run is None:
        return StatementOut(month=query.month, run_state=None, total="0.00", lines=[]).model_dump(mode="json")
    lines = runs.statement(db.session, run, staff.id)
    whatifs = runs.what_if(db.session, lines)
    codes = dict(db.session.execute(select(Campaign.id, Campaign.code)).all())
    total = sum((ln.amount for ln in lines), start=0)
    return StatementOut(
        month=run.month,
        run_state=run.state,
        total=f"{total:.2f}",
        lines=[
            LineOut(
                id=ln.id,
                campaign_code=codes.get(ln.campaign_id),
                rule_id=ln.rule_id,
                rule_version=ln.rule_version,
                kind=ln.kind,
                measure=ln.measure,
                input=_text(ln.input),
                target=_text(ln.target),
                amount=f"{ln.amount:.2f}",
                what_if=_text(whatifs.get(ln.id)),
                formula=ln.formula,
                explanation=ln.explanation,
                explanation_zh=ln.explanation_zh,
            )
            for ln in lines
        ],
    ).model_dump(mode="json")


@api.get("/appraisal/runs", tags=[TAGS["appraisal"]], responses={200: RunList})
def list_runs() -> Any:
    """Incentive runs in the caller's scope (checkers, directors, admins), newest month first."""
    scope = api_scope()
    if not scope.has("checker", "director", "admin"):
        abort(403)
    branches = scope.branches_for("checker", "director", "admin")
    stmt = select(IncentiveRun).order_by(IncentiveRun.month.desc(), IncentiveRun.scope_key)
    if branches is not None:
        stmt = stmt.where(IncentiveRun.scope_branch_id.in_(branches))
    items = [
        RunOut(
            id=r.id,
            month=r.month,
            scope=r.scope_key,
            state=r.state,
            line_count=r.line_count,
            staff_count=r.staff_count,
            total=f"{r.total:.2f}",
            rule_versions=r.rule_versions,
            result_hash=r.result_hash,
        )
        for r in db.session.scalars(stmt.limit(120))
    ]
    return RunList(items=items).model_dump(mode="json")
