"""Statement lines keep a foreign key's guarantees without row-by-row foreign keys (migration 0005).

``statement_line.run_id/staff_id/branch_id/campaign_id`` and ``dispute.line_id`` are checked by
triggers: once per statement on PostgreSQL (transition tables), per row on SQLite. These tests
drive the database directly, on both databases, with single statements as the run uses them (a
COPY on PostgreSQL, as :func:`appraisal.runs.insert_lines` writes lines; one multi-row INSERT on
both; plain SQL deletes); the races at the end need PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import io
import sqlite3
from decimal import Decimal
from typing import Any

import psycopg2
import pytest
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from appraisal.models import Dispute, IncentiveRun, StatementLine
from campaigns.models import Campaign
from org.models import Branch, Staff
from tests.conftest import USE_PG

INTEGRITY = (IntegrityError, psycopg2.IntegrityError)


@pytest.fixture
def parents(session: Session) -> dict[str, Any]:
    return make_parents(session)


def make_parents(session: Session) -> dict[str, Any]:
    """A branch, a staff member, a campaign and a run that nothing else refers to (committed)."""
    branch = Branch(code="BX1", name="测试信用社")
    session.add(branch)
    session.flush()
    staff = Staff(staff_no="X0001", name="测试", branch_id=branch.id)
    session.add(staff)
    session.flush()
    campaign = Campaign(
        code="X-CAMP",
        name="测试活动",
        kind="deposit_drive",
        owner_id=staff.id,
        all_branches=True,
        start_date=dt.date(2026, 10, 1),
        end_date=dt.date(2026, 12, 31),
    )
    run = IncentiveRun(month="2026-10", scope_key="union", state="computed")
    other = IncentiveRun(month="2026-09", scope_key="union", state="computed")
    session.add_all([campaign, run, other])
    session.commit()
    return {
        "branch": branch.id,
        "staff": staff.id,
        "campaign": campaign.id,
        "run": run.id,
        "other_run": other.id,
    }


def line(p: dict[str, Any], rule: str = "r1", **override: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "run_id": p["run"],
        "staff_id": p["staff"],
        "branch_id": p["branch"],
        "campaign_id": p["campaign"],
        "rule_id": rule,
        "rule_version": 1,
        "kind": "piece_rate",
        "measure": "accounts_opened",
        "input": Decimal("3.0000"),
        "target": None,
        "computed": Decimal("60.00"),
        "amount": Decimal("60.00"),
        "limited_by": None,
        "budget_scaled_from": None,
        "what_if": None,
        "formula": "rate × count",
        "explanation": "accounts opened 3 × 20.00 = 60.00",
        "explanation_zh": "开户数 3 × 20.00 = 60.00",
        "dispute_id": None,
    }
    row.update(override)
    return row


def write_lines(session: Session, rows: list[dict[str, Any]], how: str = "copy") -> None:
    """Insert lines with ONE statement: COPY (PostgreSQL; how a run writes them) or one multi-row INSERT."""
    if how == "copy" and USE_PG:
        columns = list(rows[0])
        data = "".join("\t".join("\\N" if r[c] is None else str(r[c]) for c in columns) + "\n" for r in rows)
        with session.connection().connection.driver_connection.cursor() as cur:
            cur.copy_expert(f"COPY statement_line ({', '.join(columns)}) FROM STDIN", io.StringIO(data))
    else:
        session.execute(insert(StatementLine).values(rows))


def count_lines(session: Session, run_id: int | None = None) -> int:
    stmt = select(func.count()).select_from(StatementLine)
    if run_id is not None:
        stmt = stmt.where(StatementLine.run_id == run_id)
    return int(session.scalar(stmt) or 0)


def refusal(exc: BaseException) -> str:
    """The database's message; asserts it is a foreign-key violation (23503) or SQLite's constraint abort."""
    orig = getattr(exc, "orig", exc)
    if USE_PG:
        assert orig.pgcode == "23503", orig.pgcode
    else:
        assert isinstance(orig, sqlite3.IntegrityError)
    return str(orig)


def dispute_for(p: dict[str, Any], line_id: int) -> Dispute:
    return Dispute(
        line_id=line_id,
        run_id=p["run"],
        month="2026-10",
        staff_id=p["staff"],
        branch_id=p["branch"],
        text="one account is missing",
        deadline=dt.date(2026, 11, 30),
    )


# ---------------------------------------------------------------------------------------------
# inserting lines


MISSING = {"run_id": ("incentive run", 990001), "staff_id": ("staff member", 990002),
           "branch_id": ("branch", 990003), "campaign_id": ("campaign", 990004)}  # fmt: skip


@pytest.mark.parametrize("how", ["copy", "values"] if USE_PG else ["values"])
@pytest.mark.parametrize("column", list(MISSING))
def test_a_batch_with_one_line_naming_a_missing_parent_writes_nothing(session, parents, column, how) -> None:  # noqa: ANN001
    called, missing = MISSING[column]
    write_lines(session, [line(parents, "ok-before")])
    batch = [line(parents, "a"), line(parents, "b", **{column: missing}), line(parents, "c")]
    with pytest.raises(INTEGRITY) as caught, session.begin_nested():
        write_lines(session, batch, how)  # one statement: COPY, or INSERT … VALUES (…), (…), (…)
    message = refusal(caught.value)
    assert f"statement_line.{column}" in message
    assert f"there is no {called}" in message
    if USE_PG:  # one message per statement, naming the id (SQLite's RAISE takes a fixed text)
        assert f"with id {missing}" in message
    # the whole statement was refused, not just the bad line; the earlier statement stands
    assert count_lines(session) == 1
    write_lines(session, [line(parents, "a"), line(parents, "c")])  # the good lines alone pass
    session.commit()
    assert count_lines(session) == 3


def test_a_batch_naming_many_existing_parents_and_no_campaign_passes(session, parents) -> None:  # noqa: ANN001
    staff = [Staff(staff_no=f"X1{i:03d}", name="员工", branch_id=parents["branch"]) for i in range(5)]
    session.add_all(staff)
    session.flush()
    rows = [
        line(parents, f"r{i}", staff_id=staff[i % 5].id, campaign_id=None if i % 2 else parents["campaign"])
        for i in range(50)
    ]
    write_lines(session, rows)
    session.commit()
    assert count_lines(session, parents["run"]) == 50


def test_an_orm_line_naming_a_missing_staff_member_is_refused(session, parents) -> None:  # noqa: ANN001
    row = line(parents, staff_id=990002)
    session.add(StatementLine(**row))
    with pytest.raises(IntegrityError) as caught:
        session.flush()
    assert "statement_line.staff_id" in refusal(caught.value)
    session.rollback()
    assert count_lines(session) == 0


def test_moving_a_line_to_a_missing_parent_is_refused(session, parents) -> None:  # noqa: ANN001
    write_lines(session, [line(parents)])
    session.commit()
    with pytest.raises(IntegrityError) as caught:
        session.execute(update(StatementLine).values(branch_id=990003))
    assert "statement_line.branch_id" in refusal(caught.value)
    session.rollback()
    session.execute(update(StatementLine).values(campaign_id=None))  # to no campaign is fine
    session.commit()


# ---------------------------------------------------------------------------------------------
# deleting parents


def fresh_parent(session: Session, parents: dict[str, Any], table: str) -> Any:
    """A staff member, branch or campaign that nothing refers to yet."""
    if table == "staff":
        row: Any = Staff(staff_no="X0009", name="新员工", branch_id=parents["branch"])
    elif table == "branch":
        row = Branch(code="BX9", name="新信用社")
    else:
        row = Campaign(code="X-NEW", name="新活动", kind="deposit_drive", owner_id=parents["staff"],
                       all_branches=True, start_date=dt.date(2026, 10, 1), end_date=dt.date(2026, 12, 31))  # fmt: skip
    session.add(row)
    session.commit()
    return row


@pytest.mark.parametrize(("table", "model", "column"), [("staff", Staff, "staff_id"),
    ("branch", Branch, "branch_id"), ("campaign", Campaign, "campaign_id")])  # fmt: skip
def test_a_parent_that_lines_name_cannot_be_deleted(session, parents, table, model, column) -> None:  # noqa: ANN001
    key = fresh_parent(session, parents, table).id
    write_lines(session, [line(parents, "r1", **{column: key}), line(parents, "r2")])
    session.commit()
    with pytest.raises(IntegrityError) as caught:
        session.execute(delete(model).where(model.id == key))
    message = refusal(caught.value)
    assert f"statement_line.{column}" in message and "cannot be deleted" in message
    if USE_PG:
        assert f" {key} is referred to" in message
    session.rollback()
    assert session.get(model, key) is not None
    with pytest.raises(IntegrityError) as caught:
        session.execute(update(model).where(model.id == key).values(id=key + 1000))
    assert "cannot be renumbered" in refusal(caught.value)
    session.rollback()
    # once no line names it, the same delete goes through (the other line is not in the way)
    session.execute(delete(StatementLine).where(StatementLine.rule_id == "r1"))
    session.execute(delete(model).where(model.id == key))
    session.commit()
    assert session.get(model, key) is None and count_lines(session) == 1


def test_deleting_a_run_deletes_its_lines_only(session, parents) -> None:  # noqa: ANN001
    write_lines(session, [line(parents, f"r{i}") for i in range(5)])
    write_lines(session, [line(parents, f"r{i}", run_id=parents["other_run"]) for i in range(3)])
    session.commit()
    session.execute(delete(IncentiveRun).where(IncentiveRun.id == parents["run"]))
    session.commit()
    assert count_lines(session, parents["run"]) == 0
    assert count_lines(session, parents["other_run"]) == 3


# ---------------------------------------------------------------------------------------------
# disputes


def test_disputed_lines_cannot_be_deleted_and_disputes_need_a_line(session, parents) -> None:  # noqa: ANN001
    write_lines(session, [line(parents, f"r{i}") for i in range(4)])
    session.commit()
    ids = sorted(session.scalars(select(StatementLine.id)))
    session.add(dispute_for(parents, ids[2]))
    session.commit()
    with pytest.raises(IntegrityError) as caught:  # the run's rewrite deletes every line at once
        session.execute(delete(StatementLine).where(StatementLine.run_id == parents["run"]))
    message = refusal(caught.value)
    assert "disputed" in message and "dispute.line_id" in message
    if USE_PG:
        assert f"statement line {ids[2]} is disputed" in message
    session.rollback()
    assert count_lines(session) == 4  # not even the undisputed ones went
    with pytest.raises(IntegrityError):  # nor does a run delete take disputed lines with it
        session.execute(delete(IncentiveRun).where(IncentiveRun.id == parents["run"]))
    session.rollback()
    session.execute(delete(StatementLine).where(StatementLine.id != ids[2]))  # undisputed lines may go
    session.commit()
    assert count_lines(session) == 1
    session.add(dispute_for(parents, 990005))
    with pytest.raises(IntegrityError) as caught:
        session.flush()
    message = refusal(caught.value)
    assert "dispute.line_id" in message and "no statement line" in message
    session.rollback()
    dispute = session.scalar(select(Dispute))
    assert dispute is not None
    with pytest.raises(IntegrityError):
        session.execute(update(Dispute).values(line_id=990005))
    session.rollback()
    with pytest.raises(IntegrityError):
        session.execute(update(StatementLine).values(id=ids[2] + 1000))
    session.rollback()
