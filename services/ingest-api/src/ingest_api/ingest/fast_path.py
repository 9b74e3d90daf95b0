"""POST /ingest served straight from the ASGI scope, for the requests that need nothing else.

Why: profiled under load, Litestar's per-request work around this one handler (routing, six
middleware layers each wrapping `receive`/`send`, the Request object, the dependency, the
exception middleware, response rendering) was half of the API's CPU per `/ingest` request
(0.35 ms → 0.17 ms without it; docs/ingest-api.md, "Issue 15"). The gateway sends nothing but
this request, thousands of times a second at worst, so its common case skips the framework.

What it takes (`takes`): a POST to exactly `/ingest`, no query string, one `X-Gateway-Token`
that matches, a JSON Content-Type, no `Origin` (CORS stays Litestar's), and a Content-Length
within the limit, or none (a chunked body). Anything else, a wrong token or an oversized body
included, goes to the Litestar route, which stays the documented one (OpenAPI) and answers as
it always did. Nothing is read from the request before that choice, so nothing needs replaying.

What it keeps, by calling the same code as the route: the body deadline (`receive_by`), the
UTF-8 check, validation and the writer (`handlers.store_one`), the HTTP metrics
(`HttpMetrics.record`), the request span (`ServerSpans`), the error envelope (`ApiError.body`)
and the answer to an unexpected error (`unexpected_error`). tests/ingest/test_fast_path.py
sends the same requests to the app with and without it and compares status, headers and body.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Callable
from time import perf_counter

import msgspec

from ts_runtime.api_core.checks import is_json, require_utf8_body
from ts_runtime.api_core.errors import ApiError, body_too_large
from ts_runtime.api_core.middleware import receive_by
from ts_runtime.metrics import HttpMetrics
from ts_runtime.telemetry import ServerSpans

from .handlers import MAX_BODY_BYTES, store_one
from .writer import IngestWriter

PATH = "/ingest"
_encode = msgspec.json.Encoder().encode


def _start(status: int, body: bytes, headers: dict[str, str] | None) -> dict:
    # The headers Litestar sends for the same answer (the differential test holds them equal).
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if headers:
        raw += [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()]
    return {"type": "http.response.start", "status": status, "headers": raw}


class IngestFastPath:
    """Serves the common case of POST /ingest; `takes(scope)` says whether a request is one."""

    def __init__(self, *, writer: IngestWriter, token: str, spans: ServerSpans, http_metrics: HttpMetrics,
                 body_timeout: float, explain: Callable[[Exception], ApiError]) -> None:
        self._writer = writer
        self._token = token.encode()
        self._spans = spans
        self._http_metrics = http_metrics
        self._in_progress = http_metrics.in_progress("POST", PATH)
        self._body_timeout = body_timeout
        self._explain = explain

    def takes(self, scope) -> bool:  # type: ignore[no-untyped-def]
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "POST" or scope["query_string"]:
            return False
        token = content_type = length = None
        for name, value in scope["headers"]:
            if name == b"x-gateway-token":  # auth.TOKEN_HEADER
                if token is not None:
                    return False  # sent twice: Litestar's answer, whatever it is
                token = value
            elif name == b"content-type":
                content_type = value
            elif name == b"content-length":
                length = value
            elif name == b"origin":
                return False
        # Non-ASCII bytes: Litestar reads header values as Latin-1, so its answer may differ.
        if token is None or not token.isascii() or not hmac.compare_digest(token, self._token):
            return False
        if content_type is None or not is_json(content_type.decode("latin-1")):
            return False
        return length is None or (length.isdigit() and 0 < int(length) <= MAX_BODY_BYTES)

    async def __call__(self, scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        started = perf_counter()
        span, context_token = self._spans.start(scope, PATH)
        self._in_progress.inc()
        status = 0
        error: BaseException | None = None
        try:
            try:
                body = await self._read_body(receive)
                if body is None:
                    return  # the client went away before its body arrived: nothing stored, no answer
                require_utf8_body(body)
                result = await store_one(self._writer, body)
                status, payload, headers = 200, _encode(result), None
            except ApiError as exc:
                status, payload, headers = exc.status_code, _encode(exc.body()), exc.headers
            except Exception as exc:  # noqa: BLE001 - answered as the route's exception handler would
                answer = self._explain(exc)
                status, payload, headers = answer.status_code, _encode(answer.body()), answer.headers
            await send(_start(status, payload, headers))
            await send({"type": "http.response.body", "body": payload})
        except BaseException as exc:
            error = exc
            raise
        finally:
            self._in_progress.dec()
            if status:
                self._http_metrics.record("POST", PATH, status, perf_counter() - started)
                if span.is_recording():
                    self._spans.answered(span, status)
            self._spans.finish(span, context_token, error)

    async def _read_body(self, receive) -> bytes | None:  # type: ignore[no-untyped-def]
        """The whole body (None if the client went away first); 413 past MAX_BODY_BYTES."""
        deadline = asyncio.get_running_loop().time() + self._body_timeout
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive_by(receive, deadline, self._body_timeout)
            if message["type"] != "http.request":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                raise body_too_large()
            if not message.get("more_body", False):
                # The whole body in one message is the usual case: no join.
                return b"".join([*chunks, chunk]) if chunks else chunk
            chunks.append(chunk)
