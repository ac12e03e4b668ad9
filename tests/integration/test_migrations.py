"""The migrations: upgrade, downgrade to nothing and upgrade again on the test's database (SQLite
or PostgreSQL), and the models match what the migrations build (autogenerate finds nothing)."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

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
