"""The HTTP floors for `ingest_bench.py`: the same server (granian) and framework (Litestar) with a
handler that reads the body and answers, and nothing else (no auth, parsing, database, metrics or
tracing): no Litestar route can go faster on the same machine. `raw_app` is the server alone, a
bare ASGI callable doing the same: the floor of the ingest API's fast path (ingest/fast_path.py),
which serves the gateway's requests without the framework.
"""

from __future__ import annotations

from litestar import Litestar, Request, post

from contracts import IngestResult


@post("/ingest", status_code=200)
async def ingest(request: Request) -> IngestResult:
    await request.body()
    return IngestResult.stored_(1)


def create_app() -> Litestar:
    return Litestar([ingest], logging_config=None, openapi_config=None)


_ANSWER = b'{"success":true,"status":"stored","stored":true,"messageId":1}'
_START = {"type": "http.response.start", "status": 200,
          "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(_ANSWER)).encode())]}


async def raw_app(scope, receive, send) -> None:  # type: ignore[no-untyped-def]
    if scope["type"] != "http":
        return
    message = await receive()
    while message.get("more_body", False):
        message = await receive()
    await send(_START)
    await send({"type": "http.response.body", "body": _ANSWER})
