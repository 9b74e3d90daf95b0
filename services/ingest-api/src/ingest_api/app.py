"""The Litestar app factory: `create_app()` wires settings, database, writer, telemetry and routes.

The operations routes (/health, /healthz, /ready, /logs, /metrics), the error envelope and the
request checks come from the core plugin shared with the workspace API (ts_runtime.api_core).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

from litestar import Litestar
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin

from ts_runtime.api_core import CoreConfig, CorePlugin, database_check
from ts_runtime.api_core.errors import unexpected_error
from ts_runtime.health import HEALTHY, CheckResult, uptime_seconds
from ts_runtime.logs import register_secret, setup_logging
from ts_runtime.metrics import HttpMetrics
from ts_runtime.settings import describe_url, redact
from ts_runtime.telemetry import instrument_asyncpg, server_spans, setup_tracing

from . import metrics
from .db import Database, unavailable_kind
from .errors import ErrorBody
from .ingest.fast_path import IngestFastPath
from .ingest.handlers import INGEST_WRITER, MAX_BODY_BYTES, ingest_batch, ingest_message
from .ingest.writer import IngestWriter
from .settings import Settings
from .signals.handlers import route_handlers as signal_handlers

log = logging.getLogger("ingest_api")
# The old system's name for this service (/health, /healthz); OTel and Prometheus keep "ingest-api".
SERVICE = "tp-capital"
TELEMETRY_NAME = "ingest-api"
VERSION = "0.1.0"


def _earlier_health_fields(checks: Mapping[str, CheckResult], started: float) -> dict[str, Any]:
    """What /health answered before the old shared format joined it (current clients read these)."""
    db = checks["timescaledb"]
    connected = db.status == HEALTHY
    database = {"connected": connected, "latency_ms": db.response_time} if connected else \
        {"connected": False, "error": db.message}
    return {"uptime_seconds": round(uptime_seconds(started), 1), "database": database}


def _count_database_error(kind: str) -> None:
    metrics.DB_ERRORS.labels(error_type=kind).inc()


def _lifespan(settings: Settings, db: Database, writer: IngestWriter):
    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        await db.open()
        writer.start()
        app.state.db = db  # the core plugin's `db_connection` and health check take it from there
        log.info(
            "ingest-api started",
            extra={
                "database": describe_url(settings.database.url),
                "gateway_token": redact(settings.auth.gateway_token),
                "read_token": redact(settings.http.read_token) if settings.http.read_token else "unset (reads open)",
                "cors_origins": list(settings.http.cors_origins),
            },
        )
        try:
            yield
        finally:
            await writer.stop()
            await db.close()

    return lifespan


class IngestApp(Litestar):
    """The Litestar app, with the common case of POST /ingest served first by IngestFastPath
    (ingest/fast_path.py says why and what it keeps); every other request is Litestar's."""

    fast_path: IngestFastPath | None = None

    async def __call__(self, scope, receive, send) -> None:  # type: ignore[no-untyped-def, override]
        fast = self.fast_path
        if fast is not None and fast.takes(scope):
            await fast(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def create_app(settings: Settings | None = None, *, fast_path: bool = True) -> Litestar:
    """The ingest API. `fast_path=False` serves POST /ingest through Litestar alone (the tests
    compare the two)."""
    settings = settings or Settings.from_env()
    setup_logging(settings.log.level, json=settings.log.json, history_size=settings.log.history_size)
    for secret in (settings.auth.gateway_token, settings.http.read_token):
        register_secret(secret)
    setup_tracing(TELEMETRY_NAME)
    if settings.trace_sql:
        instrument_asyncpg()

    cors = CORSConfig(allow_origins=list(settings.http.cors_origins), allow_headers=["*"],
                      allow_methods=["GET", "POST", "DELETE", "OPTIONS"]) if settings.http.cors_origins else None
    # Request spans continue an incoming W3C `traceparent`; an unsampled request costs next to
    # nothing (ts_runtime.telemetry). HTTP metrics keep the names Litestar's Prometheus middleware gave.
    spans = server_spans(exclude=["/metrics"])
    http_metrics = HttpMetrics(app_name=TELEMETRY_NAME, prefix="api_http", exclude=("/metrics",))
    # With a read token, the gateway token (which may also delete) reads too.
    read_tokens = (settings.http.read_token, settings.auth.gateway_token) if settings.http.read_token else ()
    core = CorePlugin(CoreConfig(
        service=SERVICE,
        version=VERSION,
        checks={"timescaledb": database_check},
        health_fields=_earlier_health_fields,
        unavailable_kind=unavailable_kind,
        on_unavailable=_count_database_error,
        read_tokens=read_tokens,
        body_timeout_seconds=settings.http.body_timeout_seconds,
    ))

    # The writer owns its connections (it coalesces concurrent requests into one statement) and
    # reaches the handlers as a dependency: built here, opened by the lifespan.
    db = Database(settings.database)
    writer = IngestWriter(db, settings.writer)

    def provide_ingest_writer() -> IngestWriter:
        return writer

    app = IngestApp(
        route_handlers=[ingest_message, ingest_batch, *signal_handlers],
        lifespan=[_lifespan(settings, db, writer)],
        dependencies={INGEST_WRITER: Provide(provide_ingest_writer, use_cache=True, sync_to_thread=False)},
        state=State({"token_bytes": settings.auth.gateway_token.encode()}),
        cors_config=cors,
        plugins=[core],
        middleware=[spans, http_metrics],
        openapi_config=OpenAPIConfig(
            title="TP Capital ingest API",
            version=VERSION,
            path="/schema",
            render_plugins=[JsonRenderPlugin()],
        ),
        request_max_body_size=MAX_BODY_BYTES,
        # Logging is ts_runtime's JSON lines (set up above); Litestar must not replace it.
        logging_config=None,
    )
    if fast_path:
        app.fast_path = IngestFastPath(
            writer=writer, token=settings.auth.gateway_token, spans=spans, http_metrics=http_metrics,
            body_timeout=settings.http.body_timeout_seconds,
            explain=partial(unexpected_error, path="/ingest", unavailable_kind=unavailable_kind,
                            on_unavailable=_count_database_error),
        )
    return app


__all__ = ["ErrorBody", "create_app"]
