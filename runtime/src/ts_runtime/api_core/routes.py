"""The operations routes every API serves: /healthz, /health, /ready, /logs, /metrics.

Bodies come from ts_runtime.health (the old shared format) and ts_runtime.logs (the record
history); the same builders serve the gateway's aiohttp endpoints.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from typing import TYPE_CHECKING, Annotated, Any, Literal

import msgspec
from litestar import Request, Response, get
from litestar.datastructures import State
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import QueryParameter

from .. import health, logs
from ..metrics import render_metrics
from .checks import PUBLIC
from .errors import ApiError, ErrorBody, FieldProblem

if TYPE_CHECKING:
    from .plugin import CoreConfig

TAGS = ["system"]


# -- documentation types (the answers are built as dicts by ts_runtime.health) ----------------

class CheckDoc(msgspec.Struct, rename="camel"):
    status: Literal["healthy", "degraded", "unhealthy"]
    message: str
    response_time: float


class HealthDoc(msgspec.Struct, rename="camel"):
    """The old shared format; each API adds its own earlier fields beside it."""

    status: Literal["healthy", "degraded", "unhealthy"]
    service: str
    version: str
    timestamp: str
    uptime: float
    checks: dict[str, CheckDoc]
    response_time: float


class HealthzDoc(msgspec.Struct):
    status: Literal["healthy"]
    service: str
    uptime: float


class Ready(msgspec.Struct):
    ready: bool


class LogEntry(msgspec.Struct):
    timestamp: str
    level: Literal["fatal", "error", "warn", "info", "debug"]
    message: str
    context: dict[str, Any] | None


class LogPage(msgspec.Struct):
    data: list[LogEntry]


_UNHEALTHY = ResponseSpec(HealthDoc, description="A check is unhealthy (the database is unreachable)",
                          generate_examples=False)
_NOT_READY = ResponseSpec(Ready, description="The database is unreachable", generate_examples=False)
_BAD_QUERY = ResponseSpec(ErrorBody, description="limit or level is invalid (named in details)",
                          generate_examples=False)


def _probes(config: "CoreConfig", state: State) -> dict[str, Callable[[], Awaitable[health.ProbeResult]]]:
    return {name: partial(check, state) for name, check in config.checks.items()}


def system_routes(config: "CoreConfig", started: float) -> list:
    """Route handlers bound to one app's configuration (`started`: its time.monotonic() at creation)."""
    opt = {PUBLIC: True}

    async def run_checks(state: State) -> Mapping[str, health.CheckResult]:
        return await health.run_checks(_probes(config, state), config.check_timeout)

    @get("/healthz", operation_id="healthz", summary="Liveness: 200 while the process answers", tags=TAGS, opt=opt)
    async def healthz() -> HealthzDoc:
        return HealthzDoc(**health.healthz_body(config.service, started))

    async def health_answer(request: Request) -> Response[dict[str, Any]]:
        began = time.perf_counter()
        checks = await run_checks(request.app.state)
        extra = config.health_fields(checks, started) if config.health_fields else None
        body = health.health_body(config.service, config.version, started, checks, began, extra)
        return Response(body, status_code=health.http_status(body["status"]))

    health_handlers = [
        get(path, operation_id=operation_id, tags=TAGS, opt=opt,
            summary="Health with a check per dependency (503 while one is unhealthy)",
            responses={200: ResponseSpec(HealthDoc, description="healthy or degraded", generate_examples=False),
                       503: _UNHEALTHY})(health_answer)
        for path, operation_id in config.health_paths.items()
    ]

    @get("/ready", operation_id="ready", summary="Readiness: 503 while a dependency is unhealthy", tags=TAGS,
         opt=opt, responses={503: _NOT_READY})
    async def ready(request: Request) -> Response[Ready]:
        ok = health.overall_status(await run_checks(request.app.state)) != health.UNHEALTHY
        return Response(Ready(ready=ok), status_code=200 if ok else 503)

    @get("/logs", operation_id="logs", summary="Recent log records of this process, newest first", tags=TAGS,
         responses={400: _BAD_QUERY})
    async def recent_logs(
        limit: Annotated[str | None, QueryParameter(
            max_length=20, description=f"at most this many (1 to {logs.MAX_LIMIT:,}); all kept by default")] = None,
        level: Annotated[str | None, QueryParameter(
            max_length=20, description="exactly this level: fatal, error, warn, info or debug")] = None,
    ) -> LogPage:
        try:
            count, name = logs.parse_logs_query(limit, level)
        except logs.LogQueryError as exc:
            raise ApiError(400, f"{exc.field} is invalid", errors=[FieldProblem(exc.field, exc.message)]) from None
        return msgspec.convert(logs.logs_body(count, name), LogPage)

    @get("/metrics", operation_id="metrics", summary="Prometheus metrics", tags=TAGS, media_type="text/plain",
         opt=opt)
    async def metrics(request: Request) -> Response[bytes]:
        if config.before_metrics is not None:
            await config.before_metrics(request.app.state)
        body, content_type = render_metrics()
        return Response(body, media_type=content_type)

    return [healthz, *health_handlers, ready, recent_logs, metrics]

