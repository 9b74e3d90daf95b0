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
# The old dashboard called the DELETE endpoints with an API key header.
ALTERNATE_HEADER = "x-api-key"


async def require_token(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    """Litestar guard: 401 with the old error texts when the token is missing or wrong.

    Async on purpose: Litestar runs a sync guard in a worker thread, a costly hop per request.
    """
    expected: bytes = connection.app.state.token_bytes
    supplied = connection.headers.get(TOKEN_HEADER) or connection.headers.get(ALTERNATE_HEADER)
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
