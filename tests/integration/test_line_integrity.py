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
import threading
import time
from decimal import Decimal
from typing import Any

import psycopg2
import pytest
from sqlalchemy import delete, func, insert, select, text, update
from sqlalchemy.exc import IntegrityError, NotSupportedError
from sqlalchemy.orm import Session

from appraisal.models import Dispute, IncentiveRun, StatementLine
from campaigns.models import Campaign
from config.database import db, make_engine
from org.models import Branch, Staff
from tests.conftest import USE_PG

INTEGRITY = (IntegrityError, psycopg2.IntegrityError)


@pytest.fixture
def parents(session: Session) -> dict[str, Any]:
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


@pytest.mark.skipif(not USE_PG, reason="TRUNCATE is PostgreSQL's")
def test_truncating_a_parent_alone_is_refused(session, parents) -> None:  # noqa: ANN001
    write_lines(session, [line(parents)])
    session.commit()
    for table in ("staff", "branch", "campaign", "incentive_run"):
        with pytest.raises(IntegrityError) as caught:
            session.execute(text(f"TRUNCATE {table} CASCADE"))
        assert "truncate statement_line with it" in refusal(caught.value)
        session.rollback()
    assert count_lines(session) == 1


# ---------------------------------------------------------------------------------------------
# races (PostgreSQL: real row locks between two sessions)

pg_only = pytest.mark.skipif(not USE_PG, reason="two sessions racing on row locks: PostgreSQL")


class Other(threading.Thread):
    """Runs ``work(session)`` in its own session and commits; records 'ok' or the error's SQLSTATE."""

    def __init__(self, engine: Any, work: Any) -> None:
        super().__init__(daemon=True)
        self.engine, self.work = engine, work
        self.pid: int | None = None
        self.outcome: str | None = None
        self.message = ""

    def run(self) -> None:
        session = db.factory(bind=self.engine)
        try:
            self.pid = session.scalar(text("SELECT pg_backend_pid()"))
            self.work(session)
            session.commit()
            self.outcome = "ok"
        except INTEGRITY as exc:
            session.rollback()
            orig = getattr(exc, "orig", exc)
            self.outcome, self.message = orig.pgcode, str(orig)
        finally:
            session.close()


def wait_until_blocked(engine: Any, thread: Other, timeout: float = 20.0) -> None:
    """Wait until ``thread``'s connection waits for a row lock (it started its statement and is stuck)."""
    deadline = time.monotonic() + timeout
    with engine.connect() as conn:
        while time.monotonic() < deadline:
            if thread.pid is not None:
                waiting = conn.execute(
                    text("SELECT wait_event_type FROM pg_stat_activity WHERE pid = :pid"), {"pid": thread.pid}
                ).scalar()
                if waiting == "Lock":
                    return
            if not thread.is_alive():
                raise AssertionError(f"the other session finished without waiting: {thread.outcome}")
            time.sleep(0.02)
    raise AssertionError("the other session never waited for the lock")


def dangling(session: Session) -> int:
    return int(
        session.scalar(
            text(
                "SELECT count(*) FROM statement_line l WHERE NOT EXISTS (SELECT 1 FROM staff s WHERE s.id = l.staff_id)"
                " OR NOT EXISTS (SELECT 1 FROM incentive_run r WHERE r.id = l.run_id)"
            )
        )
        or 0
    )


@pytest.fixture
def engine(database_url: str) -> Any:
    engine = make_engine(database_url, pool_size=4, max_overflow=0)
    yield engine
    engine.dispose()


@pg_only
def test_a_staff_delete_waits_for_the_lines_being_written_then_is_refused(session, parents, engine) -> None:  # noqa: ANN001
    write_lines(session, [line(parents, f"r{i}") for i in range(100)])  # not committed: KEY SHARE held
    deleter = Other(engine, lambda s: s.execute(delete(Staff).where(Staff.id == parents["staff"])))
    deleter.start()
    wait_until_blocked(engine, deleter)
    session.commit()
    deleter.join(30)
    assert deleter.outcome == "23503", deleter.outcome
    assert "staff member" in deleter.message and "cannot be deleted" in deleter.message
    assert session.get(Staff, parents["staff"]) is not None
    assert count_lines(session) == 100 and dangling(session) == 0


@pg_only
def test_lines_written_while_their_staff_member_is_deleted_fail_once_the_delete_commits(
    session, parents, engine
) -> None:  # noqa: ANN001
    session.execute(delete(Campaign).where(Campaign.id == parents["campaign"]))
    session.commit()
    session.execute(delete(Staff).where(Staff.id == parents["staff"]))  # not committed: the row is locked
    writer = Other(
        engine, lambda s: write_lines(s, [line(parents, f"r{i}", campaign_id=None) for i in range(100)])
    )
    writer.start()
    wait_until_blocked(engine, writer)
    session.commit()
    writer.join(30)
    assert writer.outcome == "23503", writer.outcome
    assert f"there is no staff member with id {parents['staff']}" in writer.message
    assert count_lines(session) == 0


@pg_only
def test_a_run_deleted_while_its_lines_are_written_takes_the_committed_lines(
    session, parents, engine
) -> None:  # noqa: ANN001
    write_lines(session, [line(parents, f"r{i}") for i in range(100)])  # KEY SHARE on the run row
    deleter = Other(
        engine, lambda s: s.execute(delete(IncentiveRun).where(IncentiveRun.id == parents["run"]))
    )
    deleter.start()
    wait_until_blocked(engine, deleter)
    session.commit()
    deleter.join(30)
    assert deleter.outcome == "ok", deleter.message
    assert count_lines(session) == 0 and dangling(session) == 0


@pg_only
def test_lines_deleted_while_a_dispute_is_raised_are_kept(session, parents, engine) -> None:  # noqa: ANN001
    write_lines(session, [line(parents, f"r{i}") for i in range(10)])
    session.commit()
    first = min(session.scalars(select(StatementLine.id)))
    session.add(dispute_for(parents, first))
    session.flush()  # not committed: the dispute's check holds KEY SHARE on the line
    rewrite = Other(
        engine, lambda s: s.execute(delete(StatementLine).where(StatementLine.run_id == parents["run"]))
    )
    rewrite.start()
    wait_until_blocked(engine, rewrite)
    session.commit()
    rewrite.join(30)
    assert rewrite.outcome == "23503", rewrite.outcome
    assert f"statement line {first} is disputed" in rewrite.message
    assert count_lines(session) == 10


@pg_only
def test_racing_writers_and_deleters_never_leave_a_dangling_line(session, parents, engine) -> None:  # noqa: ANN001
    """Released together, many times: whoever wins, every line names an existing staff member and run."""
    session.execute(delete(Campaign).where(Campaign.id == parents["campaign"]))
    session.commit()
    winners = {True: 0, False: 0}
    for round_ in range(16):
        staff = Staff(staff_no=f"R{round_:04d}", name="竞争", branch_id=parents["branch"])
        session.add(staff)
        session.commit()
        staff_id = staff.id
        p = dict(parents, staff=staff_id, campaign=None)
        barrier = threading.Barrier(2, timeout=30)

        # a head start of 0-40 ms for one side or the other, so that both orders happen
        pause = {"writer": 0.0, "deleter": 0.0}
        pause["deleter" if round_ % 2 else "writer"] = (round_ % 5) * 0.01

        def write(
            s: Session, p: dict[str, Any] = p, barrier: threading.Barrier = barrier, pause=pause
        ) -> None:  # noqa: ANN001
            barrier.wait()
            time.sleep(pause["writer"])
            write_lines(s, [line(p, f"r{i}") for i in range(200)])

        def remove(
            s: Session, staff_id: int = staff_id, barrier: threading.Barrier = barrier, pause=pause
        ) -> None:  # noqa: ANN001
            barrier.wait()
            time.sleep(pause["deleter"])
            s.execute(delete(Staff).where(Staff.id == staff_id))

        writer, deleter = Other(engine, write), Other(engine, remove)
        writer.start()
        deleter.start()
        writer.join(60)
        deleter.join(60)
        assert {writer.outcome, deleter.outcome} in ({"ok", "23503"},), (writer.outcome, deleter.outcome)
        session.expire_all()
        assert dangling(session) == 0
        # exactly one of them won: the lines with their staff member, or neither
        lines = int(session.scalar(select(func.count()).where(StatementLine.staff_id == staff_id)) or 0)
        assert lines == (200 if writer.outcome == "ok" else 0)
        assert (session.get(Staff, staff_id) is None) == (deleter.outcome == "ok")
        winners[writer.outcome == "ok"] += 1
    print(f"writer won {winners[True]} rounds, deleter {winners[False]}")


@pg_only
def test_deletes_that_must_see_concurrent_commits_are_refused_outside_read_committed(
    session, parents, engine
) -> None:  # noqa: ANN001
    """REPEATABLE READ would check against a snapshot older than a line committed while it waited: refused."""
    write_lines(session, [line(parents)])
    session.commit()
    statements = {
        "deleting statement lines": delete(StatementLine),
        "deleting an incentive run": delete(IncentiveRun).where(IncentiveRun.id == parents["other_run"]),
        "deleting or renumbering a row of branch": delete(Branch).where(
            Branch.code == "nothing-refers-to-it"
        ),
    }
    session.add(Branch(code="nothing-refers-to-it", name="空"))
    session.commit()
    for what, statement in statements.items():
        with engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn:
            with pytest.raises(NotSupportedError) as caught:
                conn.execute(statement)
            assert f"{what} is refused in a REPEATABLE READ transaction" in str(caught.value)
    with engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn:
        conn.execute(delete(StatementLine).where(StatementLine.id == -1))  # no row: nothing to check
        runs_rows = [line(parents, "rr")]
        conn.execute(StatementLine.__table__.insert(), runs_rows)  # inserts are checked under any level
        conn.commit()
    assert count_lines(session) == 2
    session.execute(statements["deleting or renumbering a row of branch"])  # READ COMMITTED: fine
    session.commit()
