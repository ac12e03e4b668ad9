"""Settings read from the environment (``CAMPAIGNFLOW_*``), with safe embedded defaults.

Defaults: a SQLite file under ``instance/``, Celery on a SQLAlchemy transport over another SQLite
file (a real worker, no broker server), and a secret key generated once and kept in
``instance/secret_key``. PostgreSQL and Redis are two variables away. A bad value stops start-up
with a :class:`ConfigError` naming the variable.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

PROJECT_ROOT = Path(__file__).resolve().parent.parent

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class ConfigError(RuntimeError):
    """A configuration value is unusable; the message names the variable."""


def _bool(env: dict[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{name}={raw!r} is not a boolean; use 1/0, true/false, yes/no or on/off")


def _int(env: dict[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a whole number") from None
    if value < minimum:
        raise ConfigError(f"{name}={raw!r} must be at least {minimum}")
    return value


def _url(env: dict[str, str], name: str, default: str, schemes: tuple[str, ...]) -> str:
    raw = env.get(name, default).strip()
    scheme = urlparse(raw).scheme.split("+")[0]
    if not raw or scheme not in schemes:
        allowed = ", ".join(schemes)
        raise ConfigError(f"{name}={raw!r} is not a supported URL (scheme must be one of: {allowed})")
    return raw


@dataclass(frozen=True)
class Settings:
    """Everything the product reads from its environment, validated once."""

    instance_dir: Path
    database_url: str
    broker_url: str
    result_backend: str
    secret_key: str
    celery_eager: bool = False
    default_locale: str = "zh_CN"
    timezone: str = "Asia/Shanghai"
    max_upload_mb: int = 50
    reveal_limit_per_day: int = 50
    ratelimit_storage: str = "memory://"
    log_json: bool = False
    secure_cookies: bool = False
    mfa_required: bool = False
    proxy_hops: int = 0
    retention_days: int = 1095
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def broker_is_embedded(self) -> bool:
        return self.broker_url.startswith("sqla+sqlite") or self.broker_url.startswith("memory")

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        instance = Path(env.get("CAMPAIGNFLOW_INSTANCE_DIR", str(PROJECT_ROOT / "instance"))).resolve()
        try:
            instance.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"CAMPAIGNFLOW_INSTANCE_DIR={str(instance)!r} cannot be created: {exc}") from None
        database_url = _url(
            env,
            "CAMPAIGNFLOW_DATABASE_URL",
            f"sqlite:///{instance / 'campaignflow.sqlite'}",
            ("sqlite", "postgresql", "postgres"),
        )
        if database_url.startswith("postgres://"):
            database_url = "postgresql://" + database_url[len("postgres://") :]
        broker_url = _url(
            env,
            "CAMPAIGNFLOW_BROKER_URL",
            f"sqla+sqlite:///{instance / 'broker.sqlite'}",
            ("sqla", "redis", "rediss", "amqp", "memory"),
        )
        default_backend = (
            broker_url if broker_url.startswith("redis") else f"db+sqlite:///{instance / 'results.sqlite'}"
        )
        result_backend = _url(
            env, "CAMPAIGNFLOW_RESULT_BACKEND", default_backend, ("db", "redis", "rediss", "cache", "rpc")
        )
        secret = env.get("CAMPAIGNFLOW_SECRET_KEY") or _instance_secret(instance)
        if len(secret) < 16:
            raise ConfigError("CAMPAIGNFLOW_SECRET_KEY is too short: use at least 16 characters")
        locale = env.get("CAMPAIGNFLOW_DEFAULT_LOCALE", "zh_CN")
        if locale not in ("zh_CN", "en"):
            raise ConfigError(f"CAMPAIGNFLOW_DEFAULT_LOCALE={locale!r} must be zh_CN or en")
        ratelimit = env.get(
            "CAMPAIGNFLOW_RATELIMIT_STORAGE", broker_url if broker_url.startswith("redis") else "memory://"
        )
        return cls(
            instance_dir=instance,
            database_url=database_url,
            broker_url=broker_url,
            result_backend=result_backend,
            secret_key=secret,
            celery_eager=_bool(env, "CAMPAIGNFLOW_CELERY_EAGER", False),
            default_locale=locale,
            max_upload_mb=_int(env, "CAMPAIGNFLOW_MAX_UPLOAD_MB", 50, minimum=1),
            reveal_limit_per_day=_int(env, "CAMPAIGNFLOW_REVEAL_LIMIT", 50, minimum=1),
            ratelimit_storage=ratelimit,
            log_json=_bool(env, "CAMPAIGNFLOW_LOG_JSON", False),
            secure_cookies=_bool(env, "CAMPAIGNFLOW_SECURE_COOKIES", False),
            mfa_required=_bool(env, "CAMPAIGNFLOW_MFA_REQUIRED", False),
            proxy_hops=_int(env, "CAMPAIGNFLOW_PROXY_HOPS", 0, minimum=0),
            retention_days=_int(env, "CAMPAIGNFLOW_RETENTION_DAYS", 1095, minimum=180),
        )


def _instance_secret(instance: Path) -> str:
    """Generate the secret key once and keep it in the instance folder (mode 600)."""
    path = instance / "secret_key"
    if path.exists():
        return path.read_text().strip()
    key = secrets.token_urlsafe(48)
    path.write_text(key)
    path.chmod(0o600)
    return key
