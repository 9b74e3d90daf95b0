"""The SQL behind GET /signals, /signals/{id}, /messages, /signal-events and the DELETEs, and the
functions that run it.

Every statement on a hypertable bounds its partition column (docs/ingest-api.md, "Queries and
TimescaleDB chunks"): tp_capital_signals on message_date, forwarded_messages on
original_timestamp. Lists order by (date DESC, id DESC) and turn the `from`/`to` bounds (epoch ms
of the old `ts` contract) and the cursor into bounds on the date; a signal named by id or by
ingested_at is found through `tp_capital.signal_keys` (id -> message date), then in its one
chunk. The list statements are put together from the filters the request has (only fixed SQL
fragments; values are always parameters), so that each combination gets a plan of its own in
which no `$n IS NULL OR ...` hides a bound from the planner or from TimescaleDB's chunk exclusion.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import msgspec

from ts_runtime.health import iso_millis

from ..errors import ApiError
from .paging import Cursor, Filters, encode_cursor, encode_date_cursor, from_ms, through_ms
from .schemas import (DeleteResult, EventPage, MessagePage, MessageRow, OldDeleteResult, SignalDetail, SignalEvent,
                      SignalPage, SignalRow)

_SIGNAL_COLUMNS = """id, ts, channel, signal_type, asset, buy_min, buy_max, target_1, target_2, target_final, stop,
       raw_message, source, status, channel_id, message_id, ingested_at, created_at, updated_at, deleted_at, side,
       current_stop"""

# The message date of signal $1 (the row is then read in its one chunk).
_SIGNAL_DATE = "(SELECT k.message_date FROM tp_capital.signal_keys k WHERE k.id = $1)"

# `stored_signal` (021): the date from signal_keys, then the row in its one chunk; this statement
# itself names no chunk (a subquery here would make each execution open every chunk).
GET_SIGNAL = f"SELECT {_SIGNAL_COLUMNS} FROM tp_capital.stored_signal($1::bigint)"
_EVENT_COLUMNS = """e.id, e.event_type, e.target_number, e.percentage, e.raw_message, e.message_id, e.message_date,
       e.created_at, e.breakeven, e.asset, e.reply_to_message_id, e.seq, e.signal_id, e.channel_id"""
# Live events only (a deleted follow-up, or one edited into something else, is no event).
GET_EVENTS = f"""
SELECT {_EVENT_COLUMNS},
       COALESCE(e.price, CASE WHEN e.breakeven THEN tp_capital.entry_price($2, $3) END) AS price
FROM tp_capital.signal_events e
WHERE e.signal_id = $1 AND e.deleted_at IS NULL
ORDER BY e.message_date, e.message_id, e.seq
"""
# Follow-ups no signal could be found for (GET /signal-events?unlinked=true), newest first.
# signal_events is a plain table; the signal is read only for a breakeven stop without a price
# (its entry price), by its key.
LIST_EVENTS = f"""
SELECT {_EVENT_COLUMNS}, floor(extract(epoch FROM e.message_date) * 1000)::bigint AS ts,
       COALESCE(e.price, CASE WHEN e.breakeven THEN (
           SELECT tp_capital.entry_price(s.buy_min, s.buy_max) FROM tp_capital.tp_capital_signals s
           WHERE s.id = e.signal_id
             AND s.message_date = (SELECT k.message_date FROM tp_capital.signal_keys k WHERE k.id = e.signal_id)
       ) END) AS price
FROM tp_capital.signal_events e
WHERE e.deleted_at IS NULL
  AND ($1::bigint IS NULL OR e.channel_id = $1)
  AND (NOT $2::boolean OR e.signal_id IS NULL)
  AND ($3::bigint IS NULL OR (floor(extract(epoch FROM e.message_date) * 1000)::bigint, e.id) < ($3, $4::bigint))
ORDER BY e.message_date DESC, e.id DESC
LIMIT $5
"""
# Deleted through the API: `dismissed_at` says it was the user (kept across `reparse`); its
# follow-ups go to the signal before it.
DELETE_SIGNAL = f"""
UPDATE tp_capital.tp_capital_signals SET deleted_at = now(), dismissed_at = now(), updated_at = now()
WHERE id = $1 AND message_date = {_SIGNAL_DATE} AND deleted_at IS NULL
RETURNING channel_id, message_date
"""
_RELINK = "SELECT tp_capital.relink_events(ARRAY[$1::bigint], ARRAY[$2::timestamptz])"
# The old dashboard identifies a signal by its ingested_at, sent back at millisecond precision
# (JavaScript's toISOString): a value to the millisecond matches that millisecond, one with
# microseconds (what this API serves for older rows) matches exactly; $2 is the end of the range.
# Since migration 010 no two signals share a millisecond. Found in signal_keys (which holds each
# signal's ingested_at), read by key; locked, so that the count checked is the count deleted.
# (A subquery per key, not a join: TimescaleDB excludes chunks at run time only in a subquery
# that gets the key as a parameter; a join probes every chunk.)
FIND_BY_INGESTED_AT = """
SELECT s.id, s.message_date
FROM tp_capital.signal_keys k
CROSS JOIN LATERAL (
    SELECT s.id, s.message_date FROM tp_capital.tp_capital_signals s
    WHERE s.id = k.id AND s.message_date = k.message_date AND s.deleted_at IS NULL
    FOR UPDATE
) s
WHERE k.ingested_at >= $1::timestamptz AND k.ingested_at < $2::timestamptz
ORDER BY s.id
"""
DELETE_ONE = """
UPDATE tp_capital.tp_capital_signals SET deleted_at = now(), dismissed_at = now(), updated_at = now()
WHERE id = $1 AND message_date = $2
RETURNING channel_id, message_date
"""

_MESSAGE_COLUMNS = """id, channel_id, message_id, floor(extract(epoch FROM original_timestamp) * 1000)::bigint AS ts,
       original_timestamp, message_text, photos::text AS photos, channel_name, sender::text AS sender,
       forward::text AS forward, edit_date, deleted_at, received_at"""


class _Where:
    """WHERE terms and their parameters, numbered in order."""

    def __init__(self, *terms: str) -> None:
        self.terms = list(terms)
        self.args: list[Any] = []

    def arg(self, value: Any) -> str:
        self.args.append(value)
        return f"${len(self.args)}"

    def add(self, term: str) -> None:
        self.terms.append(term)

    def page_after(self, cursor: Cursor | None, date: str, ts: str) -> None:
        """The rows after `cursor` in (date DESC, id DESC) order, as a bound on `date`."""
        if cursor is None:
            return
        row_id = self.arg(cursor.id)
        if cursor.date is not None:
            at = self.arg(cursor.date)
            self.add(f"{date} <= {at} AND ({date}, id) < ({at}, {row_id}::bigint)")
        else:  # a pre-021 cursor: the row's ts (the date floored to the millisecond)
            assert cursor.ts is not None
            self.add(f"{date} <= {self.arg(through_ms(cursor.ts))} "
                     f"AND ({ts}, id) < ({self.arg(cursor.ts)}::bigint, {row_id}::bigint)")

    def date_range(self, filters: Filters, date: str) -> None:
        # `ts >= from` is `date >= from`, `ts <= to` is `date <= the last microsecond of to`.
        if filters.from_ms is not None:
            self.add(f"{date} >= {self.arg(from_ms(filters.from_ms))}")
        if filters.to_ms is not None:
            self.add(f"{date} <= {self.arg(through_ms(filters.to_ms))}")

    def sql(self, select: str, order: str, limit: int) -> str:
        return f"{select}\nWHERE {' AND '.join(self.terms)}\nORDER BY {order}\nLIMIT {self.arg(limit)}"


def list_signals_query(filters: Filters) -> tuple[str, list[Any]]:
    """GET /signals: the statement for these filters and its parameters."""
    where = _Where("deleted_at IS NULL")
    if filters.channel is not None:
        channel = where.arg(filters.channel)
        where.add(f"(channel = {channel}::text OR channel_id::text = {channel}::text)")
    if filters.signal_type is not None:
        where.add(f"lower(signal_type) = lower({where.arg(filters.signal_type)}::text)")
    if filters.search is not None:
        search = where.arg(filters.search)
        where.add(f"(strpos(lower(asset), lower({search}::text)) > 0 "
                  f"OR strpos(lower(raw_message), lower({search}::text)) > 0)")
    where.date_range(filters, "message_date")
    where.page_after(filters.cursor, "message_date", "ts")
    select = f"SELECT {_SIGNAL_COLUMNS}, message_date\nFROM tp_capital.tp_capital_signals"
    return where.sql(select, "message_date DESC, id DESC", filters.limit + 1), where.args


def list_messages_query(filters: Filters) -> tuple[str, list[Any]]:
    """GET /messages and /forwarded-messages: the statement for these filters and its parameters."""
    where = _Where("true")
    if filters.channel is not None:
        channel = where.arg(filters.channel)
        where.add(f"(channel_id::text = {channel}::text OR channel_name = {channel}::text)")
    if filters.channel_id is not None:
        where.add(f"channel_id = {where.arg(filters.channel_id)}::bigint")
    if filters.search is not None:
        where.add(f"strpos(lower(message_text), lower({where.arg(filters.search)}::text)) > 0")
    where.date_range(filters, "original_timestamp")
    where.page_after(filters.cursor, "original_timestamp",
                     "floor(extract(epoch FROM original_timestamp) * 1000)::bigint")
    select = f"SELECT {_MESSAGE_COLUMNS}\nFROM tp_capital.forwarded_messages"
    return where.sql(select, "original_timestamp DESC, id DESC", filters.limit + 1), where.args


def _signal(record: Any, cls: type[SignalRow] = SignalRow, **extra: Any) -> SignalRow:
    return cls(**dict(record.items()), **extra)


async def list_signals(conn: Any, filters: Filters) -> SignalPage:
    statement, args = list_signals_query(filters)
    records = await conn.fetch(statement, *args)
    rows = []
    for record in records[: filters.limit]:
        values = dict(record.items())
        del values["message_date"]  # for the cursor only
        rows.append(SignalRow(**values))
    next_cursor = None
    if len(records) > filters.limit:
        last = records[filters.limit - 1]
        next_cursor = encode_date_cursor(last["message_date"], last["id"])
    return SignalPage(data=rows, next_cursor=next_cursor)


async def get_signal(conn: Any, signal_id: int) -> SignalDetail:
    record = await conn.fetchrow(GET_SIGNAL, signal_id)
    if record is None:
        raise ApiError(404, f"Signal {signal_id} not found")
    rows = await conn.fetch(GET_EVENTS, signal_id, record["buy_min"], record["buy_max"])
    events = [SignalEvent(**dict(e.items())) for e in rows]
    return _signal(record, SignalDetail, events=events)  # type: ignore[return-value]


async def list_events(conn: Any, channel_id: int | None, unlinked: bool, limit: int,
                      cursor: Cursor | None) -> EventPage:
    cursor_ts, cursor_id = (cursor.ts_ms, cursor.id) if cursor is not None else (None, None)
    records = await conn.fetch(LIST_EVENTS, channel_id, unlinked, cursor_ts, cursor_id, limit + 1)
    rows = [{k: v for k, v in r.items() if k != "ts"} for r in records[:limit]]
    next_cursor = (encode_cursor(records[limit - 1]["ts"], records[limit - 1]["id"])
                   if len(records) > limit else None)
    return EventPage(data=[SignalEvent(**row) for row in rows], next_cursor=next_cursor)


async def _relink_after_delete(conn: Any, deleted: Any) -> None:
    # A deleted signal takes no follow-ups: they go to the signal before it (or stay unlinked).
    await conn.execute(_RELINK, deleted["channel_id"], deleted["message_date"])


async def delete_signal(conn: Any, signal_id: int) -> DeleteResult:
    deleted = await conn.fetchrow(DELETE_SIGNAL, signal_id)
    if deleted is None:
        raise ApiError(404, f"Signal {signal_id} not found")
    await _relink_after_delete(conn, deleted)
    return DeleteResult(success=True, deleted=1)


async def delete_by_ingested_at(conn: Any, ingested_at: datetime) -> OldDeleteResult:
    """The old form deleted one signal: when several live signals match, delete none (409).

    Several can match only among signals stored by hand with equal values: migration 010 gives
    every signal its own millisecond, those stored before it included.
    """
    step = timedelta(milliseconds=1) if ingested_at.microsecond % 1000 == 0 else timedelta(microseconds=1)
    async with conn.transaction():
        matches = await conn.fetch(FIND_BY_INGESTED_AT, ingested_at, ingested_at + step)
        if not matches:
            raise ApiError(404, "No signal with that ingestedAt")
        if len(matches) > 1:
            ids = ", ".join(str(m["id"]) for m in matches[:20]) + (", …" if len(matches) > 20 else "")
            raise ApiError(409, f"ingestedAt matches {len(matches)} signals; delete one with DELETE /signals/{{id}}",
                           [f"matching signal ids: {ids}"])
        deleted = await conn.fetchrow(DELETE_ONE, matches[0]["id"], matches[0]["message_date"])
    await _relink_after_delete(conn, deleted)
    return OldDeleteResult(status="ok", success=True, deleted=1)


_json = msgspec.json.Decoder()


async def list_messages(conn: Any, filters: Filters) -> MessagePage:
    statement, args = list_messages_query(filters)
    records = await conn.fetch(statement, *args)
    rows = []
    for record in records[: filters.limit]:
        values = dict(record.items())
        for key in ("photos", "sender", "forward"):
            values[key] = _json.decode(values[key]) if values[key] is not None else None
        rows.append(MessageRow(**values, source_channel_id=values["channel_id"],
                               source_channel_name=values["channel_name"],
                               forwarded_at=iso_millis(values["received_at"])))
    next_cursor = (encode_date_cursor(rows[-1].original_timestamp, rows[-1].id)
                   if len(records) > filters.limit else None)
    return MessagePage(data=rows, next_cursor=next_cursor)

