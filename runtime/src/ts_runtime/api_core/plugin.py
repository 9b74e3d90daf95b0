"""The core plugin: what both APIs need besides their own routes, wired in one place.

    app = Litestar(route_handlers=[...], plugins=[CorePlugin(CoreConfig(service="tp-capital", ...))])

adds the operations routes (routes.py), the error envelope (errors.py), the request checks
(checks.py: query and body UTF-8, JSON writes, the optional read token) and the middleware
(middleware.py: body deadline, OPTIONS Allow, the request checks) and the dependencies
(dependencies.py: `db_connection` from the app's pool). Each API passes what differs: its name and version,
its checks, the fields its earlier /health answer had, whether its error envelope has `success`,
which errors mean "database unavailable" and what to count when that happens.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from litestar.config.app import AppConfig
from litestar.datastructures import State
from litestar.openapi.datastructures import ResponseSpec
from litestar.plugins import InitPluginProtocol

from .. import database, health
from .checks import CoreRequest, PUBLIC, WRITE_METHODS, read_token_guard
from .dependencies import core_dependencies
from .errors import ErrorBody, exception_handlers
from .middleware import body_deadline, options_allow, request_checks
from .routes import system_routes

# A check gets the app's state (where the lifespan put the database) and answers like a
# ts_runtime.health probe: a message, or (status, message); raising means unhealthy.
Check = Callable[[State], Awaitable[health.ProbeResult]]
HealthFields = Callable[[Mapping[str, health.CheckResult], float], Mapping[str, Any]]


@dataclass(frozen=True)
class CoreConfig:
    # The name in /health and /healthz (the old system's: "tp-capital", "workspace-api").
    service: str
    version: str
    checks: Mapping[str, Check] = field(default_factory=dict)
    # The fields the API's /health had before the old shared format was added (kept for current
    # clients): built from the check results and the app's start (time.monotonic()).
    health_fields: HealthFields | None = None
    # Where /health is served, and each path's OpenAPI operationId.
    health_paths: Mapping[str, str] = field(default_factory=lambda: {"/health": "health"})
    check_timeout: float = health.DEFAULT_CHECK_TIMEOUT
    # `"success": false` in every error body (the workspace API's old envelope).
    success_flag: bool = False
    # Which exceptions mean "database unavailable" (503 with Retry-After), by a short kind for
    # metrics; and what to do when one happens (count it).
    unavailable_kind: Callable[[BaseException], str | None] = database.unavailable_kind
    on_unavailable: Callable[[str], None] | None = None
    # Run before /metrics renders (refresh a gauge).
    before_metrics: Callable[[State], Awaitable[None]] | None = None
    # Tokens accepted in X-API-Key on the read endpoints; empty: reads are open.
    read_tokens: tuple[str, ...] = ()
    body_timeout_seconds: float = 30.0


async def database_check(state: State) -> str:
    """The `timescaledb` check of both APIs: a `SELECT 1` through the app's pool (`state.db`)."""
    try:
        await state.db.ping()
    except database.DatabaseUnavailable as exc:
        raise RuntimeError(exc.reason) from None
    return "connected"


_UNSUPPORTED = ResponseSpec(ErrorBody, description="The body is not application/json", generate_examples=False)
_TIMEOUT = ResponseSpec(ErrorBody, description="The body did not arrive in time", generate_examples=False)
_NO_TOKEN = ResponseSpec(ErrorBody, description="Missing or invalid X-API-Key (API_READ_TOKEN is set)",
                         generate_examples=False)


class CorePlugin(InitPluginProtocol):
    def __init__(self, config: CoreConfig) -> None:
        self.config = config
        self.started = time.monotonic()

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        config = self.config
        app_config.route_handlers.extend(system_routes(config, self.started))
        app_config.exception_handlers.update(exception_handlers(
            success_flag=config.success_flag, unavailable_kind=config.unavailable_kind,
            on_unavailable=config.on_unavailable))
        # The query and Content-Type checks are middleware (checks.check_scope says why); the read
        # token, which depends on the handler (its `public` opt), stays a guard, only when configured.
        if config.read_tokens:
            app_config.guards = [read_token_guard(config.read_tokens), *app_config.guards]
        app_config.request_class = CoreRequest
        app_config.dependencies = {**core_dependencies(), **app_config.dependencies}
        # Outermost first: the deadline covers everything that reads the body.
        # Innermost last: the checks answer inside the app's own middleware (metrics and spans see a 415).
        app_config.middleware = [body_deadline(config.body_timeout_seconds), options_allow, *app_config.middleware,
                                 request_checks]
        for handler in app_config.route_handlers:
            _document_answers(handler, config)
        return app_config


def _document_answers(handler: Any, config: CoreConfig) -> None:
    """Add the answers the checks above can give to each operation's OpenAPI responses.

    Handlers are module-level objects, so this changes them for every app of the process; a
    granian worker builds one app, and the additions are facts of this plugin (401 only where a
    read token is configured, which a later app in the same process without one would still show).
    """
    methods = getattr(handler, "http_methods", None)
    if not methods:
        return
    extra: dict[int, ResponseSpec] = {}
    if methods & WRITE_METHODS:
        extra |= {408: _TIMEOUT, 415: _UNSUPPORTED}
    if config.read_tokens and "GET" in methods and not handler.opt.get(PUBLIC):
        extra[401] = _NO_TOKEN
    missing = {code: spec for code, spec in extra.items() if code not in (handler.responses or {})}
    if missing:
        handler.responses = {**(handler.responses or {}), **missing}
