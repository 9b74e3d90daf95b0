"""Query API compatible with the old one: GET/DELETE /signals, GET /signals/{id}, GET /messages
and the old path /forwarded-messages (with its `channelId` filter and row aliases)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Annotated, Literal

import msgspec
from litestar import Request, Response, delete, get
from litestar.di import Provide
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIType, Operation, Reference, Schema
from litestar.params import PathParameter, QueryParameter
from ts_runtime.api_core.dependencies import REQUEST_INPUT, DbConnection, RequestInput
from ts_runtime.api_core.openapi import request_body
from ts_runtime.api_core.problems import PROBLEM, decode_struct

from ..auth import require_token_or_api_key

from ..errors import ApiError, ErrorBody
from . import queries
from .csv_export import signals_csv
from .paging import Filters, decode_cursor, parse_moment
from .schemas import DeleteResult, EventPage, MessagePage, OldDeleteResult, SignalDetail, SignalPage
from .scorecard import route_handlers as scorecard_handlers

_ERRORS = {
    400: ResponseSpec(ErrorBody, description="A query value is invalid (the reason is given)", generate_examples=False),
    503: ResponseSpec(ErrorBody, description="Database connection failed", generate_examples=False),
}
_AUTH_ERRORS = {
    **_ERRORS,
    401: ResponseSpec(ErrorBody, description="Missing or invalid token", generate_examples=False),
    404: ResponseSpec(ErrorBody, description="No such signal", generate_examples=False),
}

Limit = Annotated[int, QueryParameter(ge=1, le=1000, description="rows per page (1..1000)")]
# Epoch milliseconds, or an ISO 8601 date / datetime.
_MOMENT_PATTERN = r"^(-?[0-9]{1,16}|[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9:.]+(Z|[+-][0-9]{2}:?[0-9]{2})?)?)$"
Moment = Annotated[str | None, QueryParameter(description="epoch milliseconds or ISO 8601 date/datetime",
                                               pattern=_MOMENT_PATTERN)]
From = Annotated[str | None, QueryParameter(name="from", description="epoch milliseconds or ISO 8601 date/datetime",
                                             pattern=_MOMENT_PATTERN)]
Cursor = Annotated[str | None, QueryParameter(max_length=100, pattern=r"^[A-Za-z0-9_-]+$",
                                               description="next_cursor of the previous page")]
Text = Annotated[str | None, QueryParameter(max_length=200)]


def _filters(limit: int, channel: str | None, from_: str | None, to: str | None, search: str | None,
             cursor: str | None, signal_type: str | None = None, channel_id: str | None = None) -> Filters:
    for name, value in (("channel", channel), ("search", search), ("type", signal_type)):
        if value is not None and "\x00" in value:
            raise ApiError(400, f"{name} must not contain NUL characters", [f"{name}: NUL character"])
    return Filters(
        limit=limit,
        channel=channel or None,
        signal_type=signal_type or None,
        search=search or None,
        from_ms=parse_moment("from", from_),
        to_ms=parse_moment("to", to),
        cursor=decode_cursor(cursor),
        channel_id=_channel_id(channel_id),
    )


def _channel_id(raw: str | None) -> int | None:
    if raw is None or raw == "":
        return None
    value = int(raw)  # the pattern admits only digits with an optional sign
    if not -(2**63) <= value < 2**63:
        raise ApiError(400, "channelId is out of range", ["channelId must fit in a signed 64-bit integer"])
    return value


@dataclass
class _SignalsOperation(Operation):
    """`format=csv` answers text/csv: document it beside the JSON page."""

    def __post_init__(self) -> None:
        ok = self.responses.get("200") if self.responses else None
        if ok is not None and not isinstance(ok, Reference) and ok.content is not None:
            ok.content["text/csv"] = OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING))


# Each route's `request_input` provider reads and checks the query (or path, or body) before the
# core plugin's `db_connection` takes a connection (api_core.dependencies): a client's mistake is
# its 400 even while the database is down, and costs no pool connection.
SignalId = Annotated[int, PathParameter(ge=1, le=2**53, description="signal id")]
Format = Annotated[Literal["json", "csv"], QueryParameter(description="csv: the old dashboard's export")]


async def _signals_query(
    limit: Limit = 100,
    channel: Text = None,
    signal_type: Annotated[str | None, QueryParameter(name="type", max_length=50, description="Swing Trade / Day Trade")] = None,
    search: Text = None,
    from_: From = None,
    to: Moment = None,
    cursor: Cursor = None,
    format: Format = "json",
) -> tuple[Filters, str]:
    return _filters(limit, channel, from_, to, search, cursor, signal_type), format


async def _signal_id(signal_id: SignalId) -> int:
    return signal_id


_BY_ID = {REQUEST_INPUT: Provide(_signal_id)}


@get("/signals", operation_id="listSignals", summary="Signals, newest first (format=csv: the old export)",
     responses=_ERRORS, tags=["signals"], operation_class=_SignalsOperation,
     dependencies={REQUEST_INPUT: Provide(_signals_query)})
async def list_signals(request_input: RequestInput[tuple[Filters, str]], db_connection: DbConnection) -> Response[SignalPage]:
    filters, format = request_input
    page = await queries.list_signals(db_connection, filters)
    if format == "csv":
        headers = {"Content-Disposition": 'attachment; filename="tp-capital-signals.csv"'}
        if page.next_cursor:
            headers["X-Next-Cursor"] = page.next_cursor
        return Response(signals_csv(page.data), media_type="text/csv", headers=headers)
    return Response(page)


@get("/signals/{signal_id:int}", operation_id="getSignal", summary="One signal with its lifecycle events",
     responses={**_ERRORS, 404: _AUTH_ERRORS[404]}, tags=["signals"], dependencies=_BY_ID)
async def get_signal(request_input: RequestInput[int], db_connection: DbConnection) -> SignalDetail:
    return await queries.get_signal(db_connection, request_input)


@delete("/signals/{signal_id:int}", operation_id="deleteSignal", summary="Mark a signal deleted (token required)",
        guards=[require_token_or_api_key], status_code=200, responses=_AUTH_ERRORS, tags=["signals"],
        dependencies=_BY_ID)
async def delete_signal(request_input: RequestInput[int], db_connection: DbConnection) -> DeleteResult:
    return await queries.delete_signal(db_connection, request_input)


_INGESTED_AT_FORMAT = "an ISO 8601 date-time with a time zone, e.g. 2025-10-07T12:00:00.123Z"


class DeleteByIngestedAt(msgspec.Struct, rename="camel"):
    # With a time zone: the moment a value without one names depends on the server's zone.
    ingested_at: Annotated[datetime, msgspec.Meta(tz=True, extra={PROBLEM: f"must be {_INGESTED_AT_FORMAT}"})]


# The range a stored ingested_at can have (and the lookup range can end in), in UTC.
_EARLIEST = datetime(1, 1, 2, tzinfo=timezone.utc)
_LATEST = datetime(9999, 12, 30, tzinfo=timezone.utc)


def _decode_delete_body(body: bytes) -> datetime:
    """The ingestedAt of an old-form delete; ApiError(400) naming what is wrong (api_core.problems:
    "ingestedAt is required", "ingestedAt must be ...", "body must be a JSON object", ...)."""
    moment = decode_struct(DeleteByIngestedAt, body).ingested_at
    try:
        in_utc = moment.astimezone(timezone.utc)
    except OverflowError:  # 9999-12-31T23:59:59-14:00 is in year 10000 in UTC
        in_utc = None
    if in_utc is None or not _EARLIEST <= in_utc <= _LATEST:
        raise ApiError(400, "Validation failed", ["ingestedAt is out of range (years 1 to 9999, in UTC)"])
    return in_utc


async def _delete_body(request: Request) -> datetime:
    return _decode_delete_body(await request.body())


@delete("/signals", operation_id="deleteSignalByIngestedAt", operation_class=request_body(DeleteByIngestedAt),
        summary='The old form: body {"ingestedAt": "<ISO>"} deletes that one signal (token required)',
        guards=[require_token_or_api_key], status_code=200, tags=["signals"], request_max_body_size=64 * 1024,
        responses={**_AUTH_ERRORS, 409: ResponseSpec(
            ErrorBody, description="Several signals have that ingestedAt: none deleted (use DELETE /signals/{id})",
            generate_examples=False)},
        dependencies={REQUEST_INPUT: Provide(_delete_body)})
async def delete_signal_by_ingested_at(request_input: RequestInput[datetime], db_connection: DbConnection) -> OldDeleteResult:
    return await queries.delete_by_ingested_at(db_connection, request_input)


async def _messages_query(
    limit: Limit = 100,
    channel: Annotated[str | None, QueryParameter(max_length=200, description="channel id or name")] = None,
    search: Text = None,
    from_: From = None,
    to: Moment = None,
    cursor: Cursor = None,
) -> Filters:
    return _filters(limit, channel, from_, to, search, cursor)


@get("/messages", operation_id="listMessages", summary="Raw messages as received, newest first",
     responses=_ERRORS, tags=["messages"], dependencies={REQUEST_INPUT: Provide(_messages_query)})
async def list_messages(request_input: RequestInput[Filters], db_connection: DbConnection) -> MessagePage:
    return await queries.list_messages(db_connection, request_input)


# The old API served the list at /forwarded-messages (its table's name), filtered by `channelId`;
# clients written for it keep working. The rows are the same (with the old aliases) on both paths.
async def _forwarded_messages_query(
    limit: Limit = 100,
    channel_id: Annotated[str | None, QueryParameter(name="channelId", pattern=r"^-?[0-9]{1,19}$",
                                                     description="the channel's id, e.g. -1001649127710")] = None,
    channel: Annotated[str | None, QueryParameter(max_length=200, description="channel id or name")] = None,
    search: Text = None,
    from_: From = None,
    to: Moment = None,
    cursor: Cursor = None,
) -> Filters:
    return _filters(limit, channel, from_, to, search, cursor, channel_id=channel_id)


@get("/forwarded-messages", operation_id="listForwardedMessages",
     summary="Raw messages, newest first (the old API's path for GET /messages, with channelId)",
     responses=_ERRORS, tags=["messages"], dependencies={REQUEST_INPUT: Provide(_forwarded_messages_query)})
async def list_forwarded_messages(request_input: RequestInput[Filters], db_connection: DbConnection) -> MessagePage:
    return await queries.list_messages(db_connection, request_input)


async def _events_query(
    limit: Limit = 100,
    channel: Annotated[int | None, QueryParameter(ge=-(2**63), le=2**63 - 1, description="channel id")] = None,
    unlinked: Annotated[bool, QueryParameter(description="only events linked to no signal")] = False,
    cursor: Cursor = None,
) -> tuple:
    return limit, channel, unlinked, decode_cursor(cursor)


@get("/signal-events", operation_id="listSignalEvents", responses=_ERRORS, tags=["signals"],
     summary="Lifecycle events, newest first (unlinked=true: follow-ups no signal was found for)",
     dependencies={REQUEST_INPUT: Provide(_events_query)})
async def list_signal_events(request_input: RequestInput[tuple], db_connection: DbConnection) -> EventPage:
    limit, channel, unlinked, cursor = request_input
    return await queries.list_events(db_connection, channel, unlinked, limit, cursor)


route_handlers = [list_signals, get_signal, delete_signal, delete_signal_by_ingested_at, list_messages,
                  list_forwarded_messages, list_signal_events, *scorecard_handlers]
