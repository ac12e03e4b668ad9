"""Settings from the environment: safe embedded defaults, and a bad value stops start-up with a
message naming the variable."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from config.settings import PROJECT_ROOT, ConfigError, Settings


def env_for(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"CAMPAIGNFLOW_INSTANCE_DIR": str(tmp_path / "inst"), **extra}


def test_defaults_are_embedded_sqlite_and_sqlalchemy_broker(tmp_path: Path) -> None:
    s = Settings.from_env(env_for(tmp_path))
    inst = (tmp_path / "inst").resolve()
    assert s.instance_dir == inst and inst.is_dir()
    assert s.database_url == f"sqlite:///{inst / 'campaignflow.sqlite'}"
    assert s.is_sqlite
    assert s.broker_url == f"sqla+sqlite:///{inst / 'broker.sqlite'}"
    assert s.broker_is_embedded
    assert s.result_backend.startswith("db+sqlite:///")
    assert s.celery_eager is False
    assert s.default_locale == "zh_CN" and s.timezone == "Asia/Shanghai"
    assert s.max_upload_mb == 50


def test_secret_is_generated_once_and_kept(tmp_path: Path) -> None:
    first = Settings.from_env(env_for(tmp_path)).secret_key
    path = tmp_path / "inst" / "secret_key"
    assert path.read_text().strip() == first
    assert len(first) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert Settings.from_env(env_for(tmp_path)).secret_key == first  # kept across starts
    other = Settings.from_env({"CAMPAIGNFLOW_INSTANCE_DIR": str(tmp_path / "other")}).secret_key
    assert other != first  # another instance gets its own


def test_explicit_secret_wins_and_is_not_written(tmp_path: Path) -> None:
    s = Settings.from_env(env_for(tmp_path, CAMPAIGNFLOW_SECRET_KEY="x" * 20))
    assert s.secret_key == "x" * 20
    assert not (tmp_path / "inst" / "secret_key").exists()


def test_postgres_and_redis_by_two_variables(tmp_path: Path) -> None:
    s = Settings.from_env(
        env_for(
            tmp_path,
            CAMPAIGNFLOW_DATABASE_URL="postgres://u:p@db:5432/cf",
            CAMPAIGNFLOW_BROKER_URL="redis://cache:6379/2",
        )
    )
    assert s.database_url == "postgresql://u:p@db:5432/cf"  # the old alias is normalised
    assert not s.is_sqlite and not s.broker_is_embedded
    assert s.result_backend == "redis://cache:6379/2"
    assert s.ratelimit_storage == "redis://cache:6379/2"


@pytest.mark.parametrize("value", ["1", "true", "YES", " on "])
def test_true_booleans(tmp_path: Path, value: str) -> None:
    assert Settings.from_env(env_for(tmp_path, CAMPAIGNFLOW_CELERY_EAGER=value)).celery_eager is True


@pytest.mark.parametrize("value", ["0", "false", "No", "off", ""])
def test_false_booleans(tmp_path: Path, value: str) -> None:
    assert Settings.from_env(env_for(tmp_path, CAMPAIGNFLOW_CELERY_EAGER=value)).celery_eager is False


@pytest.mark.parametrize(
    ("name", "value", "words"),
    [
        (
            "CAMPAIGNFLOW_DATABASE_URL",
            "mysql://root@localhost/cf",
            "scheme must be one of: sqlite, postgresql",
        ),
        ("CAMPAIGNFLOW_DATABASE_URL", "", "not a supported URL"),
        ("CAMPAIGNFLOW_DATABASE_URL", "campaignflow.sqlite", "not a supported URL"),
        ("CAMPAIGNFLOW_BROKER_URL", "kafka://k:9092", "not a supported URL"),
        ("CAMPAIGNFLOW_RESULT_BACKEND", "mongodb://m", "not a supported URL"),
        ("CAMPAIGNFLOW_CELERY_EAGER", "maybe", "is not a boolean"),
        ("CAMPAIGNFLOW_LOG_JSON", "2", "is not a boolean"),
        ("CAMPAIGNFLOW_SECRET_KEY", "short", "too short"),
        ("CAMPAIGNFLOW_DEFAULT_LOCALE", "fr", "must be zh_CN or en"),
        ("CAMPAIGNFLOW_DEFAULT_LOCALE", "zh", "must be zh_CN or en"),
        ("CAMPAIGNFLOW_MAX_UPLOAD_MB", "lots", "not a whole number"),
        ("CAMPAIGNFLOW_MAX_UPLOAD_MB", "0", "at least 1"),
        ("CAMPAIGNFLOW_REVEAL_LIMIT", "-5", "at least 1"),
    ],
)
def test_bad_value_names_the_variable(tmp_path: Path, name: str, value: str, words: str) -> None:
    with pytest.raises(ConfigError) as err:
        Settings.from_env(env_for(tmp_path, **{name: value}))
    assert name in str(err.value) and words in str(err.value)


def test_instance_dir_that_cannot_be_created(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(ConfigError, match="CAMPAIGNFLOW_INSTANCE_DIR"):
        Settings.from_env({"CAMPAIGNFLOW_INSTANCE_DIR": str(blocker / "inst")})


def test_bad_value_stops_the_command_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAMPAIGNFLOW_")}
    env.update(env_for(tmp_path, CAMPAIGNFLOW_DEFAULT_LOCALE="klingon"))
    cli = Path(sys.executable).with_name("campaignflow")
    run = subprocess.run(
        [str(cli), "routes"], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert run.returncode != 0
    assert "CAMPAIGNFLOW_DEFAULT_LOCALE='klingon'" in run.stderr
