"""The Litestar app factory: `create_app()` wires settings, database, telemetry and routes.

The operations routes (/health and /api/health, /healthz, /ready, /logs, /metrics), the error
envelope and the request checks come from the core plugin shared with the ingest API
(ts_runtime.api_core).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.plugins.opentelemetry import OpenTelemetryConfig, OpenTelemetryPlugin
from litestar.plugins.prometheus import PrometheusConfig

from ts_runtime.api_core import CoreConfig, CorePlugin, database_check
from ts_runtime.health import HEALTHY, CheckResult, uptime_seconds
from ts_runtime.logs import register_secret, setup_logging
from ts_runtime.settings import describe_url, redact
from ts_runtime.telemetry import instrument_asyncpg, setup_tracing

from . import metrics
from .categories.handlers import route_handlers as category_handlers
from .db import Database, DatabaseUnavailable
from .items import service as items_service
from .items.handlers import route_handlers as item_handlers
from .settings import Settings

log = logging.getLogger("workspace_api")
SERVICE = "workspace-api"
VERSION = "0.1.0"


def _earlier_health_fields(checks: Mapping[str, CheckResult], started: float) -> dict[str, Any]:
    """What /api/health answered before the old shared format joined it (current clients read these)."""
    db = checks["timescaledb"]
    connected = db.status == HEALTHY
    # Always PostgreSQL: the old file-based (LowDB) strategy is gone.
    database: dict[str, Any] = {"connected": connected, "strategy": "postgresql"}
    database.update({"latencyMs": db.response_time} if connected else {"error": db.message})
    return {
        "success": connected,
        "uptimeSeconds": round(uptime_seconds(started), 1),
        "database": database,
    }


async def _refresh_gauges(state: State) -> None:
    db: Database = state.db
    try:
        await db.ping()  # sets workspace_db_connection_status
        async with db.acquire() as conn:
            metrics.ITEMS_COUNT.set(await items_service.count_items(conn))
    except DatabaseUnavailable:
        pass  # the status gauge says 0; the count keeps its last known value


def _database_down(_: str) -> None:
    metrics.DB_CONNECTION_STATUS.set(0)


def _lifespan(settings: Settings):
    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        db = Database(settings.database)
        await db.open()
        app.state.db = db
        log.info("workspace-api started", extra={
            "database": describe_url(settings.database.url), "cors_origins": list(settings.http.cors_origins),
            "read_token": redact(settings.http.read_token) if settings.http.read_token else "unset (reads open)"})
        try:
            yield
        finally:
            await db.close()

    return lifespan


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or Settings.from_env()
    # An ignored DB_STRATEGY is not logged here: this runs in every granian worker, and the
    # launcher (cli.check_config) already warned about it once.
    setup_logging(settings.log.level, json=settings.log.json, history_size=settings.log.history_size)
    register_secret(settings.http.read_token)
    setup_tracing(SERVICE)
    if settings.trace_sql:
        instrument_asyncpg()

    cors = CORSConfig(
        allow_origins=list(settings.http.cors_origins),
        allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
        allow_headers=["Content-Type", "If-Match", "X-API-Key", "traceparent", "tracestate"],
        expose_headers=["ETag", "Location"],
    ) if settings.http.cors_origins else None
    # Request spans continue an incoming W3C `traceparent` (the global propagator's default).
    telemetry = OpenTelemetryPlugin(OpenTelemetryConfig(exclude=["/metrics"], exclude_spans=["receive", "send"]))
    prometheus = PrometheusConfig(app_name=SERVICE, prefix=metrics.HTTP_PREFIX, group_path=True, exclude=["/metrics"])
    core = CorePlugin(CoreConfig(
        service=SERVICE,
        version=VERSION,
        checks={"timescaledb": database_check},
        health_fields=_earlier_health_fields,
        # /api/health is what current clients and the compose healthcheck call; /health the old one
        # (un-prefixed paths are "legacy…" operations, as for /items).
        health_paths={"/api/health": "health", "/health": "legacyHealth"},
        success_flag=True,
        on_unavailable=_database_down,
        before_metrics=_refresh_gauges,
        read_tokens=(settings.http.read_token,) if settings.http.read_token else (),
        body_timeout_seconds=settings.http.body_timeout_seconds,
    ))

    return Litestar(
        route_handlers=[*item_handlers, *category_handlers],
        lifespan=[_lifespan(settings)],
        cors_config=cors,
        plugins=[core, telemetry],
        middleware=[prometheus.middleware],
        openapi_config=OpenAPIConfig(
            title="Workspace API",
            version=VERSION,
            path="/schema",
            render_plugins=[JsonRenderPlugin()],
        ),
        # Logging is ts_runtime's JSON lines (set up above); Litestar must not replace it.
        logging_config=None,
    )


__all__ = ["create_app"]
