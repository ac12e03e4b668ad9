"""Statement-line integrity under PostgreSQL only: TRUNCATE, and two real sessions racing on row locks.

Collected only when the suite runs on PostgreSQL (tests/conftest.py ignores ``*_pgonly.py`` on
SQLite, which has neither TRUNCATE nor row locks: its writers take turns on the whole file). The
checks themselves are tested on both databases in test_line_integrity.py.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from sqlalchemy import delete, func, select, text
from sqlalchemy.exc import IntegrityError, NotSupportedError
from sqlalchemy.orm import Session

from appraisal.models import IncentiveRun, StatementLine
from campaigns.models import Campaign
from config.database import db, make_engine
from org.models import Branch, Staff
from tests.integration.test_line_integrity import (
    INTEGRITY,
    count_lines,
    dispute_for,
    line,
    make_parents,
    refusal,
    write_lines,
)


@pytest.fixture
def parents(session: Session) -> dict[str, Any]:
    return make_parents(session)


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
