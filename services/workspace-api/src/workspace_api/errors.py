"""Error answers in the old envelope, with one entry per bad field.

`{"success": false, "error": "Validation failed", "details": ["title is required", …],
"errors": [{"field": "title", "message": "is required"}, …]}`: `details` reads like the ingest
API's, `errors` names each field for a form to highlight.
"""

from __future__ import annotations

import logging

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR, HTTP_503_SERVICE_UNAVAILABLE

from . import metrics
from .db import is_unavailable

log = logging.getLogger(__name__)


class FieldProblem(msgspec.Struct):
    field: str
    message: str
    # The same, under the names the old dashboard reads (express-validator's `{msg, param}`).
    msg: str = ""
    param: str = ""

    def __post_init__(self) -> None:
        self.msg, self.param = self.text, self.field

    @property
    def text(self) -> str:
        return f"{self.field} {self.message}"


class ErrorBody(msgspec.Struct, omit_defaults=True):
    success: bool
    error: str
    details: list[str] | None = None
    errors: list[FieldProblem] | None = None
    # The old service's key for the sentence (`{success: false, message}`); old clients read it.
    message: str | None = None

    def __post_init__(self) -> None:
        self.message = self.message or self.error


class ApiError(Exception):
    """An answer other than 2xx, raised from services and handlers."""

    def __init__(self, status_code: int, error: str, details: list[str] | None = None,
                 headers: dict[str, str] | None = None, errors: list[FieldProblem] | None = None) -> None:
        super().__init__(error)
        self.status_code = status_code
        self.body = ErrorBody(success=False, error=error, details=details, errors=errors)
        self.headers = headers


def validation_failed(problems: list[FieldProblem]) -> ApiError:
    return ApiError(400, "Validation failed", [p.text for p in problems], errors=problems)


def not_found(what: str) -> ApiError:
    return ApiError(404, f"{what} not found")


def database_unavailable() -> ApiError:
    return ApiError(HTTP_503_SERVICE_UNAVAILABLE, "Database connection failed", headers={"Retry-After": "5"})


def _api_error(_: Request, exc: ApiError) -> Response[ErrorBody]:
    return Response(exc.body, status_code=exc.status_code, headers=exc.headers)


def _http_exception(_: Request, exc: HTTPException) -> Response[ErrorBody]:
    # Litestar's own 4xx: bad query parameter, body too large, unknown route, wrong method.
    problems: list[FieldProblem] = []
    if isinstance(exc.extra, list):
        for item in exc.extra:
            if isinstance(item, dict):
                reason = str(item.get("message") or "").strip()
                message = f"is invalid: {reason[0].lower()}{reason[1:]}" if reason else "is invalid"
                problems.append(FieldProblem(str(item.get("key") or "request"), message))
            else:
                problems.append(FieldProblem("request", str(item)))
    error = exc.detail
    if exc.status_code == 413:
        error = "Request body too large"
    elif exc.status_code == 400 and problems:
        error = "Validation failed"
    body = ErrorBody(success=False, error=error, details=[p.text for p in problems] or None, errors=problems or None)
    return Response(body, status_code=exc.status_code, headers=exc.headers)


def _unexpected(request: Request, exc: Exception) -> Response[ErrorBody]:
    if is_unavailable(exc):
        metrics.DB_CONNECTION_STATUS.set(0)
        error = database_unavailable()
        return Response(error.body, status_code=error.status_code, headers=error.headers)
    log.exception("unhandled error", extra={"path": request.url.path})
    return Response(ErrorBody(success=False, error="Internal server error"), status_code=HTTP_500_INTERNAL_SERVER_ERROR)


exception_handlers = {
    ApiError: _api_error,
    HTTPException: _http_exception,
    Exception: _unexpected,
}
