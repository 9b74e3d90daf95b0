"""The shared-secret check for the gateway and the DELETE endpoints (constant time)."""

from __future__ import annotations

import hmac
import logging

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from . import metrics
from .errors import ApiError

log = logging.getLogger(__name__)

TOKEN_HEADER = "x-gateway-token"
# The old dashboard called the DELETE endpoints with an API key header. Only those endpoints
# accept it: the ingest endpoints are the gateway's, which always sends X-Gateway-Token.
DASHBOARD_HEADER = "x-api-key"


async def require_token(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    """Litestar guard: 401 with the old error texts when X-Gateway-Token is missing or wrong.

    Async on purpose: Litestar runs a sync guard in a worker thread, a costly hop per request.
    """
    _check(connection, connection.headers.get(TOKEN_HEADER))


def check_token(connection: ASGIConnection) -> None:
    """The same check, called first thing by the ingest handlers instead of as a guard: Litestar
    copies the route handler object for every guard on every request, which on the hottest path
    cost more than the check itself."""
    _check(connection, connection.headers.get(TOKEN_HEADER))


async def require_token_or_api_key(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    """The guard of the DELETE endpoints: the token in X-Gateway-Token or in the old X-API-Key."""
    _check(connection, connection.headers.get(TOKEN_HEADER) or connection.headers.get(DASHBOARD_HEADER))


def _check(connection: ASGIConnection, supplied: str | None) -> None:
    expected: bytes = connection.app.state.token_bytes
    client = connection.client.host if connection.client else "unknown"
    if not supplied:
        metrics.AUTH_FAILURES.labels(reason="missing").inc()
        metrics.INGEST_UNAUTHORIZED.inc()
        log.warning("request without token refused", extra={"client": client, "path": connection.url.path})
        raise ApiError(401, "Missing X-Gateway-Token header")
    if not hmac.compare_digest(supplied.encode("utf-8", "surrogateescape"), expected):
        metrics.AUTH_FAILURES.labels(reason="invalid").inc()
        metrics.INGEST_UNAUTHORIZED.inc()
        # Never the supplied value: it may be a real secret sent to the wrong place.
        log.warning("request with a wrong token refused", extra={"client": client, "path": connection.url.path})
        raise ApiError(401, "Invalid gateway token")
