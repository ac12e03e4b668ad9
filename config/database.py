"""Declarative base, engine and sessions, and ``run_after_commit``.

Domain packages import :class:`Base` and take a ``Session`` argument; they never import Flask.
The entrypoint (request, job, CLI command) commits once; services only flush.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Integer, MetaData, Numeric, create_engine, event
from sqlalchemy.dialects import registry as _dialects
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Session, scoped_session, sessionmaker

# SQLAlchemy 2.1 made psycopg 3 the driver of a bare ``postgresql://`` URL; the product ships
# psycopg2 (pyproject), so bare URLs stay on it unless psycopg 3 is installed.
if importlib.util.find_spec("psycopg") is None:
    _dialects.register("postgresql", "sqlalchemy.dialects.postgresql.psycopg2", "PGDialect_psycopg2")

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: Money: NUMERIC(18,2) in the database, ``Decimal`` in Python, never float.
Money = Numeric(18, 2, asdecimal=True)
#: An identity column: BIGINT on PostgreSQL, INTEGER (rowid alias) on SQLite.
BigId = BigInteger().with_variant(Integer(), "sqlite")


def now_local() -> dt.datetime:
    """The union's wall-clock time (Asia/Shanghai), naive. Every stored timestamp uses it, so
    history, audit, follow-ups and appointments read alike on every page and export."""
    from config import clock

    return clock.now()


class Base(DeclarativeBase):
    """Base of every model; constraint names follow :data:`NAMING_CONVENTION`."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        Decimal: Money,
        dict[str, Any]: JSON,
        list[str]: JSON,
        dt.datetime: DateTime(),
    }


def make_engine(url: str, **kw: Any) -> Engine:
    """Create an engine; SQLite gets WAL, a busy timeout, foreign keys and real transactions."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, **kw)

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # let SQLAlchemy emit BEGIN (savepoints work)
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN")

        return engine
    kw.setdefault("pool_pre_ping", True)
    return create_engine(url, **kw)


class Database:
    """The process's engine and scoped session, configured once from settings."""

    def __init__(self) -> None:
        self.engine: Engine | None = None
        self.factory = sessionmaker(expire_on_commit=False)
        self.session = scoped_session(self.factory)

    def configure(self, url: str, **kw: Any) -> Engine:
        if self.engine is not None and str(self.engine.url) == url:
            return self.engine
        if self.engine is not None:
            self.session.remove()
            self.engine.dispose()
        self.engine = make_engine(url, **kw)
        self.factory.configure(bind=self.engine)
        return self.engine

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A unit of work for jobs and CLI commands on its own session: commit on success,
        roll back on error. Independent of the request's scoped session (an eager job sent
        after a request's commit must not reuse it)."""
        session = self.factory()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()


db = Database()

_AFTER_COMMIT_KEY = "campaignflow_after_commit"


def run_after_commit(session: Session, fn: Callable[[], Any]) -> None:
    """Run ``fn`` once the session's transaction commits; drop it on rollback.

    Jobs are sent this way, so a rolled-back launch never enqueues its generation job.
    """
    session.info.setdefault(_AFTER_COMMIT_KEY, []).append(fn)


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    callbacks = session.info.pop(_AFTER_COMMIT_KEY, [])
    for fn in callbacks:
        fn()


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(_AFTER_COMMIT_KEY, None)


DOMAIN_PACKAGES = ("workflow", "org", "customers", "campaigns", "tasks", "appraisal")


def import_models() -> None:
    """Import every domain package's ``models`` and ``machine`` modules (metadata and workflows).

    Names are looked up at run time so this module depends on no domain package.
    """
    import importlib
    import pkgutil

    for pkg_name in DOMAIN_PACKAGES:
        pkg = importlib.import_module(pkg_name)
        for info in pkgutil.iter_modules(pkg.__path__):
            if info.name == "models" or info.name.endswith("_models") or info.name == "machine" or info.name.endswith("_machine"):
                importlib.import_module(f"{pkg_name}.{info.name}")
    # then each package's own step over the whole schema (org: the personal-information classes)
    for pkg_name in DOMAIN_PACKAGES:
        hook = getattr(importlib.import_module(pkg_name), "on_models_imported", None)
        if hook is not None:
            hook(Base.metadata)
