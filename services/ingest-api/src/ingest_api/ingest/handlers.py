"""POST /ingest and POST /ingest/batch (thin: read the body, validate, hand to the writer)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

import msgspec
from litestar import Request, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIType, Operation, RequestBody, Schema

from contracts import BatchResult, IngestResult, decode_batch

from .. import metrics
from ..auth import require_token
from ..db import DatabaseUnavailable
from ..errors import ApiError, ErrorBody, database_unavailable, validation_failed
from .service import IngestWriter, Prepared, Rejected, require_utf8, validate

# One message is a few KiB (Telegram caps text at 4,096 characters); a batch holds 1,000.
MAX_BODY_BYTES = 1024 * 1024
MAX_BATCH_BODY_BYTES = 32 * 1024 * 1024

# -- OpenAPI: the body is decoded by the shared contract (so old payloads without `kind` still
# work), which Litestar cannot infer from a raw body; its schema is declared here instead.
_DATE = Schema(type=OpenAPIType.STRING, format="date-time",
               description="ISO 8601 with a time zone, from 2013-08-01 to 1 day ahead")
_COMMON = {
    "channelId": Schema(one_of=[
        Schema(type=OpenAPIType.INTEGER, minimum=-(2**63), maximum=2**63 - 1),
        Schema(type=OpenAPIType.STRING, pattern=r"^-?[0-9]{1,18}$"),
    ]),
    "messageId": Schema(type=OpenAPIType.INTEGER, minimum=1, maximum=2**63 - 1),
}
_CONTENT = {
    "timestamp": Schema(**{**_DATE.__dict__, "description": "Telegram's message date (" + str(_DATE.description) + ")"}),
    "text": Schema(type=OpenAPIType.STRING, max_length=65_536, pattern=r"^[^\x00]*$"),
    "photos": Schema(type=OpenAPIType.ARRAY, items=Schema()),
    "channelName": Schema(type=OpenAPIType.STRING, pattern=r"^[^\x00]*$"),
    "sender": Schema(type=OpenAPIType.OBJECT),
    "forward": Schema(type=OpenAPIType.OBJECT),
    "replyToMessageId": Schema(type=OpenAPIType.INTEGER, minimum=1, maximum=2**63 - 1,
                               description="the message (same channel) this one replies to; links a follow-up "
                                           "to the signal it answers"),
}
# One schema per kind; a payload without `kind` is a new message (the old gateway's payload).
PAYLOAD_SCHEMA = Schema(
    title="MessagePayload",
    one_of=[
        Schema(title="NewMessage", type=OpenAPIType.OBJECT, required=["channelId", "messageId", "timestamp"],
               properties={"kind": Schema(type=OpenAPIType.STRING, const="new"), **_COMMON, **_CONTENT}),
        Schema(title="EditedMessage", type=OpenAPIType.OBJECT,
               required=["kind", "channelId", "messageId", "timestamp", "editDate"],
               properties={"kind": Schema(type=OpenAPIType.STRING, const="edited"), **_COMMON, **_CONTENT,
                           "editDate": Schema(**{**_DATE.__dict__, "description": "not before timestamp"})}),
        Schema(title="DeletedMessage", type=OpenAPIType.OBJECT, required=["kind", "channelId", "messageId"],
               properties={"kind": Schema(type=OpenAPIType.STRING, const="deleted"), **_COMMON,
                           "timestamp": _DATE, "deletedAt": _DATE}),
    ],
)
BATCH_SCHEMA = Schema(
    type=OpenAPIType.OBJECT,
    required=["messages"],
    properties={"messages": Schema(
        type=OpenAPIType.ARRAY, min_items=1, max_items=1000,
        # Any element is accepted here: an invalid one gets its own "rejected" result.
        items=Schema(description="a payload as for POST /ingest (MessagePayload)"),
    )},
)


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


def _writer(request: Request) -> IngestWriter:
    return request.app.state.writer


@post(
    "/ingest",
    operation_id="ingestMessage",
    summary="Store one message (new, edited or deleted), exactly once",
    guards=[require_token],
    status_code=200,
    request_max_body_size=MAX_BODY_BYTES,
    operation_class=_operation_with_body(PAYLOAD_SCHEMA),
    responses=_ERRORS,
    tags=["ingest"],
)
async def ingest_message(request: Request) -> IngestResult:
    body = await request.body()
    try:
        require_utf8(body)
        item = validate(body)
    except Rejected as exc:
        metrics.INGEST_REJECTED.inc()
        raise validation_failed(exc.details) from None
    try:
        result = await _writer(request).submit(item)
    except DatabaseUnavailable:
        metrics.INGEST_UNAVAILABLE.inc()
        raise database_unavailable() from None
    metrics.BY_STATUS[result.status].inc()
    return result


@post(
    "/ingest/batch",
    operation_id="ingestBatch",
    summary="Store up to 1,000 messages in one database round-trip; one result per message, in order",
    guards=[require_token],
    status_code=200,
    request_max_body_size=MAX_BATCH_BODY_BYTES,
    operation_class=_operation_with_body(BATCH_SCHEMA),
    responses=_ERRORS,
    tags=["ingest"],
)
async def ingest_batch(request: Request) -> BatchResult:
    body = await request.body()
    try:
        # One bad byte anywhere makes the whole body not JSON: 400 for the batch, nothing stored.
        require_utf8(body)
    except Rejected as exc:
        metrics.INGEST_REJECTED.inc()
        raise validation_failed(exc.details) from None
    try:
        envelope = decode_batch(body)
    except msgspec.MsgspecError as exc:
        raise validation_failed([_envelope_problem(exc)]) from None
    except RecursionError:
        # msgspec walks every element (even those it keeps raw) and gives up past ~1,000 levels:
        # the client's mistake, never a 500 (which the gateway would retry forever).
        metrics.INGEST_REJECTED.inc()
        raise validation_failed(["body is nested too deeply"]) from None

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
            written = await _writer(request).write([item for _, item in valid])
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


def _envelope_problem(exc: msgspec.MsgspecError) -> str:
    text = str(exc)
    if "missing required field `messages`" in text:
        return "messages is required"
    if "at `$.messages`" in text:
        return "messages: " + text.split(" - at ")[0] + " (1 to 1,000 payloads)"
    if isinstance(exc, msgspec.DecodeError):
        return f"body is not valid JSON: {text}"
    return f"body: {text}"


__all__ = ["ApiError", "ingest_batch", "ingest_message"]
