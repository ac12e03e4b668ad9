"""The migrations: upgrade, downgrade to nothing and upgrade again on the test's database (SQLite
or PostgreSQL), and the models match what the migrations build (autogenerate finds nothing)."""

from __future__ import annotations

from decimal import Decimal

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, select

from config.database import Base, make_engine
from config.migrate import alembic_config, downgrade, upgrade


def tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def current_revision(url: str) -> str | None:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def differences(url: str) -> list[object]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(
                conn, opts={"compare_type": True, "compare_server_default": False}
            )
            return list(compare_metadata(ctx, Base.metadata))
    finally:
        engine.dispose()


def head(url: str) -> str:
    return str(ScriptDirectory.from_config(alembic_config(url)).get_current_head())


def test_upgrade_downgrade_upgrade(database_url: str) -> None:
    expected = {t.name for t in Base.metadata.sorted_tables}
    assert current_revision(database_url) == head(database_url)  # the fixture migrated it
    assert tables(database_url) == expected

    downgrade(database_url, "base")
    assert tables(database_url) == set()
    assert current_revision(database_url) is None

    upgrade(database_url)
    assert tables(database_url) == expected
    assert current_revision(database_url) == head(database_url)
    upgrade(database_url)  # already at head: nothing to do, no error


def test_models_match_the_migrations(database_url: str) -> None:
    assert differences(database_url) == []


def test_migration_chain_is_linear() -> None:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    assert len(script.get_heads()) == 1
    revisions = list(script.walk_revisions())
    assert revisions[-1].revision == "0001" and revisions[-1].down_revision is None


def test_0004_backfills_the_totals_of_existing_events(database_url: str, session, union) -> None:  # noqa: ANN001
    """Events stored before 0004 get their totals at upgrade; downgrade drops table and trigger."""
    from sqlalchemy import text

    from appraisal import ledger
    from appraisal.models import LedgerTotal

    session.close()
    downgrade(database_url, "0003")
    assert "ledger_total" not in tables(database_url)
    engine = make_engine(database_url)
    try:
        with engine.begin() as conn:
            for i, (staff, measure, quantity, amount, customer) in enumerate(
                [
                    (union.m1.id, "accounts_opened", 2, "0", None),
                    (union.m1.id, "accounts_opened", 3, "0", None),
                    (union.m1.id, "payroll_volume", 0, "10.25", None),
                    (union.m2.id, "complaints", 1, "0", None),
                    (union.m2.id, "payroll_volume", 0, "-4.10", None),
                ]
            ):
                conn.execute(
                    text(
                        "INSERT INTO ledger_event (event_id, occurred_on, month, staff_id, customer_id, measure, "
                        "quantity, amount, source, created_at) VALUES (:e, '2026-01-05', '2026-01', :s, :c, :m, "
                        ":q, :a, 'import', CURRENT_TIMESTAMP)"
                    ),
                    {"e": f"B{i}", "s": staff, "c": customer, "m": measure, "q": quantity, "a": amount},
                )
    finally:
        engine.dispose()
    upgrade(database_url)
    assert current_revision(database_url) == head(database_url)
    totals = {
        (t.staff_id, t.measure): (t.events, t.quantity, t.amount)
        for t in session.scalars(select(LedgerTotal).where(LedgerTotal.month == "2026-01"))
    }
    assert totals == {
        (union.m1.id, "accounts_opened"): (2, 5, Decimal("0.00")),
        (union.m1.id, "payroll_volume"): (1, 0, Decimal("10.25")),
        (union.m2.id, "complaints"): (1, 1, Decimal("0.00")),
        (union.m2.id, "payroll_volume"): (1, 0, Decimal("-4.10")),
    }
    assert ledger.check_totals(session) == []
