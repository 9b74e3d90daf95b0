"""Workspace API configuration, read from the environment once (one dataclass per concern)."""

from __future__ import annotations

from dataclasses import dataclass

from ts_runtime.envspec import DATABASE_SCHEMES, HTTP_SCHEMES, EnvSpec
from ts_runtime.settings import DatabaseSettings, HttpSettings, LogSettings, env_bool, env_str

# What the old service's DB_STRATEGY could say that still means "PostgreSQL".
POSTGRES_STRATEGIES = {"postgres", "postgresql", "timescaledb"}


@dataclass(frozen=True)
class Settings:
    database: DatabaseSettings
    http: HttpSettings
    log: LogSettings
    # The old service's DB_STRATEGY (`lowdb` selected a JSON file). Kept only to warn about it:
    # this service always uses PostgreSQL.
    legacy_db_strategy: str | None = None
    # Spans for every SQL statement (opentelemetry-instrumentation-asyncpg).
    trace_sql: bool = True

    @property
    def ignored_db_strategy(self) -> str | None:
        """The DB_STRATEGY value that is being ignored, if any."""
        strategy = self.legacy_db_strategy
        if strategy is None or strategy.lower() in POSTGRES_STRATEGIES:
            return None
        return strategy

    @classmethod
    def from_env(cls) -> "Settings":
        return cls(
            database=DatabaseSettings.from_env(),
            http=HttpSettings.from_env(),
            log=LogSettings.from_env(),
            legacy_db_strategy=env_str("DB_STRATEGY"),
            trace_sql=env_bool("OTEL_TRACE_SQL", True),
        )


# What `uv run validate-env` checks in the workspace API's environment (its loader above runs last).
ENV_SPEC = EnvSpec(
    name="workspace-api",
    load=Settings.from_env,
    tokens=("API_READ_TOKEN",),
    urls={"DATABASE_URL": DATABASE_SCHEMES, "OTEL_EXPORTER_OTLP_ENDPOINT": HTTP_SCHEMES},
    ports=("PORT",),
    hosts=("HOST",),
    positive_numbers=("BODY_TIMEOUT_SECONDS",),
    needs_database=True,
)
