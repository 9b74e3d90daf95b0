"""Gateway configuration, read from the environment once (names as in the old Node.js gateway).

`load_dotenv_file()` reads `services/gateway/.env` (or `GATEWAY_ENV_FILE`) without overriding real
environment variables; `GatewaySettings.from_env()` then builds one frozen object per concern.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from ts_runtime.envspec import HTTP_SCHEMES, EnvSpec
from ts_runtime.settings import ConfigError, env_int, env_list, env_str, apply_env_file

DEFAULT_ENDPOINT = "http://localhost:4005/ingest"
# Telethon appends this to a session name that lacks it (telethon/sessions/sqlite.py).
SESSION_EXTENSION = ".session"


def load_dotenv_file() -> Path | None:
    """Load the gateway's own `.env` (real environment variables win); return the file used."""
    # Only the gateway's own file: a `.env` in the working directory may belong to something else
    # (`uv run stack` runs the gateway from the repository root).
    explicit = env_str("GATEWAY_ENV_FILE")
    candidate = Path(explicit) if explicit else Path(__file__).resolve().parents[2] / ".env"
    try:
        return candidate if apply_env_file(candidate) else None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{candidate} is not UTF-8 text (byte {exc.object[exc.start:exc.end].hex()} at offset "
                          f"{exc.start}); fix or remove it") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {candidate}: {exc.strerror or exc}") from None


def _base_url(endpoint: str) -> str:
    """`http://host:4005/ingest` → `http://host:4005` (the batch endpoint lives beside /ingest)."""
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"API_ENDPOINT must be an http(s) URL such as {DEFAULT_ENDPOINT}, got {endpoint!r}")
    path = parts.path.rstrip("/")
    if path.endswith("/ingest"):
        path = path[: -len("/ingest")]
    return urlunsplit(parts._replace(path=path, query="", fragment=""))


@dataclass(frozen=True)
class PublishSettings:
    """Where and how payloads are published to the ingest API."""

    endpoint: str = DEFAULT_ENDPOINT
    token: str = ""
    timeout_seconds: float = 10.0
    # Retries after the first attempt; waits are retry_delay × 2^(n-1): 5 s, 10 s, 20 s by default.
    max_retry_attempts: int = 3
    retry_delay_ms: int = 5000
    batch_size: int = 500
    # The background drainer's backoff when the API stays unavailable (capped exponential).
    drain_backoff_max_seconds: float = 300.0

    @property
    def base_url(self) -> str:
        return _base_url(self.endpoint)

    @property
    def single_url(self) -> str:
        return self.base_url + "/ingest"

    @property
    def batch_url(self) -> str:
        return self.base_url + "/ingest/batch"

    def retry_schedule(self) -> list[float]:
        """The waits (seconds) between attempts, in order: what stamina is configured to do."""
        return [self.retry_delay_ms / 1000 * 2**n for n in range(self.max_retry_attempts)]

    @classmethod
    def from_env(cls) -> "PublishSettings":
        timeout = env_str("API_TIMEOUT_SECONDS")
        try:
            timeout_seconds = float(timeout) if timeout else 10.0
        except ValueError:
            raise ConfigError(f"API_TIMEOUT_SECONDS must be a number, got {timeout!r}") from None
        settings = cls(
            endpoint=env_str("API_ENDPOINT", DEFAULT_ENDPOINT) or DEFAULT_ENDPOINT,
            token=env_str("API_SECRET_TOKEN", "") or "",
            timeout_seconds=timeout_seconds,
            max_retry_attempts=env_int("MAX_RETRY_ATTEMPTS", 3),
            retry_delay_ms=env_int("RETRY_DELAY_MS", 5000),
            batch_size=env_int("PUBLISH_BATCH_SIZE", 500),
            drain_backoff_max_seconds=float(env_int("DRAIN_BACKOFF_MAX_SECONDS", 300)),
        )
        _base_url(settings.endpoint)  # validates the URL (raises ConfigError)
        if settings.max_retry_attempts < 0 or settings.retry_delay_ms < 0:
            raise ConfigError("MAX_RETRY_ATTEMPTS and RETRY_DELAY_MS must not be negative")
        if not 1 <= settings.batch_size <= 1000:
            raise ConfigError("PUBLISH_BATCH_SIZE must be between 1 and 1000 (the API's batch limit)")
        if timeout_seconds <= 0:
            raise ConfigError("API_TIMEOUT_SECONDS must be positive")
        return settings


@dataclass(frozen=True)
class QueueSettings:
    """The write-ahead queue and the files beside it."""

    path: Path = Path("./data/failure-queue.jsonl")
    # Cursors, the file source's offset and session backups live here (default: the queue's folder).
    data_dir: Path = Path("./data")

    @classmethod
    def from_env(cls) -> "QueueSettings":
        path = Path(env_str("FAILURE_QUEUE_PATH", "./data/failure-queue.jsonl") or "")
        data_dir = Path(env_str("GATEWAY_DATA_DIR") or path.parent)
        return cls(path=path, data_dir=data_dir)


@dataclass(frozen=True)
class TelegramSettings:
    api_id: int | None = None
    api_hash: str | None = None
    phone: str | None = None
    string_session: str | None = None
    session_path: Path = Path("./data/session/gateway.session")
    channels: tuple[str, ...] = ()
    # How often the backfill runs besides start and reconnects; how many messages a channel with
    # no cursor yet gets on its first backfill, and after its cursor was lost in a damaged
    # cursors.json (more: the gap since the last known position is unknown; see cursors.py).
    backfill_interval_seconds: float = 300.0
    backfill_initial_limit: int = 100
    backfill_recovery_limit: int = 1000
    session_backups_kept: int = 7

    def missing(self) -> list[str]:
        """What `gateway run` still needs before it can connect (empty when complete)."""
        missing = []
        if self.api_id is None:
            missing.append("TELEGRAM_API_ID")
        if not self.api_hash:
            missing.append("TELEGRAM_API_HASH")
        if not self.channels:
            missing.append("TELEGRAM_CHANNELS")
        return missing

    @property
    def session_file(self) -> Path:
        """The file Telethon will actually open for `session_path`."""
        path = Path(self.session_path)
        return path if path.name.endswith(SESSION_EXTENSION) else path.with_name(path.name + SESSION_EXTENSION)

    @property
    def has_session(self) -> bool:
        return bool(self.string_session) or self.session_file.exists()

    @classmethod
    def from_env(cls) -> "TelegramSettings":
        api_id = env_str("TELEGRAM_API_ID")
        if api_id is not None and not api_id.isdigit():
            raise ConfigError(f"TELEGRAM_API_ID must be a number (from my.telegram.org), got {api_id!r}")
        recovery_limit = env_int("BACKFILL_RECOVERY_LIMIT", 1000)
        if recovery_limit < 1:
            # 0 would mean "from now": the messages since the last known position would be skipped.
            raise ConfigError(f"BACKFILL_RECOVERY_LIMIT must be at least 1, got {recovery_limit}")
        return cls(
            api_id=int(api_id) if api_id else None,
            api_hash=env_str("TELEGRAM_API_HASH"),
            phone=env_str("TELEGRAM_PHONE_NUMBER"),
            string_session=env_str("TELEGRAM_SESSION"),
            session_path=Path(env_str("TELEGRAM_SESSION_PATH", "./data/session/gateway.session") or ""),
            channels=env_list("TELEGRAM_CHANNELS"),
            backfill_interval_seconds=float(env_int("BACKFILL_INTERVAL_SECONDS", 300)),
            backfill_initial_limit=env_int("BACKFILL_INITIAL_LIMIT", 100),
            backfill_recovery_limit=recovery_limit,
            session_backups_kept=env_int("SESSION_BACKUPS_KEPT", 7),
        )


@dataclass(frozen=True)
class GatewaySettings:
    publish: PublishSettings = field(default_factory=PublishSettings)
    queue: QueueSettings = field(default_factory=QueueSettings)
    telegram: TelegramSettings = field(default_factory=TelegramSettings)
    # `telegram` (default) or `file:/path/events.jsonl` (tests, fault injection, demos).
    source: str = "telegram"
    port: int = 4006
    # The /health, /metrics, /logs server: this machine only unless GATEWAY_HOST (or HOST) is set.
    host: str = "127.0.0.1"
    log_level: str = "INFO"

    @property
    def file_source_path(self) -> Path | None:
        return Path(self.source[len("file:"):]) if self.source.startswith("file:") else None

    @classmethod
    def from_env(cls) -> "GatewaySettings":
        source = env_str("GATEWAY_SOURCE", "telegram") or "telegram"
        if source != "telegram" and not (source.startswith("file:") and len(source) > len("file:")):
            raise ConfigError(f"GATEWAY_SOURCE must be `telegram` or `file:/path/events.jsonl`, got {source!r}")
        port = env_int("GATEWAY_PORT", 4006)
        if not 0 <= port <= 65535:
            raise ConfigError(f"GATEWAY_PORT must be a port number (1-65535), got {port}")
        return cls(
            publish=PublishSettings.from_env(),
            queue=QueueSettings.from_env(),
            telegram=TelegramSettings.from_env(),
            source=source,
            port=port,
            host=env_str("GATEWAY_HOST") or env_str("HOST") or "127.0.0.1",
            log_level=env_str("LOG_LEVEL", "INFO") or "INFO",
        )


# What `uv run validate-env` checks in the gateway's environment (its loader above runs last).
ENV_SPEC = EnvSpec(
    name="gateway",
    load=GatewaySettings.from_env,
    required=("API_SECRET_TOKEN", "TELEGRAM_API_ID", "TELEGRAM_API_HASH", "TELEGRAM_CHANNELS"),
    tokens=("API_SECRET_TOKEN",),
    urls={"API_ENDPOINT": HTTP_SCHEMES, "OTEL_EXPORTER_OTLP_ENDPOINT": HTTP_SCHEMES},
    ports=("GATEWAY_PORT",),
    hosts=("GATEWAY_HOST", "HOST"),
    non_negative=("TELEGRAM_API_ID", "MAX_RETRY_ATTEMPTS", "RETRY_DELAY_MS"),
    channel_lists=("TELEGRAM_CHANNELS",),
)
