"""The audit log is append-only in the database and hash-chained (RELIABILITY AUD-02): a changed
or removed row is found by ``campaignflow audit verify`` and by the nightly job."""

from __future__ import annotations

import contextlib
import threading

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from config.database import db
from org import audit as chain
from org.jobs import check_audit_chain
from org.models import AuditLog
from org.services import audit
from tasks.models import Notification
from tasks.retry import retry_busy


def _write(session, union, n=3):
    for i in range(n):
        audit(
            session,
            union.m1.id,
            "reveal",
            "customer",
            100 + i,
            fields=["phone"],
            reason=f"核对 {i}",
            detail={"amount": "12.30", "n": i},
        )
    session.commit()


@contextlib.contextmanager
def _triggers_off(session):
    """What an intruder with the database owner's rights could do: switch the guard off."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        session.execute(text("ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update"))
    else:
        session.execute(text("DROP TRIGGER audit_log_no_update"))
        session.execute(text("DROP TRIGGER audit_log_no_delete"))
    session.commit()
    try:
        yield
    finally:
        session.rollback()
        if dialect == "postgresql":
            session.execute(text("ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_update"))
            session.commit()


def test_rows_chain_one_after_the_other(session, union):
    _write(session, union)
    rows = list(session.scalars(select(AuditLog).order_by(AuditLog.id)))
    assert rows[0].prev_hash == chain.GENESIS
    assert [r.prev_hash for r in rows[1:]] == [r.hash for r in rows[:-1]]
    assert all(len(r.hash) == 64 for r in rows)
    report = chain.verify(session)
    assert report.intact and report.checked == 3


@pytest.mark.parametrize(
    "statement", ["UPDATE audit_log SET reason = 'nothing happened'", "DELETE FROM audit_log"]
)
def test_the_database_refuses_changes(session, union, statement):
    _write(session, union, 1)
    with pytest.raises(DBAPIError, match="append-only"):
        session.execute(text(statement))
    session.rollback()
    assert session.scalar(select(AuditLog.reason)) == "核对 0"


def test_a_changed_row_is_found_by_the_cli_and_the_nightly_job(runner, session, union):
    _write(session, union)
    assert runner.invoke(args=["audit", "verify"]).exit_code == 0
    second = session.scalars(select(AuditLog.id).order_by(AuditLog.id)).all()[1]
    with _triggers_off(session):
        session.execute(text("UPDATE audit_log SET reason = 'routine' WHERE id = :id"), {"id": second})
        session.commit()
        r = runner.invoke(args=["audit", "verify"])
        assert r.exit_code == 1 and f"audit row #{second} was changed" in r.output
        assert check_audit_chain() is False
        session.expire_all()
        told = session.scalars(select(Notification).where(Notification.kind == "audit")).all()
        assert [n.staff_id for n in told] == [union.admin.id] and f"#{second}" in told[0].text
        assert check_audit_chain() is False  # told once per broken row
        assert (
            session.scalar(select(func.count()).select_from(Notification).where(Notification.kind == "audit"))
            == 1
        )


def test_a_removed_row_breaks_the_link_after_it(session, union):
    _write(session, union)
    ids = session.scalars(select(AuditLog.id).order_by(AuditLog.id)).all()
    with _triggers_off(session):
        session.execute(text("DELETE FROM audit_log WHERE id = :id"), {"id": ids[1]})
        session.commit()
        report = chain.verify(session)
    assert not report.intact and report.broken_at == ids[2] and "removed or changed" in report.problem


def test_concurrent_writers_never_fork_the_chain(app, session, union):
    staff_id = union.m1.id
    session.commit()
    errors: list[BaseException] = []

    def writer(k: int) -> None:
        try:
            with app.app_context():
                for i in range(5):

                    def work(i: int = i) -> None:
                        with db.transaction() as s:
                            audit(s, staff_id, "export", "customers", f"{k}-{i}")

                    retry_busy(db.session, work, attempts=50)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    assert session.scalar(select(func.count()).select_from(AuditLog)) == 20
    report = chain.verify(session)
    assert report.intact and report.checked == 20
