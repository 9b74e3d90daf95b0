"""POST /ingest and POST /ingest/batch (thin: check the token, read the body, validate, hand to the writer).

The token is checked in the handler rather than by a guard (auth.check_token says why); the
body's UTF-8 by the core plugin's request when it is read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from litestar import Request, post
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import OpenAPIMediaType, Operation, RequestBody, Schema
from litestar.params import SkipValidation

from contracts import BatchResult, IngestResult

from .. import metrics
from ..auth import check_token
from ..db import DatabaseUnavailable
from ..errors import ApiError, ErrorBody, database_unavailable, validation_failed
from ..openapi import BATCH_SCHEMA, PAYLOAD_SCHEMA
from .validation import Prepared, Rejected, decode_envelope, validate
from .writer import IngestWriter

# One message is a few KiB (Telegram caps text at 4,096 characters); a batch holds 1,000.
MAX_BODY_BYTES = 1024 * 1024
MAX_BATCH_BODY_BYTES = 32 * 1024 * 1024

# OpenAPI: the body is decoded by the shared contract, which Litestar cannot infer from a raw body;
# its schema is generated from the same contract types (../openapi.py).


def _operation_with_body(schema: Schema) -> type[Operation]:
    @dataclass
    class _Operation(Operation):
        def __post_init__(self) -> None:
            self.request_body = RequestBody(
                content={"application/json": OpenAPIMediaType(schema=schema)}, required=True
            )

    return _Operation


_ERRORS = {
    400: ResponseSpec(ErrorBody, description="Validation failed (details name each bad field)", generate_examples=False),
    401: ResponseSpec(ErrorBody, description="Missing or invalid X-Gateway-Token", generate_examples=False),
    413: ResponseSpec(ErrorBody, description="Request body too large", generate_examples=False),
    503: ResponseSpec(ErrorBody, description="Database connection failed: retry later", generate_examples=False),
}


# The handlers take the app's writer as the `ingest_writer` dependency (app.py provides it). Not
# a `db_connection` per request: the writer coalesces concurrent requests into one statement on
# one connection of its own pool, so a connection taken per request would sit idle meanwhile.
INGEST_WRITER = "ingest_writer"
Writer = NamedDependency[SkipValidation[IngestWriter]]


@post(
    "/ingest",
    operation_id="ingestMessage",
    summary="Store one message (new, edited or deleted), exactly once",
    status_code=200,
    request_max_body_size=MAX_BODY_BYTES,
    operation_class=_operation_with_body(PAYLOAD_SCHEMA),
    responses=_ERRORS,
    tags=["ingest"],
)
async def ingest_message(request: Request, ingest_writer: Writer) -> IngestResult:
    # The common case of this request is served by fast_path.py, which calls store_one too.
    check_token(request)
    return await store_one(ingest_writer, await request.body())


async def store_one(writer: IngestWriter, body: bytes) -> IngestResult:
    """Validate one message (UTF-8 already checked) and store it; ApiError 400 or 503 otherwise."""
    try:
        item = validate(body)
    except Rejected as exc:
        metrics.INGEST_REJECTED.inc()
        raise validation_failed(exc.details) from None
    try:
        result = await writer.submit(item)
    except DatabaseUnavailable:
        metrics.INGEST_UNAVAILABLE.inc()
        raise database_unavailable() from None
    metrics.BY_STATUS[result.status].inc()
    return result


@post(
    "/ingest/batch",
    operation_id="ingestBatch",
    summary="Store up to 1,000 messages in one database round-trip; one result per message, in order",
    status_code=200,
    request_max_body_size=MAX_BATCH_BODY_BYTES,
    operation_class=_operation_with_body(BATCH_SCHEMA),
    responses=_ERRORS,
    tags=["ingest"],
)
async def ingest_batch(request: Request, ingest_writer: Writer) -> BatchResult:
    check_token(request)
    # One bad byte anywhere makes the whole body not JSON: 400 for the batch, nothing stored
    # (CoreRequest.body() checks the UTF-8).
    body = await request.body()
    try:
        envelope = decode_envelope(body)
    except Rejected as exc:
        metrics.INGEST_REJECTED.inc()
        raise validation_failed(exc.details) from None

    results: list[IngestResult | None] = [None] * len(envelope.messages)
    valid: list[tuple[int, Prepared]] = []
    now = datetime.now(timezone.utc)
    for index, raw in enumerate(envelope.messages):
        try:
            valid.append((index, validate(raw, now)))
        except Rejected as exc:
            results[index] = IngestResult.rejected([f"messages[{index}].{d}" for d in exc.details], exc.message_id)
    if valid:
        try:
            written = await ingest_writer.write([item for _, item in valid])
        except DatabaseUnavailable:
            metrics.INGEST_UNAVAILABLE.inc(len(valid))
            raise database_unavailable() from None
        for (index, _), result in zip(valid, written):
            results[index] = result

    final: list[IngestResult] = results  # type: ignore[assignment]
    counts = {"stored": 0, "duplicate": 0, "rejected": 0}
    for result in final:
        counts[result.status] += 1
    for status, count in counts.items():
        if count:
            metrics.BY_STATUS[status].inc(count)
    return BatchResult(results=final, stored=counts["stored"], duplicates=counts["duplicate"],
                       rejected=counts["rejected"])


__all__ = ["INGEST_WRITER", "ApiError", "ingest_batch", "ingest_message", "store_one"]
