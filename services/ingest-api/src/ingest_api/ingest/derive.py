"""What a stored message derives with the current parser, and bringing stored rows in line with it.

Derived state is a pure function of a message's stored revisions (its original text and every
edit, `message_revisions`), its deletion, channel name and reply:

- signal row: from the newest revision that parses as a signal (its fields and text;
  `revision_date` = that revision), live while that revision is the current text, else deleted
  at the current text's date (withdrawn: "an edit that is no longer a signal"); deleted anyway if
  the message was deleted or the signal dismissed through the API;
- event rows, per position (seq 0, 1, ...): from the newest revision whose follow-up has an event
  there, live on the same terms.
Which signal an event belongs to, and each signal's status and current stop, are derived from
these rows by `tp_capital.relink_events` (migration 008).

The ingest statements (sql.py) build the same rows incrementally as revisions arrive, in any
order; `ingest-api reparse` and the re-dating of a message sent with a second date recompute
them here, in batches, and count what changed (tests/ingest/test_reparse.py checks that a
reparse after ingesting a story with edits, deletions and late arrivals finds nothing to change).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any

from ..parser import Event, FollowUp, Signal, parse

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

SIGNAL_FIELDS = ("ts", "channel", "signal_type", "asset", "side", "buy_min", "buy_max", "target_1", "target_2",
                 "target_final", "stop", "raw_message", "revision_date", "deleted_at")
EVENT_FIELDS = ("asset", "event_type", "target_number", "percentage", "price", "breakeven", "raw_message",
                "reply_to_message_id", "revision_date", "deleted_at")


@dataclass(frozen=True, slots=True)
class Revision:
    date: datetime
    text: str


@dataclass(frozen=True, slots=True)
class RawMessage:
    channel_id: int
    message_id: int
    original_timestamp: datetime
    text: str
    edit_date: datetime | None
    deleted_at: datetime | None
    channel_name: str | None
    reply_to_message_id: int | None
    # Every stored revision, oldest first (empty: only the current text is known).
    revisions: tuple[Revision, ...] = ()

    @property
    def revision_date(self) -> datetime:
        """The date of the current text: the newest edit's, else the message's."""
        return self.edit_date or self.original_timestamp

    @property
    def key(self) -> tuple[int, int, datetime]:
        return (self.channel_id, self.message_id, self.original_timestamp)

    def history(self) -> tuple[Revision, ...]:
        current = Revision(self.revision_date, self.text)
        earlier = tuple(r for r in self.revisions if r.date < current.date)
        return (*earlier, current)


def epoch_ms(moment: datetime) -> int:
    """`floor(extract(epoch FROM moment) * 1000)`, exactly (no float rounding)."""
    return (moment - _EPOCH) // timedelta(milliseconds=1)


@dataclass
class Derived:
    """What one message derives: a signal row (or none) and event rows by seq."""

    signal: dict[str, Any] | None
    events: dict[int, dict[str, Any]]


def derive(raw: RawMessage, parsed: dict[str, Any], dismissed_at: datetime | None = None) -> Derived:
    """The rows `raw` derives; `parsed` maps each revision text to the parser's answer."""
    current = raw.revision_date

    def deleted(source: datetime, dismissed: datetime | None) -> datetime | None:
        return raw.deleted_at or dismissed or (None if source >= current else current)

    signal: dict[str, Any] | None = None
    events: dict[int, dict[str, Any]] = {}
    for revision in raw.history():  # oldest first: a newer revision replaces what an older one said
        result = parsed[revision.text]
        if isinstance(result, Signal):
            signal = {
                "ts": epoch_ms(raw.original_timestamp), "channel": raw.channel_name or str(raw.channel_id),
                "signal_type": result.signal_type, "asset": result.asset, "side": result.side,
                "buy_min": result.buy_min, "buy_max": result.buy_max, "target_1": result.target_1,
                "target_2": result.target_2, "target_final": result.target_final, "stop": result.stop,
                "raw_message": revision.text, "revision_date": revision.date,
                "deleted_at": deleted(revision.date, dismissed_at),
            }
        elif isinstance(result, FollowUp):
            for seq, event in enumerate(result.events):
                events[seq] = _event_row(raw, revision, result.asset, event, deleted(revision.date, None))
    return Derived(signal, events)


def _event_row(raw: RawMessage, revision: Revision, asset: str | None, event: Event,
               deleted_at: datetime | None) -> dict[str, Any]:
    return {
        "asset": asset, "event_type": event.event_type, "target_number": event.target_number,
        "percentage": event.percentage, "price": event.price, "breakeven": event.breakeven,
        "raw_message": revision.text, "reply_to_message_id": raw.reply_to_message_id,
        "revision_date": revision.date, "deleted_at": deleted_at,
    }


# -- reading ---------------------------------------------------------------------------------

_RAW_COLUMNS = """f.channel_id, f.message_id, f.original_timestamp, f.message_text, f.edit_date,
       COALESCE(t.deleted_at, f.deleted_at) AS deleted_at, f.channel_name, f.reply_to_message_id"""

# One batch of a channel's messages in Telegram order, after (date, id) = ($3, $4), from $2 on
# (NULL: from the first).
# Locked against edits and deletions while the batch is re-derived (FOR SHARE: new messages and
# reads go on).
FETCH_BATCH = f"""
SELECT {_RAW_COLUMNS}
FROM tp_capital.forwarded_messages f
LEFT JOIN tp_capital.message_tombstones t ON t.channel_id = f.channel_id AND t.message_id = f.message_id
WHERE f.channel_id = $1 AND ($2::timestamptz IS NULL OR f.original_timestamp >= $2)
  AND ($3::timestamptz IS NULL OR (f.original_timestamp, f.message_id) > ($3, $4::bigint))
ORDER BY f.original_timestamp, f.message_id
LIMIT $5
"""
FETCH_KEYS = f"""
SELECT {_RAW_COLUMNS}
FROM tp_capital.forwarded_messages f
LEFT JOIN tp_capital.message_tombstones t ON t.channel_id = f.channel_id AND t.message_id = f.message_id
WHERE (f.channel_id, f.message_id) IN (SELECT * FROM unnest($1::bigint[], $2::bigint[]))
ORDER BY f.channel_id, f.original_timestamp, f.message_id
"""
_REVISIONS = """
SELECT r.channel_id, r.message_id, r.original_timestamp, r.revision_date, r.message_text
FROM unnest($1::bigint[], $2::bigint[], $3::timestamptz[]) AS k(channel_id, message_id, original_timestamp)
JOIN LATERAL (
    SELECT * FROM tp_capital.message_revisions r
    WHERE r.channel_id = k.channel_id AND r.message_id = k.message_id AND r.original_timestamp = k.original_timestamp
) r ON true
ORDER BY r.channel_id, r.message_id, r.original_timestamp, r.revision_date
"""
_STORED_SIGNALS = f"""
SELECT s.id, s.channel_id, s.message_id, s.message_date, s.dismissed_at, {", ".join("s." + f for f in SIGNAL_FIELDS)}
FROM unnest($1::bigint[], $2::bigint[], $3::timestamptz[]) AS k(channel_id, message_id, message_date)
JOIN LATERAL (
    SELECT * FROM tp_capital.tp_capital_signals s
    WHERE s.channel_id = k.channel_id AND s.message_id = k.message_id AND s.message_date = k.message_date
) s ON true
"""
_STORED_EVENTS = f"""
SELECT e.channel_id, e.message_id, e.message_date, e.seq, e.signal_id, {", ".join("e." + f for f in EVENT_FIELDS)}
FROM unnest($1::bigint[], $2::bigint[], $3::timestamptz[]) AS k(channel_id, message_id, message_date)
JOIN LATERAL (
    SELECT * FROM tp_capital.signal_events e
    WHERE e.channel_id = k.channel_id AND e.message_id = k.message_id AND e.message_date = k.message_date
) e ON true
"""

# -- writing ---------------------------------------------------------------------------------

_UPSERT_SIGNALS = """
INSERT INTO tp_capital.tp_capital_signals AS s
    (channel_id, message_id, message_date, ts, channel, signal_type, asset, side, buy_min, buy_max, target_1,
     target_2, target_final, stop, current_stop, raw_message, revision_date, deleted_at)
SELECT k.channel_id, k.message_id, k.message_date, k.ts, k.channel, k.signal_type, k.asset, k.side, k.buy_min,
       k.buy_max, k.target_1, k.target_2, k.target_final, k.stop, k.stop, k.raw_message, k.revision_date,
       k.deleted_at
FROM unnest($1::bigint[], $2::bigint[], $3::timestamptz[], $4::bigint[], $5::text[], $6::text[], $7::text[],
            $8::text[], $9::float8[], $10::float8[], $11::float8[], $12::float8[], $13::float8[], $14::float8[],
            $15::text[], $16::timestamptz[], $17::timestamptz[])
     AS k(channel_id, message_id, message_date, ts, channel, signal_type, asset, side, buy_min, buy_max, target_1,
          target_2, target_final, stop, raw_message, revision_date, deleted_at)
ORDER BY k.channel_id, k.message_id, k.message_date
ON CONFLICT ON CONSTRAINT tp_capital_signals_message_key DO UPDATE
    SET ts = EXCLUDED.ts, channel = EXCLUDED.channel, signal_type = EXCLUDED.signal_type, asset = EXCLUDED.asset,
        side = EXCLUDED.side, buy_min = EXCLUDED.buy_min, buy_max = EXCLUDED.buy_max,
        target_1 = EXCLUDED.target_1, target_2 = EXCLUDED.target_2, target_final = EXCLUDED.target_final,
        stop = EXCLUDED.stop, raw_message = EXCLUDED.raw_message, revision_date = EXCLUDED.revision_date,
        deleted_at = EXCLUDED.deleted_at, updated_at = now()
RETURNING s.id
"""
# Rows no revision derives at all (an older parser's): kept, marked deleted.
_WITHDRAW_SIGNALS = """
UPDATE tp_capital.tp_capital_signals s
SET deleted_at = k.deleted_at, updated_at = now()
FROM unnest($1::bigint[], $2::bigint[], $3::timestamptz[], $4::timestamptz[])
     AS k(channel_id, message_id, message_date, deleted_at)
WHERE s.channel_id = k.channel_id AND s.message_id = k.message_id AND s.message_date = k.message_date
"""
_UPSERT_EVENTS = """
INSERT INTO tp_capital.signal_events AS e
    (channel_id, message_id, message_date, seq, asset, event_type, target_number, percentage, price, breakeven,
     raw_message, reply_to_message_id, revision_date, deleted_at)
SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::timestamptz[], $4::int[], $5::text[], $6::text[], $7::int[],
                     $8::float8[], $9::float8[], $10::bool[], $11::text[], $12::bigint[], $13::timestamptz[],
                     $14::timestamptz[])
ORDER BY 1, 2, 3, 4
ON CONFLICT ON CONSTRAINT signal_events_message_key DO UPDATE
    SET asset = EXCLUDED.asset, event_type = EXCLUDED.event_type, target_number = EXCLUDED.target_number,
        percentage = EXCLUDED.percentage, price = EXCLUDED.price, breakeven = EXCLUDED.breakeven,
        raw_message = EXCLUDED.raw_message, reply_to_message_id = EXCLUDED.reply_to_message_id,
        revision_date = EXCLUDED.revision_date, deleted_at = EXCLUDED.deleted_at
"""
_WITHDRAW_EVENTS = """
UPDATE tp_capital.signal_events e
SET deleted_at = k.deleted_at
FROM unnest($1::bigint[], $2::bigint[], $3::timestamptz[], $4::int[], $5::timestamptz[])
     AS k(channel_id, message_id, message_date, seq, deleted_at)
WHERE e.channel_id = k.channel_id AND e.message_id = k.message_id AND e.message_date = k.message_date
  AND e.seq = k.seq
"""


@dataclass
class Changes:
    """What re-deriving a set of messages changed (or, in a dry run, would change)."""

    messages: int = 0
    signals_added: int = 0
    signals_changed: int = 0
    signals_withdrawn: int = 0
    events_added: int = 0
    events_changed: int = 0
    events_withdrawn: int = 0
    # Signals whose status/current stop must be recomputed, and per channel the earliest date
    # from which events must be relinked.
    signal_ids: set[int] = field(default_factory=set)
    relink_from: dict[int, datetime] = field(default_factory=dict)

    @property
    def rows_changed(self) -> int:
        return (self.signals_added + self.signals_changed + self.signals_withdrawn + self.events_added
                + self.events_changed + self.events_withdrawn)

    def changed_at(self, channel_id: int, moment: datetime) -> None:
        current = self.relink_from.get(channel_id)
        if current is None or moment < current:
            self.relink_from[channel_id] = moment


def raw_message(record: Any) -> RawMessage:
    return RawMessage(record["channel_id"], record["message_id"], record["original_timestamp"],
                      record["message_text"], record["edit_date"], record["deleted_at"], record["channel_name"],
                      record["reply_to_message_id"])


def _differs(stored: Any, wanted: dict[str, Any]) -> bool:
    return any(stored[name] != value for name, value in wanted.items())


async def with_revisions(conn: Any, raws: Sequence[RawMessage]) -> list[RawMessage]:
    """`raws` with their stored revisions (only edited messages have more than their text)."""
    edited = [r for r in raws if r.edit_date is not None]
    if not edited:
        return list(raws)
    found: dict[tuple[int, int, datetime], list[Revision]] = {}
    for r in await conn.fetch(_REVISIONS, [m.channel_id for m in edited], [m.message_id for m in edited],
                              [m.original_timestamp for m in edited]):
        found.setdefault((r["channel_id"], r["message_id"], r["original_timestamp"]), []).append(
            Revision(r["revision_date"], r["message_text"]))
    return [replace(raw, revisions=tuple(found.get(raw.key, ()))) for raw in raws]


def parse_texts(raws: Sequence[RawMessage]) -> dict[str, Any]:
    """The parser's answer for every text of `raws` (each distinct text once)."""
    return {text: parse(text) for text in {rev.text for raw in raws for rev in raw.history()}}


async def rederive(conn: Any, raws: Sequence[RawMessage], changes: Changes,
                   parsed: dict[str, Any] | None = None) -> None:
    """Bring the stored signal and event rows of `raws` in line with what they derive now.

    Run inside a transaction (the caller holds the messages FOR SHARE, or knows no one writes
    them). `raws` carry their revisions (`with_revisions`); `parsed`: `parse_texts(raws)` when
    already computed (else computed here).
    """
    if not raws:
        return
    parsed = parsed if parsed is not None else parse_texts(raws)
    keys = ([r.channel_id for r in raws], [r.message_id for r in raws], [r.original_timestamp for r in raws])
    stored_signals = {(r["channel_id"], r["message_id"], r["message_date"]): r
                      for r in await conn.fetch(_STORED_SIGNALS, *keys)}
    stored_events: dict[tuple[int, int, datetime], dict[int, Any]] = {}
    for r in await conn.fetch(_STORED_EVENTS, *keys):
        stored_events.setdefault((r["channel_id"], r["message_id"], r["message_date"]), {})[r["seq"]] = r

    upsert_signals: list[tuple[RawMessage, dict[str, Any]]] = []
    withdraw_signals: list[tuple[RawMessage, datetime]] = []
    upsert_events: list[tuple[RawMessage, int, dict[str, Any]]] = []
    withdraw_events: list[tuple[RawMessage, int, datetime]] = []
    for raw in raws:
        changes.messages += 1
        stored = stored_signals.get(raw.key)
        if stored is not None:
            changes.signal_ids.add(stored["id"])
        derived = derive(raw, parsed, stored["dismissed_at"] if stored is not None else None)
        if derived.signal is not None:
            wanted = derived.signal
            if stored is None:
                changes.signals_added += 1
            elif not _differs(stored, wanted):
                wanted = {}
            elif stored["deleted_at"] is None and wanted["deleted_at"] is not None:
                changes.signals_withdrawn += 1
            else:
                changes.signals_changed += 1
            if wanted:
                upsert_signals.append((raw, wanted))
                changes.changed_at(raw.channel_id, raw.original_timestamp)
        elif stored is not None:
            deleted_at = raw.deleted_at or stored["dismissed_at"] or raw.revision_date
            if stored["deleted_at"] is None:
                changes.signals_withdrawn += 1
            if stored["deleted_at"] != deleted_at:
                if stored["deleted_at"] is not None:
                    changes.signals_changed += 1
                withdraw_signals.append((raw, deleted_at))
                changes.changed_at(raw.channel_id, raw.original_timestamp)

        events = stored_events.get(raw.key, {})
        for event in events.values():
            if event["signal_id"] is not None:
                changes.signal_ids.add(event["signal_id"])
        for seq, wanted in derived.events.items():
            stored_event = events.get(seq)
            if stored_event is None:
                changes.events_added += 1
            elif not _differs(stored_event, wanted):
                continue
            elif stored_event["deleted_at"] is None and wanted["deleted_at"] is not None:
                changes.events_withdrawn += 1
            else:
                changes.events_changed += 1
            upsert_events.append((raw, seq, wanted))
            changes.changed_at(raw.channel_id, raw.original_timestamp)
        for seq, stored_event in events.items():
            if seq in derived.events:
                continue
            deleted_at = raw.deleted_at or raw.revision_date
            if stored_event["deleted_at"] != deleted_at:
                if stored_event["deleted_at"] is None:
                    changes.events_withdrawn += 1
                else:
                    changes.events_changed += 1
                withdraw_events.append((raw, seq, deleted_at))
                changes.changed_at(raw.channel_id, raw.original_timestamp)

    if upsert_signals:
        columns = [[r.channel_id for r, _ in upsert_signals], [r.message_id for r, _ in upsert_signals],
                   [r.original_timestamp for r, _ in upsert_signals]]
        columns += [[row[name] for _, row in upsert_signals] for name in SIGNAL_FIELDS]
        changes.signal_ids.update(r["id"] for r in await conn.fetch(_UPSERT_SIGNALS, *columns))
    if withdraw_signals:
        await conn.execute(_WITHDRAW_SIGNALS, [r.channel_id for r, _ in withdraw_signals],
                           [r.message_id for r, _ in withdraw_signals], [r.original_timestamp for r, _ in withdraw_signals],
                           [d for _, d in withdraw_signals])
    if upsert_events:
        columns = [[r.channel_id for r, _, _ in upsert_events], [r.message_id for r, _, _ in upsert_events],
                   [r.original_timestamp for r, _, _ in upsert_events], [seq for _, seq, _ in upsert_events]]
        columns += [[row[name] for _, _, row in upsert_events] for name in EVENT_FIELDS]
        await conn.execute(_UPSERT_EVENTS, *columns)
    if withdraw_events:
        await conn.execute(_WITHDRAW_EVENTS, [r.channel_id for r, _, _ in withdraw_events],
                           [r.message_id for r, _, _ in withdraw_events], [r.original_timestamp for r, _, _ in withdraw_events],
                           [seq for _, seq, _ in withdraw_events], [d for _, _, d in withdraw_events])


async def rederive_keys(conn: Any, keys: Sequence[tuple[int, int]], changes: Changes) -> None:
    """Re-derive the messages with these (channel, message id) keys, locked while it runs."""
    async with conn.transaction():
        records = await conn.fetch(FETCH_KEYS + " FOR SHARE OF f", [k[0] for k in keys], [k[1] for k in keys])
        await rederive(conn, await with_revisions(conn, [raw_message(r) for r in records]), changes)
