"""Ingest API configuration, read from the environment once (one dataclass per concern)."""

from __future__ import annotations

from dataclasses import dataclass

from ts_runtime.envspec import DATABASE_SCHEMES, HTTP_SCHEMES, EnvSpec
from ts_runtime.settings import (
    MIN_TOKEN_LENGTH,
    ConfigError,
    DatabaseSettings,
    HttpSettings,
    LogSettings,
    env_bool,
    env_int,
    env_str,
)
from ts_runtime.telemetry import sampler_from_env


@dataclass(frozen=True)
class AuthSettings:
    # Shared secret the gateway sends in X-Gateway-Token; it also guards the DELETE endpoints.
    gateway_token: str

    @classmethod
    def from_env(cls) -> "AuthSettings":
        token = env_str("GATEWAY_SECRET_TOKEN")
        if token is None:
            raise ConfigError("GATEWAY_SECRET_TOKEN is not set; the API refuses to accept unauthenticated ingest")
        if len(token) < MIN_TOKEN_LENGTH:
            raise ConfigError(
                f"GATEWAY_SECRET_TOKEN is {len(token)} characters long; use at least {MIN_TOKEN_LENGTH} "
                "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)"
            )
        return cls(gateway_token=token)


@dataclass(frozen=True)
class WriterSettings:
    # Concurrent /ingest requests are coalesced into one multi-row statement of at most this many
    # messages, with at most `max_in_flight` statements running at once.
    max_batch: int = 500
    max_in_flight: int = 2

    @classmethod
    def from_env(cls) -> "WriterSettings":
        return cls(
            max_batch=env_int("INGEST_COALESCE_MAX_BATCH", 500),
            max_in_flight=env_int("INGEST_COALESCE_MAX_IN_FLIGHT", 2),
        )


@dataclass(frozen=True)
class Settings:
    database: DatabaseSettings
    auth: AuthSettings
    http: HttpSettings
    log: LogSettings
    writer: WriterSettings
    # Spans for every SQL statement (opentelemetry-instrumentation-asyncpg).
    trace_sql: bool = True

    @classmethod
    def from_env(cls) -> "Settings":
        # A bad OTEL_TRACES_SAMPLER(_ARG) fails the configuration check at start (exit 2), not a worker.
        sampler_from_env()
        return cls(
            database=DatabaseSettings.from_env(),
            auth=AuthSettings.from_env(),
            http=HttpSettings.from_env(),
            log=LogSettings.from_env(),
            writer=WriterSettings.from_env(),
            trace_sql=env_bool("OTEL_TRACE_SQL", True),
        )


# What `uv run validate-env` checks in the ingest API's environment (its loader above runs last).
ENV_SPEC = EnvSpec(
    name="ingest-api",
    load=Settings.from_env,
    required=("GATEWAY_SECRET_TOKEN",),
    tokens=("GATEWAY_SECRET_TOKEN", "API_READ_TOKEN"),
    urls={"DATABASE_URL": DATABASE_SCHEMES, "OTEL_EXPORTER_OTLP_ENDPOINT": HTTP_SCHEMES},
    ports=("PORT",),
    hosts=("HOST",),
    positive_numbers=("BODY_TIMEOUT_SECONDS",),
    needs_database=True,
)
