"""Reading configuration from the environment, once, into typed settings objects.

Each service builds its own settings dataclasses with these helpers (one per concern, as in
litestar-fullstack). Real environment variables always win over `.env` files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote


class ConfigError(ValueError):
    """A configuration value is missing or malformed; the message says which and why."""


# Shared secrets (the gateway token, the read token) are at least this long (`uv run gen-token`
# makes 64 hexadecimal characters).
MIN_TOKEN_LENGTH = 32


def apply_env_file(path: Path) -> bool:
    """Read a service's own `.env` (`KEY=value` lines) into the environment; real variables win.
    False when the file does not exist."""
    from dotenv import load_dotenv

    if not path.is_file():
        return False
    load_dotenv(path, override=False)
    return True


def env_str(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    return value.strip()


def env_int(name: str, default: int) -> int:
    raw = env_str(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None


def env_float(name: str, default: float) -> float:
    raw = env_str(name)
    if raw is None:
        return default
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None


def env_bool(name: str, default: bool = False) -> bool:
    raw = env_str(name)
    if raw is None:
        return default
    if raw.lower() in {"1", "true", "yes", "on"}:
        return True
    if raw.lower() in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def env_list(name: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
    raw = env_str(name)
    if raw is None:
        return default
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def redact(secret: str | None) -> str:
    """What may be logged of a secret: its first 8 characters at most."""
    if not secret:
        return "<unset>"
    return secret[:8] + "…"


def database_url_from_env() -> str | None:
    """`DATABASE_URL`, or a URL built from the old `TIMESCALEDB_*` variables, or None."""
    url = env_str("DATABASE_URL")
    if url:
        return url
    host = env_str("TIMESCALEDB_HOST")
    if host is None:
        return None
    port = env_int("TIMESCALEDB_PORT", 5432)
    database = env_str("TIMESCALEDB_DATABASE", "postgres")
    user = env_str("TIMESCALEDB_USER", "postgres")
    password = env_str("TIMESCALEDB_PASSWORD")
    auth = quote(user or "", safe="")
    if password:
        auth += ":" + quote(password, safe="")
    return f"postgresql://{auth}@{host}:{port}/{database}"


def describe_url(url: str) -> str:
    """A database URL with its password hidden, for logs and error messages."""
    from urllib.parse import urlsplit, urlunsplit

    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable url>"
    if parts.password:
        netloc = f"{parts.username}:***@{parts.hostname}"
        if parts.port:
            netloc += f":{parts.port}"
        parts = parts._replace(netloc=netloc)
    return urlunsplit(parts)


@dataclass(frozen=True)
class DatabaseSettings:
    url: str
    pool_min_size: int = 2
    pool_max_size: int = 10
    # Seconds to wait for a connection or a statement before answering 503.
    connect_timeout: float = 5.0

    @classmethod
    def from_env(cls) -> "DatabaseSettings":
        url = database_url_from_env()
        if url is None:
            raise ConfigError(
                "DATABASE_URL is not set (nor TIMESCALEDB_HOST); point it at PostgreSQL, "
                "or use `uv run stack` to start an embedded one"
            )
        return cls(
            url=url,
            pool_min_size=env_int("DB_POOL_MIN_SIZE", 2),
            pool_max_size=env_int("DB_POOL_MAX_SIZE", 10),
            connect_timeout=float(env_int("DB_CONNECT_TIMEOUT_SECONDS", 5)),
        )


def read_token_from_env(name: str = "API_READ_TOKEN") -> str | None:
    """The optional token the read endpoints ask for in X-API-Key (None: reads are open)."""
    token = env_str(name)
    if token is not None and len(token) < MIN_TOKEN_LENGTH:
        raise ConfigError(f"{name} is {len(token)} characters long; use at least {MIN_TOKEN_LENGTH} "
                          "(uv run gen-token), or leave it unset to keep the read endpoints open")
    return token


@dataclass(frozen=True)
class HttpSettings:
    # Browser origins allowed to call the API (none: no CORS headers at all).
    cors_origins: tuple[str, ...] = ()
    # API_READ_TOKEN: when set, the read endpoints answer 401 unless X-API-Key carries it (or
    # another token the service accepts there). Unset: reads are open, as in the old system.
    read_token: str | None = None
    # A request body must arrive within this many seconds of the first read (a client trickling
    # its body is answered 408 and disconnected instead of holding a worker forever).
    body_timeout_seconds: float = 30.0

    @classmethod
    def from_env(cls) -> "HttpSettings":
        timeout = env_float("BODY_TIMEOUT_SECONDS", 30.0)
        if timeout <= 0:
            raise ConfigError(f"BODY_TIMEOUT_SECONDS must be positive, got {timeout:g}")
        return cls(cors_origins=env_list("CORS_ORIGIN"), read_token=read_token_from_env(),
                   body_timeout_seconds=timeout)


@dataclass(frozen=True)
class LogSettings:
    level: str = "INFO"
    json: bool = True
    # Records kept in memory for GET /logs (LOG_HISTORY_SIZE, the old system's default 200).
    history_size: int = 200

    @classmethod
    def from_env(cls) -> "LogSettings":
        return cls(
            level=(env_str("LOG_LEVEL", "INFO") or "INFO").upper(),
            json=(env_str("LOG_FORMAT", "json") or "json").lower() != "text",
            history_size=log_history_size_from_env(),
        )


def log_history_size_from_env() -> int:
    size = env_int("LOG_HISTORY_SIZE", 200)
    if size < 1:
        raise ConfigError(f"LOG_HISTORY_SIZE must be at least 1, got {size}")
    return size
