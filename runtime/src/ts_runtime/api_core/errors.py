"""Error answers of both APIs: `{"error": "...", "details": [...], "errors": [{field, message}]}`.

`error` says what is wrong, `details` one line per problem (what the old APIs sent), `errors` the
same problems by field for a form to highlight. The workspace API's old envelope also has
`"success": false` (CoreConfig.success_flag). Every 4xx/5xx of an app using the core plugin has
this shape: ApiError raised by a service, Litestar's own errors (bad query value, unknown route,
wrong method, body too large), a database outage (503 with Retry-After), and anything unexpected
(500, logged with its traceback; the client sees no detail).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException
from litestar.params import ParameterKwarg

log = logging.getLogger(__name__)


class FieldProblem(msgspec.Struct, omit_defaults=True):
    field: str
    message: str
    # The old workspace envelope only (express-validator's `{msg, param}`, read by the old dashboard).
    msg: str | None = None
    param: str | None = None

    @property
    def text(self) -> str:
        return f"{self.field} {self.message}"


class ErrorBody(msgspec.Struct, omit_defaults=True, kw_only=True):
    # Only where the old envelope had it (the workspace API): always false here.
    success: bool | None = None
    error: str
    details: list[str] | None = None
    errors: list[FieldProblem] | None = None
    # The old workspace envelope only: its key for the sentence (`{success: false, message}`).
    message: str | None = None


class ApiError(Exception):
    """An answer other than 2xx, raised from services, guards and handlers."""

    def __init__(self, status_code: int, error: str, details: list[str] | None = None,
                 headers: dict[str, str] | None = None, errors: list[FieldProblem] | None = None) -> None:
        super().__init__(error)
        self.status_code = status_code
        self.error = error
        self.errors = errors
        self.details = details if details is not None else ([p.text for p in errors] if errors else None)
        self.headers = headers

    def body(self, success_flag: bool = False) -> ErrorBody:
        if not success_flag:
            return ErrorBody(error=self.error, details=self.details, errors=self.errors)
        # The old workspace envelope: `success: false`, the sentence again as `message`, and each
        # problem also as `{msg, param}`.
        errors = [FieldProblem(p.field, p.message, msg=p.text, param=p.field) for p in self.errors] if self.errors else None
        return ErrorBody(success=False, error=self.error, details=self.details, errors=errors, message=self.error)


def validation_failed(problems: list[FieldProblem] | list[str]) -> ApiError:
    """400 naming every bad field (FieldProblems) or with one line per problem (strings)."""
    if problems and isinstance(problems[0], FieldProblem):
        return ApiError(400, "Validation failed", errors=problems)  # type: ignore[arg-type]
    return ApiError(400, "Validation failed", problems)  # type: ignore[arg-type]


def not_found(what: str) -> ApiError:
    return ApiError(404, f"{what} not found")


def body_too_large() -> ApiError:
    return ApiError(413, "Request body too large")


def database_unavailable() -> ApiError:
    # Retry-After: the gateway backs off anyway; other clients get a hint.
    return ApiError(503, "Database connection failed", headers={"Retry-After": "5"})


def wire_names(request: Request) -> dict[str, str]:
    """Python parameter name → the name on the wire (`from_` → `from`, `signal_type` → `type`), for
    the handler's own parameters and those of its dependencies (a route's `request_input` provider
    declares the query parameters it checks)."""
    try:
        signatures = [request.route_handler.parsed_fn_signature]
        signatures += [provider.parsed_fn_signature for provider in request.route_handler.resolve_dependencies().values()]
    except Exception:  # noqa: BLE001 - no handler resolved (unknown route): nothing to rename
        return {}
    names = {}
    for signature in signatures:
        for name, definition in signature.parameters.items():
            kwarg = definition.kwarg_definition
            if isinstance(kwarg, ParameterKwarg) and kwarg.name and kwarg.name != name:
                names[name] = kwarg.name
    return names


def _problems_from(exc: HTTPException, request: Request) -> list[FieldProblem]:
    if not isinstance(exc.extra, list):
        return []
    renamed = wire_names(request)
    problems = []
    for item in exc.extra:
        if isinstance(item, dict):
            key = str(item.get("key") or "request")
            reason = str(item.get("message") or "").strip()
            message = f"is invalid: {reason[0].lower()}{reason[1:]}" if reason else "is invalid"
            problems.append(FieldProblem(renamed.get(key, key), message))
        else:
            problems.append(FieldProblem("request", str(item)))
    return problems


def unexpected_error(exc: Exception, path: str, unavailable_kind: Callable[[BaseException], str | None],
                     on_unavailable: Callable[[str], None] | None = None) -> ApiError:
    """The answer to an exception nothing handled: 503 when the database is out of reach, 400 for
    a body nested too deeply, else 500 (logged with its traceback; the client sees no detail)."""
    kind = unavailable_kind(exc)
    if kind is not None:
        if on_unavailable is not None:
            on_unavailable(kind)
        return database_unavailable()
    if isinstance(exc, RecursionError):
        # A body nested thousands of levels deep: the client's mistake, not ours.
        log.warning("request nested too deeply", extra={"path": path})
        return ApiError(400, "Validation failed", ["body is nested too deeply"])
    log.error("unhandled error", exc_info=exc, extra={"path": path})
    return ApiError(500, "Internal server error")


def exception_handlers(*, success_flag: bool, unavailable_kind: Callable[[BaseException], str | None],
                       on_unavailable: Callable[[str], None] | None = None) -> dict:
    """The handlers the core plugin installs, for one API's envelope and database errors."""

    def api_error(_: Request, exc: ApiError) -> Response[ErrorBody]:
        return Response(exc.body(success_flag), status_code=exc.status_code, headers=exc.headers)

    def http_exception(request: Request, exc: HTTPException) -> Response[ErrorBody]:
        # Litestar's own 4xx: bad query parameter, body too large, unknown route, wrong method.
        problems = _problems_from(exc, request)
        error = exc.detail
        if exc.status_code == 413:
            error = body_too_large().error
        elif exc.status_code == 400 and problems:
            error = "Validation failed"
        body = ApiError(exc.status_code, error, errors=problems or None).body(success_flag)
        return Response(body, status_code=exc.status_code, headers=exc.headers)

    def unexpected(request: Request, exc: Exception) -> Response[ErrorBody]:
        return api_error(request, unexpected_error(exc, request.url.path, unavailable_kind, on_unavailable))

    return {ApiError: api_error, HTTPException: http_exception, Exception: unexpected}
