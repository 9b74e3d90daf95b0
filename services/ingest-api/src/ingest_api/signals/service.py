"""Queries behind GET /signals, /signals/{id}, /messages and the DELETE endpoints."""

from __future__ import annotations

import base64
import binascii
import csv
import io
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import msgspec

from ts_runtime.health import iso_millis

from ..errors import ApiError


class SignalEvent(msgspec.Struct):
    """A lifecycle event: target_hit (target_number), final_target_hit, stop_hit, stop_moved
    (price: the new stop; breakeven: moved to the entry price), cancelled, closed, partial_exit."""

    id: int
    event_type: str
    target_number: int | None
    percentage: float | None
    raw_message: str
    message_id: int
    message_date: datetime
    created_at: datetime
    # Added with the full lifecycle: the new stop of a stop_moved (for breakeven, the signal's
    # entry price), the ticker the follow-up named (null: none), the message it replied to, its
    # position among the events of its message, the signal it is linked to (null: unlinked).
    price: float | None = None
    breakeven: bool = False
    asset: str | None = None
    reply_to_message_id: int | None = None
    seq: int = 0
    signal_id: int | None = None
    channel_id: int | None = None


class EventPage(msgspec.Struct, omit_defaults=True):
    data: list[SignalEvent]
    next_cursor: str | None = None


class SignalRow(msgspec.Struct):
    """A row with the old API's column names (`ts` in epoch ms, timestamps ISO 8601)."""

    id: int
    ts: int
    channel: str
    signal_type: str
    asset: str
    buy_min: float | None
    buy_max: float | None
    target_1: float | None
    target_2: float | None
    target_final: float | None
    stop: float | None
    raw_message: str
    source: str
    # Added: lifecycle status, the message the signal came from, soft deletion.
    status: str
    channel_id: int
    message_id: int
    ingested_at: datetime
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None = None
    # "long" or "short" (for a short, buy_min/buy_max are the sell range), and the stop as moved
    # by follow-ups (`stop` stays the one posted with the signal).
    side: str = "long"
    current_stop: float | None = None


class SignalDetail(SignalRow):
    events: list[SignalEvent] = []


class SignalPage(msgspec.Struct, omit_defaults=True):
    data: list[SignalRow]
    # Pass as `cursor` to get the next (older) page; absent on the last page.
    next_cursor: str | None = None


class MessageRow(msgspec.Struct):
    """A raw message; `ts` and the `source_*`/`forwarded_at` aliases are the old API's names."""

    id: int
    channel_id: int
    message_id: int
    ts: int  # epoch ms of the Telegram date
    original_timestamp: datetime
    message_text: str
    photos: Any
    channel_name: str | None
    sender: Any
    forward: Any
    edit_date: datetime | None
    deleted_at: datetime | None
    received_at: datetime
    source_channel_id: int
    source_channel_name: str | None
    forwarded_at: str  # received_at as JavaScript's toISOString() wrote it


class MessagePage(msgspec.Struct, omit_defaults=True):
    data: list[MessageRow]
    next_cursor: str | None = None


class DeleteResult(msgspec.Struct):
    success: bool
    deleted: int


class OldDeleteResult(msgspec.Struct):
    """DELETE /signals {ingestedAt}: the old answer (`status: ok`) and the current one."""

    status: str
    success: bool
    deleted: int


@dataclass(frozen=True)
class Filters:
    limit: int = 100
    channel: str | None = None
    signal_type: str | None = None
    search: str | None = None
    from_ms: int | None = None
    to_ms: int | None = None
    cursor: tuple[int, int] | None = None
    # /forwarded-messages?channelId=: the channel's id, exactly.
    channel_id: int | None = None


_MIN_EPOCH_MS = -62_135_596_800_000  # 0001-01-01T00:00:00Z
_MAX_EPOCH_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z


def parse_moment(name: str, raw: str | None) -> int | None:
    """`from`/`to`: epoch milliseconds or an ISO 8601 date/datetime (UTC when no zone) → epoch ms."""
    if raw is None or raw.strip() == "":
        return None
    raw = raw.strip()
    if raw.lstrip("-").isdigit():
        value = int(raw)
        # Years 1 to 9999 (as the ISO form): /messages turns it into a PostgreSQL timestamp,
        # which ends at 4713 BC, so a larger range was a 500 ("timestamp out of range").
        if not _MIN_EPOCH_MS <= value <= _MAX_EPOCH_MS:
            raise ApiError(400, f"{name} is out of range",
                           [f"{name}: epoch milliseconds must be between {_MIN_EPOCH_MS} and {_MAX_EPOCH_MS}"])
        return value
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(400, f"{name} must be epoch milliseconds or an ISO 8601 date",
                       [f"{name}: cannot read {raw[:40]!r} as epoch milliseconds or ISO 8601"]) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    millis = int(moment.timestamp() * 1000)
    if name == "to" and len(raw) == 10:
        # `to=2025-10-07` means up to the end of that day, not its first millisecond.
        millis += 86_400_000 - 1
    return millis


def encode_cursor(first: int, second: int) -> str:
    return base64.urlsafe_b64encode(f"{first}:{second}".encode()).decode().rstrip("=")


def decode_cursor(raw: str | None) -> tuple[int, int] | None:
    if not raw:
        return None
    try:
        text = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
        first, second = text.split(":")
        values = int(first), int(second)
        if not all(-(2**63) <= v < 2**63 for v in values):
            raise ValueError
        return values
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ApiError(400, "cursor is invalid", ["cursor: use the next_cursor of a previous page"]) from None


_SIGNAL_COLUMNS = """id, ts, channel, signal_type, asset, buy_min, buy_max, target_1, target_2, target_final, stop,
       raw_message, source, status, channel_id, message_id, ingested_at, created_at, updated_at, deleted_at, side,
       current_stop"""

LIST_SIGNALS = f"""
SELECT {_SIGNAL_COLUMNS}
FROM tp_capital.tp_capital_signals
WHERE deleted_at IS NULL
  AND ($1::text IS NULL OR channel = $1 OR channel_id::text = $1)
  AND ($2::text IS NULL OR lower(signal_type) = lower($2))
  AND ($3::text IS NULL OR strpos(lower(asset), lower($3)) > 0 OR strpos(lower(raw_message), lower($3)) > 0)
  AND ($4::bigint IS NULL OR ts >= $4)
  AND ($5::bigint IS NULL OR ts <= $5)
  AND ($6::bigint IS NULL OR (ts, id) < ($6, $7::bigint))
ORDER BY ts DESC, id DESC
LIMIT $8
"""

GET_SIGNAL = f"SELECT {_SIGNAL_COLUMNS} FROM tp_capital.tp_capital_signals WHERE id = $1"
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
LIST_EVENTS = f"""
SELECT {_EVENT_COLUMNS}, floor(extract(epoch FROM e.message_date) * 1000)::bigint AS ts,
       COALESCE(e.price, CASE WHEN e.breakeven THEN tp_capital.entry_price(s.buy_min, s.buy_max) END) AS price
FROM tp_capital.signal_events e
LEFT JOIN tp_capital.tp_capital_signals s ON s.id = e.signal_id
WHERE e.deleted_at IS NULL
  AND ($1::bigint IS NULL OR e.channel_id = $1)
  AND (NOT $2::boolean OR e.signal_id IS NULL)
  AND ($3::bigint IS NULL OR (floor(extract(epoch FROM e.message_date) * 1000)::bigint, e.id) < ($3, $4::bigint))
ORDER BY e.message_date DESC, e.id DESC
LIMIT $5
"""
# Deleted through the API: `dismissed_at` says it was the user (kept across `reparse`); its
# follow-ups go to the signal before it.
DELETE_SIGNAL = """
UPDATE tp_capital.tp_capital_signals SET deleted_at = now(), dismissed_at = now(), updated_at = now()
WHERE id = $1 AND deleted_at IS NULL
RETURNING channel_id, message_date
"""
_RELINK = "SELECT tp_capital.relink_events(ARRAY[$1::bigint], ARRAY[$2::timestamptz])"
# The old dashboard identifies a signal by its ingested_at, sent back at millisecond precision
# (JavaScript's toISOString): a value to the millisecond matches that millisecond, one with
# microseconds (what this API serves for older rows) matches exactly; $2 is the end of the range.
# Since migration 010 no two signals share a millisecond. Locked, so that the count checked is
# the count deleted.
FIND_BY_INGESTED_AT = """
SELECT id, message_date FROM tp_capital.tp_capital_signals
WHERE deleted_at IS NULL AND ingested_at >= $1::timestamptz AND ingested_at < $2::timestamptz
ORDER BY id
FOR UPDATE
"""
DELETE_ONE = """
UPDATE tp_capital.tp_capital_signals SET deleted_at = now(), dismissed_at = now(), updated_at = now()
WHERE id = $1 AND message_date = $2
RETURNING channel_id, message_date
"""

LIST_MESSAGES = """
SELECT id, channel_id, message_id, floor(extract(epoch FROM original_timestamp) * 1000)::bigint AS ts,
       original_timestamp, message_text, photos::text AS photos, channel_name, sender::text AS sender,
       forward::text AS forward, edit_date, deleted_at, received_at
FROM tp_capital.forwarded_messages
WHERE ($1::text IS NULL OR channel_id::text = $1 OR channel_name = $1)
  AND ($8::bigint IS NULL OR channel_id = $8)
  AND ($2::text IS NULL OR strpos(lower(message_text), lower($2)) > 0)
  AND ($3::bigint IS NULL OR original_timestamp >= to_timestamp($3 / 1000.0))
  AND ($4::bigint IS NULL OR original_timestamp <= to_timestamp($4 / 1000.0))
  AND ($5::bigint IS NULL OR (floor(extract(epoch FROM original_timestamp) * 1000)::bigint, id) < ($5, $6::bigint))
ORDER BY original_timestamp DESC, id DESC
LIMIT $7
"""


def _signal(record: Any, cls: type[SignalRow] = SignalRow, **extra: Any) -> SignalRow:
    return cls(**dict(record.items()), **extra)


async def list_signals(conn: Any, filters: Filters) -> SignalPage:
    cursor_ts, cursor_id = filters.cursor or (None, None)
    records = await conn.fetch(
        LIST_SIGNALS, filters.channel, filters.signal_type, filters.search, filters.from_ms, filters.to_ms,
        cursor_ts, cursor_id, filters.limit + 1,
    )
    rows = [_signal(r) for r in records[: filters.limit]]
    next_cursor = encode_cursor(rows[-1].ts, rows[-1].id) if len(records) > filters.limit else None
    return SignalPage(data=rows, next_cursor=next_cursor)


async def get_signal(conn: Any, signal_id: int) -> SignalDetail:
    record = await conn.fetchrow(GET_SIGNAL, signal_id)
    if record is None:
        raise ApiError(404, f"Signal {signal_id} not found")
    rows = await conn.fetch(GET_EVENTS, signal_id, record["buy_min"], record["buy_max"])
    events = [SignalEvent(**dict(e.items())) for e in rows]
    return _signal(record, SignalDetail, events=events)  # type: ignore[return-value]


async def list_events(conn: Any, channel_id: int | None, unlinked: bool, limit: int,
                      cursor: tuple[int, int] | None) -> EventPage:
    cursor_ts, cursor_id = cursor or (None, None)
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
    cursor_ts, cursor_id = filters.cursor or (None, None)
    records = await conn.fetch(
        LIST_MESSAGES, filters.channel, filters.search, filters.from_ms, filters.to_ms, cursor_ts, cursor_id,
        filters.limit + 1, filters.channel_id,
    )
    rows = []
    for record in records[: filters.limit]:
        values = dict(record.items())
        for key in ("photos", "sender", "forward"):
            values[key] = _json.decode(values[key]) if values[key] is not None else None
        rows.append(MessageRow(**values, source_channel_id=values["channel_id"],
                               source_channel_name=values["channel_name"],
                               forwarded_at=iso_millis(values["received_at"])))
    next_cursor = encode_cursor(rows[-1].ts, rows[-1].id) if len(records) > filters.limit else None
    return MessagePage(data=rows, next_cursor=next_cursor)


# -- CSV: the old dashboard's export format ------------------------------------------------

_SAO_PAULO = ZoneInfo("America/Sao_Paulo")
CSV_HEADER = ["DATA", "ATIVO", "COMPRA_MIN", "COMPRA_MAX", "ALVO_1", "ALVO_2", "ALVO_FINAL", "STOP"]


def _pt_br(value: float | None) -> str:
    if value is None:
        return ""
    # 1250.5 → "1.250,50"
    return f"{value:,.2f}".replace(",", "\x00").replace(".", ",").replace("\x00", ".")


def signals_csv(rows: list[SignalRow]) -> str:
    """`;`-separated, dates `dd/mm/yyyy, HH:MM:SS` in America/Sao_Paulo, numbers pt-BR with 2 decimals."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for row in rows:
        moment = datetime.fromtimestamp(row.ts / 1000, timezone.utc).astimezone(_SAO_PAULO)
        writer.writerow([
            moment.strftime("%d/%m/%Y, %H:%M:%S"), row.asset, _pt_br(row.buy_min), _pt_br(row.buy_max),
            _pt_br(row.target_1), _pt_br(row.target_2), _pt_br(row.target_final), _pt_br(row.stop),
        ])
    return out.getvalue()
