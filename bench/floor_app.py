"""The HTTP floor for `ingest_bench.py`: the same server (granian) and framework (Litestar) with a
handler that reads the body and answers, and nothing else (no auth, parsing, database, metrics or
tracing). No real API on this stack can go faster than this on the same machine.
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
