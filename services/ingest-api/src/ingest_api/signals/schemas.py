"""Wire types of the query API (GET /signals, /signals/{id}, /messages, /signal-events, DELETEs)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec


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
