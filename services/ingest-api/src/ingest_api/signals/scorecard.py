"""GET /signals/stats (the channel scorecard, JSON or CSV) and GET /report (the same as a page)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Annotated, Literal

from litestar import Response, get
from litestar.di import Provide
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIResponse, OpenAPIType, Operation, Reference, Schema
from litestar.params import QueryParameter
from ts_runtime.api_core.checks import BROWSER_PAGE
from ts_runtime.api_core.dependencies import REQUEST_INPUT, DbConnection, RequestInput

from ..errors import ErrorBody
from . import report, stats

_ERRORS = {
    400: ResponseSpec(ErrorBody, description="A query value is invalid (the parameter is named)", generate_examples=False),
    503: ResponseSpec(ErrorBody, description="Database connection failed", generate_examples=False),
}
# The forms /signals accepts (epoch milliseconds, ISO 8601 date or date-time), read by
# stats.parse_bound, whose 400 says which form was expected (a pattern here would answer with the
# regular expression instead).
_ZONE_NOTE = " (without a zone: São Paulo time)"
Channel = Annotated[str | None, QueryParameter(max_length=200, description="channel id or name (as /signals)")]
From = Annotated[str | None, QueryParameter(
    name="from", max_length=40,
    description="signals from this Telegram date: epoch milliseconds or ISO 8601 date/date-time" + _ZONE_NOTE)]
To = Annotated[str | None, QueryParameter(
    max_length=40,
    description="signals up to this Telegram date, inclusive (a date alone: to the end of that day)" + _ZONE_NOTE)]

# The page runs no script and loads nothing: a policy that says so stops an injected tag from
# doing anything even if a value ever escaped unescaped.
_PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; "
                               "form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
HTML = "text/html"  # Litestar adds "; charset=utf-8"


@dataclass
class _StatsOperation(Operation):
    """`format=csv` answers text/csv: document it beside the JSON."""

    def __post_init__(self) -> None:
        ok = self.responses.get("200") if self.responses else None
        if ok is not None and not isinstance(ok, Reference) and ok.content is not None:
            ok.content["text/csv"] = OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING))


@dataclass
class _PageOperation(Operation):
    """The page is HTML, not the JSON string Litestar would describe for a `str` handler."""

    def __post_init__(self) -> None:
        if self.responses is not None:
            self.responses["200"] = OpenAPIResponse(
                description="The scorecard page (pt-BR), or its empty state when there are no signals",
                content={"text/html": OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING))})


# The query is read and checked by `request_input` before `db_connection` takes a connection
# (api_core.dependencies): a bad parameter is a 400 even while the database is down.
Format = Annotated[Literal["json", "csv"], QueryParameter(description="json, or csv (`;`, pt-BR numbers)")]


async def _stats_query(
    channel: Channel = None,
    from_: From = None,
    to: To = None,
    group: Annotated[Literal["month", "week", "all"], QueryParameter(
        description="month (YYYY-MM), week (ISO, YYYY-Www) or all")] = "month",
    format: Format = "json",
) -> tuple[stats.StatsQuery, str]:
    return stats.stats_query(channel, from_, to, group), format


async def _report_query(channel: Channel = None, from_: From = None, to: To = None) -> stats.StatsQuery:
    return stats.stats_query(channel, from_, to, "month")


@get("/signals/stats", operation_id="getSignalStats", tags=["signals"], responses=_ERRORS,
     operation_class=_StatsOperation, dependencies={REQUEST_INPUT: Provide(_stats_query)},
     summary="Channel scorecard: outcomes, win rate and results per channel and month, ISO week or in all",
     description="Periods by the signal's Telegram date in America/Sao_Paulo; deleted signals excluded. "
                 "Definitions: docs/ingest-api.md, \"Channel scorecard\". format=csv: `;`-separated, pt-BR numbers.")
async def signal_stats(request_input: RequestInput[tuple[stats.StatsQuery, str]],
                       db_connection: DbConnection) -> Response[stats.StatsPage]:
    query, format = request_input
    rows = await stats.fetch_stats(db_connection, query)
    if format == "csv":
        return Response(stats.stats_csv(rows), media_type="text/csv",
                        headers={"Content-Disposition": 'attachment; filename="scorecard.csv"'})
    return Response(stats.StatsPage(data=rows))


@get("/report", operation_id="getReport", tags=["signals"], responses=_ERRORS, operation_class=_PageOperation,
     media_type=HTML, dependencies={REQUEST_INPUT: Provide(_report_query)},
     opt={BROWSER_PAGE: True},  # with API_READ_TOKEN set, the browser asks for it (HTTP Basic)
     summary="The scorecard as an HTML page: one section per channel (pt-BR, readable on a phone)")
async def scorecard_report(request_input: RequestInput[stats.StatsQuery], db_connection: DbConnection) -> Response[str]:
    sections = await report.build_sections(db_connection, request_input)
    page = report.render(sections, request_input, datetime.now(timezone.utc))
    return Response(page, media_type=HTML, headers=_PAGE_HEADERS)


route_handlers = [signal_stats, scorecard_report]
