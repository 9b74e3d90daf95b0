"""The Litestar app factory: `create_app()` wires settings, database, telemetry and routes."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from urllib.parse import unquote_to_bytes

import msgspec
from litestar import Litestar, Request, Response, get
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.openapi import OpenAPIConfig
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.plugins.opentelemetry import OpenTelemetryConfig, OpenTelemetryPlugin
from litestar.plugins.prometheus import PrometheusConfig

from ts_common.logs import setup_logging
from ts_common.metrics import render_metrics
from ts_common.settings import describe_url
from ts_common.telemetry import instrument_asyncpg, setup_tracing

from . import metrics
from .categories.handlers import route_handlers as category_handlers
from .db import Database, DatabaseUnavailable
from .errors import ErrorBody, FieldProblem, exception_handlers
from .items import service as items_service
from .items.handlers import route_handlers as item_handlers
from .settings import Settings

log = logging.getLogger("workspace_api")
SERVICE = "workspace-api"
VERSION = "0.1.0"


class DatabaseHealth(msgspec.Struct, omit_defaults=True, rename="camel"):
    connected: bool
    # Always PostgreSQL: the old file-based (LowDB) strategy is gone.
    strategy: str
    latency_ms: float | None = None
    error: str | None = None


class Health(msgspec.Struct, rename="camel"):
    success: bool
    status: str  # healthy / unhealthy
    service: str
    version: str
    timestamp: datetime
    uptime_seconds: float
    database: DatabaseHealth


class Ready(msgspec.Struct):
    ready: bool


async def _database_health(db: Database) -> DatabaseHealth:
    try:
        return DatabaseHealth(connected=True, strategy="postgresql", latency_ms=round(await db.ping(), 2))
    except DatabaseUnavailable as exc:
        return DatabaseHealth(connected=False, strategy="postgresql", error=exc.reason)


@get("/api/health", operation_id="health", summary="Health with details (503 while the database is down)",
     tags=["system"],
     responses={503: ResponseSpec(Health, description="The database is unreachable", generate_examples=False)})
async def health(request: Request) -> Response[Health]:
    state = request.app.state
    database = await _database_health(state.db)
    body = Health(
        success=database.connected,
        status="healthy" if database.connected else "unhealthy",
        service=SERVICE,
        version=VERSION,
        timestamp=datetime.now(timezone.utc),
        uptime_seconds=round(time.monotonic() - state.started, 1),
        database=database,
    )
    return Response(body, status_code=200 if database.connected else 503)


@get("/ready", operation_id="ready", summary="Readiness: 503 while the database is unreachable", tags=["system"],
     responses={503: ResponseSpec(Ready, description="The database is unreachable", generate_examples=False)})
async def ready(request: Request) -> Response[Ready]:
    database = await _database_health(request.app.state.db)
    return Response(Ready(ready=database.connected), status_code=200 if database.connected else 503)


@get("/metrics", operation_id="metrics", summary="Prometheus metrics", tags=["system"], media_type="text/plain")
async def metrics_endpoint(request: Request) -> Response[bytes]:
    db: Database = request.app.state.db
    try:
        await db.ping()  # sets workspace_db_connection_status
        async with db.acquire() as conn:
            metrics.ITEMS_COUNT.set(await items_service.count_items(conn))
    except DatabaseUnavailable:
        pass  # the status gauge says 0; the count keeps its last known value
    body, content_type = render_metrics()
    return Response(body, media_type=content_type)


async def _refuse_query_not_utf8(request: Request) -> Response | None:
    """400 for a query string whose percent-escapes are not UTF-8.

    Litestar decodes the query with `errors="replace"`: `?search=caf%C3` would silently search
    for "caf\ufffd". A client sending bytes that are not UTF-8 gets told instead.
    """
    raw: bytes = request.scope.get("query_string", b"")
    if not raw:
        return None
    try:
        unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError as exc:
        problem = FieldProblem("query", f"is not valid UTF-8 ({exc.reason} at percent-decoded offset {exc.start})")
        return Response(ErrorBody(success=False, error="Query string is not valid UTF-8", details=[problem.text],
                                  errors=[problem]), status_code=400)
    return None


def _lifespan(settings: Settings):
    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        db = Database(settings.database)
        await db.open()
        app.state.db = db
        log.info("workspace-api started", extra={
            "database": describe_url(settings.database.url), "cors_origins": list(settings.http.cors_origins)})
        try:
            yield
        finally:
            await db.close()

    return lifespan


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or Settings.from_env()
    # An ignored DB_STRATEGY is not logged here: this runs in every granian worker, and the
    # launcher (cli.check_config) already warned about it once.
    setup_logging(settings.log.level, json=settings.log.json)
    setup_tracing(SERVICE)
    if settings.trace_sql:
        instrument_asyncpg()

    cors = CORSConfig(
        allow_origins=list(settings.http.cors_origins),
        allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
        allow_headers=["Content-Type", "If-Match", "traceparent", "tracestate"],
        expose_headers=["ETag", "Location"],
    ) if settings.http.cors_origins else None
    # Request spans continue an incoming W3C `traceparent` (the global propagator's default).
    telemetry = OpenTelemetryPlugin(OpenTelemetryConfig(exclude=["/metrics"], exclude_spans=["receive", "send"]))
    prometheus = PrometheusConfig(app_name=SERVICE, prefix=metrics.HTTP_PREFIX, group_path=True, exclude=["/metrics"])

    return Litestar(
        route_handlers=[*item_handlers, *category_handlers, health, ready, metrics_endpoint],
        lifespan=[_lifespan(settings)],
        state=State({"started": time.monotonic()}),
        exception_handlers=exception_handlers,  # type: ignore[arg-type]
        before_request=_refuse_query_not_utf8,
        cors_config=cors,
        plugins=[telemetry],
        middleware=[prometheus.middleware],
        openapi_config=OpenAPIConfig(
            title="Workspace API",
            version=VERSION,
            path="/schema",
            render_plugins=[JsonRenderPlugin()],
        ),
        # Logging is ts_common's JSON lines (set up above); Litestar must not replace it.
        logging_config=None,
    )


__all__ = ["create_app"]
