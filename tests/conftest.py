"""Test harness: a real database per test (SQLite file copy, or PostgreSQL truncated), real app.

* ``CAMPAIGNFLOW_DATABASE_URL`` unset: SQLite. The migrations run once into a template file;
  each test gets a fresh copy (fast, and real commits and several connections work).
* ``CAMPAIGNFLOW_DATABASE_URL=postgresql://…``: a fresh database for the session, migrated
  once, every table truncated after each test.
Jobs run eagerly in-process unless a test starts a real worker (``tests/integration/test_worker*``).
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import close_all_sessions

from config.database import Base, db, import_models
from config.migrate import upgrade
from config.settings import Settings

import_models()

PG_URL = os.environ.get("CAMPAIGNFLOW_DATABASE_URL", "")
USE_PG = PG_URL.startswith("postgres")
#: tests that need PostgreSQL itself (TRUNCATE, row locks raced by two sessions) are not collected on SQLite
collect_ignore_glob = [] if USE_PG else ["integration/*_pgonly.py"]

pytest_plugins = ["tests.factories"]


@pytest.fixture(scope="session")
def database_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """SQLite: path of a migrated template file. PostgreSQL: URL of a fresh migrated database."""
    if USE_PG:
        name = f"campaignflow_test_{uuid.uuid4().hex[:10]}"
        admin_url = make_url(PG_URL).set(database="postgres")
        admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
        upgrade(url)
        yield url
        db.session.remove()
        if db.engine is not None:
            db.engine.dispose()
            db.engine = None
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    else:
        path = tmp_path_factory.mktemp("template") / "template.sqlite"
        upgrade(f"sqlite:///{path}")
        yield str(path)


@pytest.fixture
def database_url(database_template: str, tmp_path: Path) -> Iterator[str]:
    """A clean, migrated database for this test."""
    if USE_PG:
        yield database_template
        db.session.remove()
        close_all_sessions()  # a session left mid-transaction would block the TRUNCATE
        tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
        engine = db.configure(database_template)
        with engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    else:
        path = tmp_path / "test.sqlite"
        shutil.copyfile(database_template, path)
        yield f"sqlite:///{path}"
        db.session.remove()


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    env = {
        "CAMPAIGNFLOW_INSTANCE_DIR": str(tmp_path / "instance"),
        "CAMPAIGNFLOW_DATABASE_URL": database_url,
        "CAMPAIGNFLOW_SECRET_KEY": "test-secret-key-0123456789",
        "CAMPAIGNFLOW_CELERY_EAGER": "1",
        "CAMPAIGNFLOW_DEFAULT_LOCALE": "en",
    }
    if os.environ.get("CAMPAIGNFLOW_BROKER_URL"):
        env["CAMPAIGNFLOW_BROKER_URL"] = os.environ["CAMPAIGNFLOW_BROKER_URL"]
    return Settings.from_env(env)


@pytest.fixture
def app(settings: Settings):  # noqa: ANN201
    from web import create_app

    app = create_app(
        {"TESTING": True, "WTF_CSRF_ENABLED": False, "RATELIMIT_ENABLED": False}, settings=settings
    )
    with app.app_context():
        yield app
    db.session.remove()


@pytest.fixture
def csrf_app(settings: Settings):  # noqa: ANN201
    """The app with CSRF protection on, as in production."""
    from web import create_app

    app = create_app({"TESTING": True, "RATELIMIT_ENABLED": False}, settings=settings)
    with app.app_context():
        yield app
    db.session.remove()


@pytest.fixture
def client(app):  # noqa: ANN001, ANN201
    return app.test_client()


@pytest.fixture
def session(app):  # noqa: ANN001, ANN201
    """The scoped session the app and services use (commit freely: the database is per test)."""
    return db.session()


@pytest.fixture
def runner(app):  # noqa: ANN001, ANN201
    return app.test_cli_runner()
