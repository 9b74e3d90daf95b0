"""ASGI middleware of the core plugin: a deadline on request bodies, and a correct `Allow` on OPTIONS.

Body deadline: granian bounds the time to read a request's headers (30 s) but not its body, so a
client trickling a body one byte at a time held a request open for as long as it liked. Here the
whole body must have arrived within `timeout` seconds of the request's start; otherwise the
request is answered 408 and the connection closed. (No deadline once the body is complete.)

Allow: Litestar builds the automatic OPTIONS answer of a path when its first handler is
registered, and does not update it when another handler joins the path later, so `OPTIONS
/signals` said `GET, OPTIONS` although `DELETE /signals` exists. The header is rebuilt from the
app's routes.
"""

from __future__ import annotations

import asyncio

from litestar.routes import HTTPRoute
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from .checks import check_scope
from .errors import ApiError


class BodyTimeout(ApiError):
    def __init__(self, timeout: float) -> None:
        super().__init__(408, "Request body timeout",
                         [f"body: the whole body must arrive within {timeout:g} s (BODY_TIMEOUT_SECONDS)"],
                         headers={"Connection": "close"})


async def receive_by(receive: Receive, deadline: float, timeout: float) -> Message:
    """The next request message, or BodyTimeout (408) once the loop's clock passes `deadline`."""
    try:
        async with asyncio.timeout_at(deadline):
            return await receive()
    except TimeoutError:
        raise BodyTimeout(timeout) from None


def body_deadline(timeout: float):
    """Middleware factory: the body of each request within `timeout` seconds of its start."""

    def middleware(app: ASGIApp) -> ASGIApp:
        async def with_deadline(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            complete = False

            async def receive_before_deadline() -> Message:
                nonlocal complete
                if complete:
                    return await receive()
                message = await receive_by(receive, deadline, timeout)
                if message["type"] != "http.request" or not message.get("more_body", False):
                    complete = True
                return message

            await app(scope, receive_before_deadline, send)

        return with_deadline

    return middleware


def _allowed_methods(scope: Scope) -> str | None:
    template = scope.get("path_template")
    for route in scope["app"].routes:
        if isinstance(route, HTTPRoute) and route.path_format == template:
            return ", ".join(sorted(route.methods))
    return None


def options_allow(app: ASGIApp) -> ASGIApp:
    """Middleware: the Allow header of OPTIONS answers lists every method of the path."""

    async def fix_allow(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "OPTIONS":
            await app(scope, receive, send)
            return

        async def send_with_allow(message: Message) -> None:
            if message["type"] == "http.response.start":
                allowed = _allowed_methods(scope)
                headers = list(message.get("headers", []))
                if allowed is not None and any(name.lower() == b"allow" for name, _ in headers):
                    headers = [(n, v) for n, v in headers if n.lower() != b"allow"] + [(b"allow", allowed.encode())]
                    message = {**message, "headers": headers}
            await send(message)

        await app(scope, receive, send_with_allow)

    return fix_allow


def request_checks(app: ASGIApp) -> ASGIApp:
    """Middleware: the query and JSON-write checks of checks.py, before the handler runs."""

    async def checked(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            check_scope(scope)
        await app(scope, receive, send)

    return checked
