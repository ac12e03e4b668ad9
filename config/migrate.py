"""Running Alembic from code: ``campaignflow db upgrade`` and the test suite use this."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from alembic import command
from alembic.config import Config

from config.settings import PROJECT_ROOT

#: The schema is one initial revision while the product has no production database yet;
#: hand-written revisions (database triggers, data changes) follow it.
INITIAL_REVISION = "0001"


def alembic_config(url: str) -> Config:
    cfg = Config(str(PROJECT_ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    command.downgrade(alembic_config(url), revision)


def regenerate_initial() -> Path:
    """Rewrite the initial revision from the models (autogenerate against an empty SQLite file)."""
    versions = PROJECT_ROOT / "migrations" / "versions"
    target = versions / f"{INITIAL_REVISION}_initial.py"
    if target.exists():
        target.unlink()
    with tempfile.TemporaryDirectory() as tmp:
        # revisions written by hand after the initial one are set aside, then put back
        aside = Path(tmp) / "aside"
        aside.mkdir()
        later = [p for p in versions.glob("*.py")]
        for p in later:
            p.rename(aside / p.name)
        try:
            url = f"sqlite:///{os.path.join(tmp, 'empty.sqlite')}"
            command.revision(
                alembic_config(url), message="initial", autogenerate=True, rev_id=INITIAL_REVISION, head="base"
            )
        finally:
            for p in later:
                (aside / p.name).rename(versions / p.name)
    produced = next(versions.glob(f"{INITIAL_REVISION}_*.py"))
    if produced != target:
        produced.rename(target)
    return target
