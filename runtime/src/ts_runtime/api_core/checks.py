"""Checks every request goes through before its handler (the core plugin's innermost middleware,
and a guard for the read token), and the UTF-8 check of request bodies.

- the query string must be UTF-8 once percent-decoded (Litestar decodes it with
  `errors="replace"`: `?search=PETR%C3` would silently search for "PETR\\ufffd");
- a write (POST, PUT, PATCH, DELETE) that carries a body must say `Content-Type: application/json`
  (415 otherwise): a browser sends `text/plain` or form bodies cross-site without a CORS
  preflight, so accepting them would let any web page the trader visits write here;
- with a read token configured (API_READ_TOKEN), GET and HEAD need it in `X-API-Key` (401), except
  the operations routes (health, readiness, metrics) and the OpenAPI schema; a page a browser opens
  by itself (route opt `BROWSER_PAGE`, e.g. /report) also takes it as the password of HTTP Basic,
  and its 401 says `WWW-Authenticate: Basic` so the browser asks for it (only there: elsewhere a
  browser that remembered the password would send it on every request to the origin);
- a body must be UTF-8 (RFC 8259: JSON text is UTF-8): msgspec checks only the strings it decodes,
  when it decodes them, so a bad byte in an unknown field passed unseen and one inside a string
  escaped as a UnicodeDecodeError (a 500). `CoreRequest.body()` checks the whole body once.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Sequence
from urllib.parse import unquote_to_bytes

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from .errors import ApiError, FieldProblem

READ_METHODS = frozenset({"GET", "HEAD"})
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
JSON = "application/json"
READ_TOKEN_HEADER = "x-api-key"
# Route handlers with this `opt` flag are open even when a read token is configured.
PUBLIC = "public"
# Route handlers with this `opt` flag are pages a browser opens by itself: the read token may come
# as HTTP Basic's password (any user name), and a 401 asks the browser for it.
BROWSER_PAGE = "browser_page"
_BASIC_PROMPT = {"WWW-Authenticate": 'Basic realm="API_READ_TOKEN", charset="UTF-8"'}


def utf8_problem(data: bytes, what: str) -> FieldProblem | None:
    """A FieldProblem naming the first invalid byte, or None when `data` is valid UTF-8."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad = exc.object[exc.start:exc.end].hex(" ")
        return FieldProblem(what, f"is not valid UTF-8 ({exc.reason}: byte {bad} at offset {exc.start})")
    return None


def require_utf8_body(data: bytes) -> None:
    """400 naming the first invalid byte unless the request body `data` is UTF-8."""
    if problem := utf8_problem(data, "body"):
        raise ApiError(400, "Validation failed", errors=[problem])


def is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == JSON or (media.startswith("application/") and media.endswith("+json"))


def read_token_guard(tokens: Sequence[str]):
    """A guard asking GET/HEAD for one of `tokens` in X-API-Key, or as HTTP Basic's password on a
    `BROWSER_PAGE` (constant-time compare)."""
    expected = [token.encode() for token in tokens]

    async def require_read_token(connection: ASGIConnection, handler: BaseRouteHandler) -> None:
        if connection.scope["method"] not in READ_METHODS or handler.opt.get(PUBLIC):
            return
        openapi = connection.app.openapi_config
        if openapi is not None and connection.scope["path"].startswith(openapi.path):
            return
        page = bool(handler.opt.get(BROWSER_PAGE))
        prompt = _BASIC_PROMPT if page else None
        supplied = connection.headers.get(READ_TOKEN_HEADER)
        given = supplied.encode("utf-8", "surrogateescape") if supplied else None
        if given is None and page:
            given = _basic_password(connection.headers.get("authorization"))
        if not given:
            where = "X-API-Key (or as the password a browser asks for)" if page else "X-API-Key"
            raise ApiError(401, "Missing X-API-Key header",
                           [f"the read endpoints need the API_READ_TOKEN value in {where}"], headers=prompt)
        # Every candidate is compared, so the time taken does not tell which one was close.
        matches = [hmac.compare_digest(given, token) for token in expected]
        if not any(matches):
            raise ApiError(401, "Invalid API key", headers=prompt)

    return require_read_token


def _basic_password(authorization: str | None) -> bytes | None:
    """The password of `Authorization: Basic base64(user:password)`, or None when absent or malformed
    (then the request is answered as one without a token: 401 and the browser asks again)."""
    if not authorization:
        return None
    scheme, _, encoded = authorization.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip().encode("ascii", "replace"), validate=True)
    except (binascii.Error, ValueError):
        return None
    _, colon, password = decoded.partition(b":")
    return password if colon else None


def check_scope(scope) -> None:  # type: ignore[no-untyped-def]
    """The query and JSON-write checks above on a raw ASGI scope (the core plugin runs them as its
    innermost middleware, after routing, rather than as guards: Litestar copies the route handler
    object for every guard it calls, on every request)."""
    raw: bytes = scope.get("query_string", b"")
    if raw and (problem := utf8_problem(unquote_to_bytes(raw), "query")):
        raise ApiError(400, "Query string is not valid UTF-8", errors=[problem])
    if scope["method"] not in WRITE_METHODS:
        return
    length = transfer = content_type = None
    for name, value in scope["headers"]:
        if name == b"content-length":
            length = value
        elif name == b"transfer-encoding":
            transfer = value
        elif name == b"content-type":
            content_type = value
    has_body = length.strip() not in (b"", b"0") if length is not None else transfer is not None
    if not has_body:
        return
    sent = content_type.decode("latin-1") if content_type is not None else ""
    if not is_json(sent):
        raise ApiError(415, f"Content-Type must be {JSON}",
                       [f"Content-Type: expected {JSON}, got {sent.split(';', 1)[0].strip() or 'none'}"])


class CoreRequest(Request):
    """A Request whose body is checked to be UTF-8 once, when first read (400 naming the byte)."""

    _utf8_checked = False

    async def body(self) -> bytes:
        data = await super().body()
        if data and not self._utf8_checked:
            require_utf8_body(data)
            self._utf8_checked = True
        return data
