"""The channel scorecard behind GET /signals/stats and GET /report: how a channel's calls turned out.

Definitions (docs/ingest-api.md, "Channel scorecard"), per signal, from its live linked events:

- reached a target: a `target_hit` or `final_target_hit` event (final included);
- `result_pct`: the percentage of its latest event that carries one (the channel's own reported
  result, whatever the side: a short's "+12%" is a gain), null if none;
- win: reached a target, or closed with a positive result; a signal that hit target 1 and was
  then stopped reached a target, so it is a win;
- loss: not a win, and stopped or closed with a negative result;
- open: none of target, stop, cancellation or close yet (its status is `open`).

Per group (channel × period): counts, `win_rate` = wins / (wins + losses) (null when both are
0), the mean, best and worst `result_pct`, and the median hours from the signal to its first
target. Periods follow the signal's Telegram date in America/Sao_Paulo (the trader's zone, and
the old CSV export's): `YYYY-MM`, ISO weeks `YYYY-Www`, or `all`.

One SQL statement per request does the grouping. It reads the signals by `message_date` (the
hypertable's partition column, so TimescaleDB can leave out the chunks outside `from`/`to`) and
their events from `from` on (an event is never older than its signal).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Literal
from zoneinfo import ZoneInfo

import msgspec

from ..errors import ApiError, FieldProblem

SAO_PAULO = ZoneInfo("America/Sao_Paulo")
Grouping = Literal["month", "week", "all"]
GROUPINGS: tuple[str, ...] = ("month", "week", "all")

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MILLISECOND = timedelta(milliseconds=1)
# The range of a Python datetime, which the bounds are clamped to (PostgreSQL's is wider).
_FIRST = datetime.min.replace(tzinfo=timezone.utc)
_LAST = datetime.max.replace(tzinfo=timezone.utc)


class ChannelStats(msgspec.Struct):
    """One channel in one period (the fields named in issue 18 first, then the ones they come from)."""

    channel: str
    period: str
    signals: int
    open: int
    target_hit: int
    final_target_hit: int
    stopped: int
    cancelled: int
    closed: int
    win_rate: float | None
    avg_result_pct: float | None
    best_result_pct: float | None
    worst_result_pct: float | None
    median_hours_to_first_target: float | None
    channel_id: int
    wins: int
    losses: int


class StatsPage(msgspec.Struct):
    data: list[ChannelStats]


@dataclass(frozen=True)
class StatsQuery:
    channel: str | None = None
    # [since, until): Telegram dates; None = unbounded.
    since: datetime | None = None
    until: datetime | None = None
    group: str = "month"


# -- parameters ------------------------------------------------------------------------------

def _bad(name: str, message: str) -> ApiError:
    return ApiError(400, "Validation failed", errors=[FieldProblem(name, message)])


def _in_utc(moment: datetime) -> datetime:
    """`moment` in UTC, clamped to the years 1 to 9999 (a value there in its own zone can fall
    outside them in UTC: 9999-12-31T23:00-05:00 is after every signal, not an error)."""
    try:
        return moment.astimezone(timezone.utc)
    except OverflowError:
        return _LAST if moment.year == 9999 else _FIRST


def _after(moment: datetime, step: timedelta) -> datetime:
    try:
        return _in_utc(moment) + step
    except OverflowError:
        return _LAST


def parse_bound(name: str, raw: str | None) -> datetime | None:
    """`from`/`to` as /signals reads them (epoch milliseconds or ISO 8601), as a half-open bound in UTC.

    Unlike /signals, a date or date-time without a zone is São Paulo time, the zone the periods
    are cut in: `from=2025-10-01&to=2025-10-31` is exactly the period 2025-10. `to` is
    inclusive, to the millisecond (a date alone: to the end of that day); the bound returned for
    it is the first moment after.
    """
    if raw is None or raw.strip() == "":
        return None
    text = raw.strip()
    if text.lstrip("-").isdigit():
        try:
            moment = _EPOCH + int(text) * _MILLISECOND
        except OverflowError:  # past the years 1 to 9999, as /signals says
            raise _bad(name, "is out of range (epoch milliseconds of the years 1 to 9999)") from None
    else:
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise _bad(name, f"must be epoch milliseconds or an ISO 8601 date or date-time, got {text[:40]!r}") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=SAO_PAULO)
        if name == "to" and len(text) == 10:
            # The next day's midnight in São Paulo (not +24 h: days around a DST change differ).
            try:
                following = moment.date() + timedelta(days=1)
            except OverflowError:  # to=9999-12-31: to the end
                return _LAST
            return _in_utc(datetime(following.year, following.month, following.day, tzinfo=SAO_PAULO))
    return _after(moment, _MILLISECOND) if name == "to" else _in_utc(moment)


def stats_query(channel: str | None, from_: str | None, to: str | None, group: str = "month") -> StatsQuery:
    """The query's parameters checked; ApiError(400) naming the one at fault."""
    if channel is not None and "\x00" in channel:
        raise _bad("channel", "must not contain NUL characters")
    if group not in GROUPINGS:
        raise _bad("group", f"must be one of {', '.join(GROUPINGS)}")
    since, until = parse_bound("from", from_), parse_bound("to", to)
    if since is not None and until is not None and since >= until:
        raise ApiError(400, "Validation failed", errors=[
            FieldProblem("from", "must be before to"), FieldProblem("to", "must not be before from")])
    return StatsQuery(channel=channel or None, since=since, until=until, group=group)


# -- SQL -------------------------------------------------------------------------------------

# The period each grouping puts a signal in; "report" is months plus each channel's total (the
# `all` row of GROUPING SETS).
_PERIODS = {
    "month": "to_char(s.message_date AT TIME ZONE 'America/Sao_Paulo', 'YYYY-MM')",
    "week": "to_char(s.message_date AT TIME ZONE 'America/Sao_Paulo', 'IYYY-\"W\"IW')",
    "all": "'all'::text",
    "report": "to_char(s.message_date AT TIME ZONE 'America/Sao_Paulo', 'YYYY-MM')",
}
_GROUP_BY = {
    "month": "p.channel_id, p.period",
    "week": "p.channel_id, p.period",
    "all": "p.channel_id, p.period",
    "report": "GROUPING SETS ((p.channel_id, p.period), (p.channel_id))",
}

# $1 channel (name or id, as /signals), [$2, $3) the Telegram dates (NULL: unbounded).
# COALESCE with constants keeps the bounds plain comparisons on message_date, which the planner
# (and TimescaleDB's chunk exclusion, at plan or run time) reads as a range.
_STATS = """
WITH picked AS (
    SELECT s.id, s.channel_id, s.channel, s.message_date, {period} AS period
    FROM tp_capital.tp_capital_signals s
    WHERE s.deleted_at IS NULL
      AND s.message_date >= COALESCE($2::timestamptz, '-infinity')
      AND s.message_date < COALESCE($3::timestamptz, 'infinity')
      AND ($1::text IS NULL OR s.channel = $1 OR s.channel_id::text = $1)
),
reached AS (
    SELECT e.signal_id,
           bool_or(e.event_type IN ('target_hit', 'final_target_hit')) AS target,
           bool_or(e.event_type = 'final_target_hit') AS final_target,
           bool_or(e.event_type = 'stop_hit') AS stopped,
           bool_or(e.event_type = 'cancelled') AS cancelled,
           bool_or(e.event_type = 'closed') AS closed,
           min(e.message_date) FILTER (WHERE e.event_type IN ('target_hit', 'final_target_hit')) AS first_target_at,
           (array_agg(e.percentage ORDER BY e.message_date DESC, e.message_id DESC, e.seq DESC)
                FILTER (WHERE e.percentage IS NOT NULL))[1] AS result_pct
    FROM tp_capital.signal_events e
    JOIN picked p ON p.id = e.signal_id
    WHERE e.deleted_at IS NULL AND e.message_date >= COALESCE($2::timestamptz, '-infinity')
    GROUP BY e.signal_id
),
judged AS (
    SELECT p.channel_id, p.channel, p.message_date, p.period,
           COALESCE(r.target, false) AS target, COALESCE(r.final_target, false) AS final_target,
           COALESCE(r.stopped, false) AS stopped, COALESCE(r.cancelled, false) AS cancelled,
           COALESCE(r.closed, false) AS closed, r.result_pct,
           extract(epoch FROM r.first_target_at - p.message_date) / 3600 AS hours_to_first_target,
           COALESCE(r.target OR (r.closed AND r.result_pct > 0), false) AS win
    FROM picked p
    LEFT JOIN reached r ON r.signal_id = p.id
)
SELECT p.channel_id,
       (array_agg(p.channel ORDER BY p.message_date DESC))[1] AS channel,
       CASE WHEN GROUPING(p.period) = 1 THEN 'all' ELSE p.period END AS period,
       count(*) AS signals,
       count(*) FILTER (WHERE NOT (p.target OR p.stopped OR p.cancelled OR p.closed)) AS open,
       count(*) FILTER (WHERE p.target) AS target_hit,
       count(*) FILTER (WHERE p.final_target) AS final_target_hit,
       count(*) FILTER (WHERE p.stopped) AS stopped,
       count(*) FILTER (WHERE p.cancelled) AS cancelled,
       count(*) FILTER (WHERE p.closed) AS closed,
       count(*) FILTER (WHERE p.win) AS wins,
       count(*) FILTER (WHERE NOT p.win AND (p.stopped OR (p.closed AND p.result_pct < 0))) AS losses,
       round(avg(p.result_pct)::numeric, 2)::float8 AS avg_result_pct,
       round(max(p.result_pct)::numeric, 2)::float8 AS best_result_pct,
       round(min(p.result_pct)::numeric, 2)::float8 AS worst_result_pct,
       round((percentile_cont(0.5) WITHIN GROUP (ORDER BY p.hours_to_first_target))::numeric, 2)::float8
           AS median_hours_to_first_target
FROM judged p
GROUP BY {group_by}
"""
STATS_SQL = {name: _STATS.format(period=_PERIODS[name], group_by=_GROUP_BY[name]) for name in _PERIODS}


def _row(record: Any) -> ChannelStats:
    wins, losses = record["wins"], record["losses"]
    decided = wins + losses
    return ChannelStats(
        channel=record["channel"], period=record["period"], signals=record["signals"], open=record["open"],
        target_hit=record["target_hit"], final_target_hit=record["final_target_hit"], stopped=record["stopped"],
        cancelled=record["cancelled"], closed=record["closed"],
        win_rate=round(wins / decided, 4) if decided else None,
        avg_result_pct=record["avg_result_pct"], best_result_pct=record["best_result_pct"],
        worst_result_pct=record["worst_result_pct"],
        median_hours_to_first_target=record["median_hours_to_first_target"],
        channel_id=record["channel_id"], wins=wins, losses=losses,
    )


def _order(rows: list[ChannelStats]) -> list[ChannelStats]:
    # Channels by name (then id), each channel's periods in time order, its `all` row last.
    return sorted(rows, key=lambda r: (r.channel.casefold(), r.channel_id, r.period == "all", r.period))


async def fetch_stats(conn: Any, query: StatsQuery, grouping: str | None = None) -> list[ChannelStats]:
    """The scorecard rows of `query` (`grouping` "report": months and each channel's total)."""
    records = await conn.fetch(STATS_SQL[grouping or query.group], query.channel, query.since, query.until)
    return _order([_row(r) for r in records])


# -- CSV -------------------------------------------------------------------------------------

CSV_HEADER = ["CANAL", "PERIODO", "SINAIS", "ABERTOS", "ALVO_ATINGIDO", "ALVO_FINAL", "STOPADOS", "CANCELADOS",
              "ENCERRADOS", "TAXA_ACERTO_PCT", "RESULTADO_MEDIO_PCT", "MELHOR_RESULTADO_PCT", "PIOR_RESULTADO_PCT",
              "MEDIANA_HORAS_1O_ALVO", "CANAL_ID", "GANHOS", "PERDAS"]
# A cell a spreadsheet would read as a formula (CSV injection): a channel name is the channel's.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def pt_br(value: float | None, decimals: int = 2) -> str:
    """1250.5 → "1.250,50"; None → ""."""
    if value is None:
        return ""
    return f"{value:,.{decimals}f}".replace(",", "\x00").replace(".", ",").replace("\x00", ".")


def _text_cell(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA_START) else value


def stats_csv(rows: list[ChannelStats]) -> str:
    """`;`-separated like the old export, numbers pt-BR with 2 decimals, win rate in percent."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for r in rows:
        writer.writerow([
            _text_cell(r.channel), r.period, r.signals, r.open, r.target_hit, r.final_target_hit, r.stopped,
            r.cancelled, r.closed, pt_br(r.win_rate * 100 if r.win_rate is not None else None),
            pt_br(r.avg_result_pct), pt_br(r.best_result_pct), pt_br(r.worst_result_pct),
            pt_br(r.median_hours_to_first_target), r.channel_id, r.wins, r.losses,
        ])
    return out.getvalue()
