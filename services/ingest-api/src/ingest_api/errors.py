"""Error bodies: `{"error": "...", "details": [...]}` for every 4xx/5xx, as the old API answered."""

from __future__ import annotations

import logging

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR, HTTP_503_SERVICE_UNAVAILABLE

from . import metrics
from .db import DatabaseUnavailable, unavailable_kind

log = logging.getLogger(__name__)


class ErrorBody(msgspec.Struct, omit_defaults=True):
    error: str
    details: list[str] | None = None


class ApiError(Exception):
    """An answer other than 2xx, raised from services and guards."""

    def __init__(self, status_code: int, error: str, details: list[str] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(error)
        self.status_code = status_code
        self.body = ErrorBody(error=error, details=details)
        self.headers = headers


def validation_failed(details: list[str]) -> ApiError:
    return ApiError(400, "Validation failed", details)


def database_unavailable() -> ApiError:
    # Retry-After: the gateway backs off anyway; other clients get a hint.
    return ApiError(HTTP_503_SERVICE_UNAVAILABLE, "Database connection failed", headers={"Retry-After": "5"})


def _api_error(_: Request, exc: ApiError) -> Response[ErrorBody]:
    return Response(exc.body, status_code=exc.status_code, headers=exc.headers)


def _http_exception(_: Request, exc: HTTPException) -> Response[ErrorBody]:
    # Litestar's own 4xx (bad query parameter, body too large, unknown route, wrong method).
    details = None
    if isinstance(exc.extra, list):
        details = []
        for item in exc.extra:
            if isinstance(item, dict):
                key, message = item.get("key"), item.get("message", "")
                details.append(f"{key}: {message}" if key else str(message))
            else:
                details.append(str(item))
    error = exc.detail
    if exc.status_code == 413:
        error = "Request body too large"
    elif exc.status_code == 400 and details:
        error = "Validation failed"
    return Response(ErrorBody(error=error, details=details or None), status_code=exc.status_code,
                    headers=exc.headers)


def _unexpected(request: Request, exc: Exception) -> Response[ErrorBody]:
    kind = unavailable_kind(exc)
    if kind is not None or isinstance(exc, DatabaseUnavailable):
        metrics.DB_ERRORS.labels(error_type=kind or "unavailable").inc()
        error = database_unavailable()
        return Response(error.body, status_code=error.status_code, headers=error.headers)
    log.exception("unhandled error", extra={"path": request.url.path})
    return Response(ErrorBody(error="Internal server error"), status_code=HTTP_500_INTERNAL_SERVER_ERROR)


exception_handlers = {
    ApiError: _api_error,
    HTTPException: _http_exception,
    Exception: _unexpected,
}
