"""The Litestar app factory: `create_app()` wires settings, database, writer, telemetry and routes."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
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
from ts_common.settings import describe_url, redact
from ts_common.telemetry import instrument_asyncpg, setup_tracing

from .db import Database, DatabaseUnavailable
from .errors import ErrorBody, exception_handlers
from .ingest.handlers import MAX_BODY_BYTES, ingest_batch, ingest_message
from .ingest.service import IngestWriter
from .settings import Settings
from .signals.handlers import route_handlers as signal_handlers

log = logging.getLogger("ingest_api")
SERVICE = "ingest-api"
VERSION = "0.1.0"


class DatabaseHealth(msgspec.Struct, omit_defaults=True):
    connected: bool
    latency_ms: float | None = None
    error: str | None = None


class Health(msgspec.Struct):
    status: str  # healthy / unhealthy
    service: str
    version: str
    uptime_seconds: float
    database: DatabaseHealth


class Ready(msgspec.Struct):
    ready: bool


async def _database_health(db: Database) -> DatabaseHealth:
    try:
        return DatabaseHealth(connected=True, latency_ms=round(await db.ping(), 2))
    except DatabaseUnavailable as exc:
        return DatabaseHealth(connected=False, error=exc.reason)


@get("/health", operation_id="health", summary="Health with details (503 while the database is down)",
     responses={503: ResponseSpec(Health, description="The database is unreachable", generate_examples=False)},
     tags=["system"])
async def health(request: Request) -> Response[Health]:
    state = request.app.state
    database = await _database_health(state.db)
    body = Health(
        status="healthy" if database.connected else "unhealthy",
        service=SERVICE,
        version=VERSION,
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
async def metrics_endpoint() -> Response[bytes]:
    body, content_type = render_metrics()
    return Response(body, media_type=content_type)


async def _refuse_query_not_utf8(request: Request) -> Response[ErrorBody] | None:
    """400 for a query string whose percent-escapes are not UTF-8.

    Litestar decodes the query with `errors="replace"`: `?search=PETR%C3` would silently search
    for "PETR\ufffd". A client sending bytes that are not UTF-8 gets told instead.
    """
    raw: bytes = request.scope.get("query_string", b"")
    if not raw:
        return None
    try:
        unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError as exc:
        return Response(ErrorBody(error="Query string is not valid UTF-8",
                                  details=[f"query: {exc.reason} at percent-decoded offset {exc.start}"]),
                        status_code=400)
    return None


def _lifespan(settings: Settings):
    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        db = Database(settings.database)
        await db.open()
        writer = IngestWriter(db, settings.writer)
        writer.start()
        app.state.db = db
        app.state.writer = writer
        log.info(
            "ingest-api started",
            extra={
                "database": describe_url(settings.database.url),
                "gateway_token": redact(settings.auth.gateway_token),
                "cors_origins": list(settings.http.cors_origins),
            },
        )
        try:
            yield
        finally:
            await writer.stop()
            await db.close()

    return lifespan


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or Settings.from_env()
    setup_logging(settings.log.level, json=settings.log.json)
    setup_tracing(SERVICE)
    if settings.trace_sql:
        instrument_asyncpg()

    cors = CORSConfig(allow_origins=list(settings.http.cors_origins), allow_headers=["*"],
                      allow_methods=["GET", "POST", "DELETE", "OPTIONS"]) if settings.http.cors_origins else None
    # Request spans continue an incoming W3C `traceparent` (the global propagator's default).
    telemetry = OpenTelemetryPlugin(OpenTelemetryConfig(exclude=["/metrics"], exclude_spans=["receive", "send"]))
    prometheus = PrometheusConfig(app_name=SERVICE, prefix="api_http", group_path=True, exclude=["/metrics"])

    return Litestar(
        route_handlers=[ingest_message, ingest_batch, *signal_handlers, health, ready, metrics_endpoint],
        lifespan=[_lifespan(settings)],
        state=State({"token_bytes": settings.auth.gateway_token.encode(), "started": time.monotonic()}),
        exception_handlers=exception_handlers,  # type: ignore[arg-type]
        before_request=_refuse_query_not_utf8,
        cors_config=cors,
        plugins=[telemetry],
        middleware=[prometheus.middleware],
        openapi_config=OpenAPIConfig(
            title="TP Capital ingest API",
            version=VERSION,
            path="/schema",
            render_plugins=[JsonRenderPlugin()],
        ),
        request_max_body_size=MAX_BODY_BYTES,
        # Logging is ts_common's JSON lines (set up above); Litestar must not replace it.
        logging_config=None,
    )


__all__ = ["ErrorBody", "create_app"]
