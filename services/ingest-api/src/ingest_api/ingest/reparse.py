"""`ingest-api reparse`: re-derive every signal, event and status from the stored raw messages.

Per channel, in Telegram order, in batches of messages (each batch one short transaction that
holds its messages FOR SHARE, so the API keeps ingesting meanwhile: an edit or deletion of those
messages waits for the batch, new messages and reads do not): parse their revisions, compare
what they derive with the stored signal and event rows, write what differs (derive.py). Messages stored under two
dates are merged first (migration 009). Then the channel's events are relinked and every status
and current stop recomputed (migration 008) from the start date on. Deleted messages stay
deleted: their rows are re-derived, marked deleted.

A second run, or a run after a release that did not change the parser, changes nothing. With
`dry_run` each channel runs in one transaction that is rolled back: the figures are exact, and
the API's writes to that channel wait while it runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from . import sql
from .derive import FETCH_BATCH, Changes, parse_texts, raw_message, rederive, with_revisions

BATCH_SIZE = 500

_CHANNELS = """
SELECT channel_id, count(*) AS messages
FROM tp_capital.forwarded_messages
WHERE ($1::bigint IS NULL OR channel_id = $1) AND ($2::timestamptz IS NULL OR original_timestamp >= $2)
GROUP BY channel_id
ORDER BY channel_id
"""
# Messages stored under more than one date (before migration 009 made that impossible), with the
# date to keep: the one on record, else the latest delivery's.
_TWO_DATES = """
SELECT f.message_id, COALESCE(d.original_timestamp, max(f.original_timestamp)) AS keep_date
FROM tp_capital.forwarded_messages f
LEFT JOIN tp_capital.message_dates d ON d.channel_id = f.channel_id AND d.message_id = f.message_id
WHERE f.channel_id = $1
GROUP BY f.message_id, d.original_timestamp
HAVING count(*) > 1
"""

_SIGNAL_IDS = """
SELECT id FROM tp_capital.tp_capital_signals
WHERE channel_id = $1 AND ($2::timestamptz IS NULL OR message_date >= $2)
"""


@dataclass
class Summary:
    """Totals of a run: what was (or, dry run, would be) added, changed and withdrawn."""

    channels: int = 0
    merged: int = 0
    relinked: int = 0
    states_changed: int = 0
    changes: Changes = field(default_factory=Changes)

    @property
    def total_changes(self) -> int:
        return self.changes.rows_changed + self.merged + self.relinked + self.states_changed

    def report(self, dry_run: bool) -> str:
        c = self.changes
        verb = "would change" if dry_run else "changed"
        return "\n".join([
            f"reparse: {c.messages} messages in {self.channels} channel(s); {verb} {self.total_changes} row(s)",
            f"  signals: {c.signals_added} added, {c.signals_changed} changed, {c.signals_withdrawn} withdrawn",
            f"  events:  {c.events_added} added, {c.events_changed} changed, {c.events_withdrawn} withdrawn",
            f"  links:   {self.relinked} event(s) relinked, {self.states_changed} signal status/current stop(s) updated",
            f"  messages stored under two dates merged: {self.merged}",
        ])


async def _merge_two_dates(conn, channel_id: int, summary: Summary, changes: Changes) -> None:
    for row in await conn.fetch(_TWO_DATES, channel_id):
        async with conn.transaction():
            moved_from = await conn.fetchval(sql.REDATE, channel_id, row["message_id"], row["keep_date"])
        if moved_from is not None:
            summary.merged += 1
            changes.changed_at(channel_id, min(moved_from, row["keep_date"]))


async def _reparse_channel(conn, channel_id: int, since: datetime | None, summary: Summary, batch_size: int,
                           lock: bool, advance: Callable[[int], None]) -> None:
    changes = summary.changes
    await _merge_two_dates(conn, channel_id, summary, changes)
    after: tuple[datetime | None, int] = (None, 0)
    query = FETCH_BATCH + (" FOR SHARE OF f" if lock else "")
    while True:
        async with conn.transaction():
            records = await conn.fetch(query, channel_id, since, *after, batch_size)
            if not records:
                break
            raws = await with_revisions(conn, [raw_message(r) for r in records])
            await rederive(conn, raws, changes, parse_texts(raws))
        after = (raws[-1].original_timestamp, raws[-1].message_id)
        advance(len(raws))
    # Every status of the range is recomputed, not only those of rows that changed: links and
    # states stored by an older release are brought in line too.
    ids = await conn.fetch(_SIGNAL_IDS, channel_id, since)
    changes.signal_ids.update(r["id"] for r in ids)
    merged_from = changes.relink_from.pop(channel_id, None)
    from_date = None if since is None else min(since, merged_from or since)
    row = await conn.fetchrow(sql.RELINK, [channel_id], [from_date], sorted(changes.signal_ids))
    changes.signal_ids.clear()
    summary.relinked += row["relinked"]
    summary.states_changed += row["refreshed"]


async def reparse(conn, channel_id: int | None = None, since: datetime | None = None, dry_run: bool = False,
                  batch_size: int = BATCH_SIZE, on_total: Callable[[int], None] = lambda n: None,
                  advance: Callable[[int], None] = lambda n: None) -> Summary:
    """Re-derive the messages of `channel_id` (all channels when None) dated `since` or later."""
    summary = Summary()
    channels = await conn.fetch(_CHANNELS, channel_id, since)
    on_total(sum(r["messages"] for r in channels))
    for channel in channels:
        summary.channels += 1
        if dry_run:
            transaction = conn.transaction()
            await transaction.start()
            try:
                await _reparse_channel(conn, channel["channel_id"], since, summary, batch_size, False, advance)
            finally:
                await transaction.rollback()
        else:
            await _reparse_channel(conn, channel["channel_id"], since, summary, batch_size, True, advance)
    return summary
