"""The ingest writer: stores validated messages (validation.Prepared) in batches, one statement
per kind, and answers one `IngestResult` each, in order.

`IngestWriter.write()` parses and stores a list of messages (POST /ingest/batch);
`IngestWriter.submit()` does the same for one message, coalescing the messages of concurrent
requests into one batch (what lets a single-message API keep up with the database). The SQL is
in sql.py; what a stored message derives (signals, events, statuses) in derive.py.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from contracts import IngestResult

from .. import metrics
from ..db import Database, DatabaseUnavailable, unavailable_kind
from ..parser import FollowUp, Signal, parse
from ..settings import WriterSettings
from ..signals.outcomes import relink_and_count, settle_and_count
from . import sql
from .derive import Changes, rederive_keys
from .validation import Prepared

log = logging.getLogger(__name__)


_CONFLICTS = (asyncpg.exceptions.DeadlockDetectedError, asyncpg.exceptions.SerializationError)
_CONFLICT_ATTEMPTS = 3

# How many times one write moves a message that racing deliveries keep storing under other dates.
_MAX_REDATE_ROUNDS = 3

# Parsing is linear in the text's length, but a 64 KiB text still takes tens of milliseconds:
# requests whose texts add up to more than this are parsed on a worker thread, so the event loop
# keeps answering other requests meanwhile (Python's `re` holds the GIL within one search, but
# each search is short and the interpreter switches threads between them).
THREAD_PARSE_CHARS = 32 * 1024


def _parse_each(items: Sequence[Prepared]) -> None:
    for item in items:
        if not item.is_parsed:
            item.parsed = parse(item.text) if item.kind != "deleted" else None
            item.is_parsed = True


async def parse_prepared(items: Sequence[Prepared]) -> None:
    """Set `parsed` on each item, off the event loop when the texts are long."""
    pending = [item for item in items if not item.is_parsed]
    if sum(len(item.text) for item in pending) > THREAD_PARSE_CHARS:
        await asyncio.to_thread(_parse_each, pending)
    else:
        _parse_each(pending)


# -- writing ---------------------------------------------------------------------------------

def _signal_columns(items: Sequence[tuple[int, Prepared]]) -> list[list[Any]]:
    columns: list[list[Any]] = [[] for _ in range(9)]
    for _, item in items:
        s = item.parsed if isinstance(item.parsed, Signal) else None
        values = (
            (s.asset, s.signal_type, s.side, s.buy_min, s.buy_max, s.target_1, s.target_2, s.target_final, s.stop)
            if s is not None
            else (None,) * 9
        )
        for column, value in zip(columns, values):
            column.append(value)
    return columns


def _events(items: Sequence[tuple[int, Prepared]]) -> list[tuple[int, Prepared, int, str | None, Any]]:
    """(index, item, seq, asset, event) for every event of the follow-ups among `items`."""
    return [(index, item, seq, item.parsed.asset, event)
            for index, item in items if isinstance(item.parsed, FollowUp)
            for seq, event in enumerate(item.parsed.events)]


def _event_values(events: Sequence[tuple[int, Prepared, int, str | None, Any]]) -> list[list[Any]]:
    return [
        [seq for _, _, seq, _, _ in events],
        [asset for _, _, _, asset, _ in events],
        [e.event_type for _, _, _, _, e in events],
        [e.target_number for _, _, _, _, e in events],
        [e.percentage for _, _, _, _, e in events],
        [e.price for _, _, _, _, e in events],
        [e.breakeven for _, _, _, _, e in events],
    ]


@dataclass
class _Batch:
    """What one `write()` did, gathered over its statements."""

    results: list[IngestResult | None]
    stored: set[int] = dataclasses.field(default_factory=set)
    # Answers that say more than "stored" (a message moved to another date).
    reasons: dict[int, str] = dataclasses.field(default_factory=dict)
    touched: list[Prepared] = dataclasses.field(default_factory=list)
    reconcile: list[Prepared] = dataclasses.field(default_factory=list)
    relink_from: dict[int, datetime] = dataclasses.field(default_factory=dict)
    refresh: set[int] = dataclasses.field(default_factory=set)

    def relink(self, channel_id: int, moment: datetime | None) -> None:
        if moment is None:
            return
        current = self.relink_from.get(channel_id)
        if current is None or moment < current:
            self.relink_from[channel_id] = moment


def _rounds(items: Sequence[tuple[int, Prepared]]) -> list[list[tuple[int, Prepared]]]:
    """Split a batch so that each round holds one date per message: the same message sent with
    two dates in one batch goes out in two rounds, and the later one moves it (REDATE)."""
    keys = {(item.channel_id, item.message_id) for _, item in items if item.kind != "deleted"}
    if len(keys) == sum(1 for _, item in items if item.kind != "deleted"):
        return [list(items)]  # one delivery per message: the usual case
    dates: dict[tuple[int, int], list[datetime | None]] = {}
    rounds: list[list[tuple[int, Prepared]]] = [[]]
    for index, item in items:
        number = 0
        if item.kind != "deleted":
            seen = dates.setdefault((item.channel_id, item.message_id), [])
            if item.original_timestamp not in seen:
                seen.append(item.original_timestamp)
            number = seen.index(item.original_timestamp)
        while len(rounds) <= number:
            rounds.append([])
        rounds[number].append((index, item))
    return rounds


class IngestWriter:
    """Writes prepared messages; coalesces concurrent single submissions into batches."""

    def __init__(self, database: Database, settings: WriterSettings) -> None:
        self._db = database
        self._settings = settings
        self._pending: list[tuple[Prepared, asyncio.Future[IngestResult], contextvars.Context]] = []
        self._in_flight = 0
        self._dispatch_scheduled = False
        self._stopped = False
        self._flushes: set[asyncio.Task[None]] = set()

    # -- coalescing of single submissions ---------------------------------------------------
    #
    # While up to `max_in_flight` statements run, new submissions pile up and go out together in
    # the next one: the batch size adapts to the load, with no timer adding latency. A submission
    # schedules one dispatch callback for the loop's next turn (the submissions of the same turn
    # join it), and a finished statement dispatches what piled up meanwhile at once: no writer
    # task to wake, no event or semaphore round trip through the loop.

    def start(self) -> None:
        self._stopped = False

    async def stop(self) -> None:
        self._stopped = True
        await asyncio.gather(*self._flushes, return_exceptions=True)
        for _, future, _ in self._pending:  # (item, future, context): a request still waiting
            if not future.done():
                future.set_exception(DatabaseUnavailable("shutting down"))
        self._pending.clear()

    async def submit(self, item: Prepared) -> IngestResult:
        if self._stopped:
            raise DatabaseUnavailable("shutting down")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[IngestResult] = loop.create_future()
        self._pending.append((item, future, contextvars.copy_context()))
        if not self._dispatch_scheduled and self._in_flight < self._settings.max_in_flight:
            self._dispatch_scheduled = True
            loop.call_soon(self._dispatch)
        return await future

    def _dispatch(self) -> None:
        self._dispatch_scheduled = False
        if self._stopped:
            return
        while self._pending and self._in_flight < self._settings.max_in_flight:
            batch = self._pending[: self._settings.max_batch]
            del self._pending[: self._settings.max_batch]
            self._in_flight += 1
            # The statement runs in the first request's context, so its SQL spans join that
            # request's trace (one statement serves them all; a span has one parent).
            task = asyncio.create_task(self._flush([(i, f) for i, f, _ in batch]), context=batch[0][2])
            self._flushes.add(task)
            task.add_done_callback(self._flushes.discard)

    async def _flush(self, batch: list[tuple[Prepared, asyncio.Future[IngestResult]]]) -> None:
        try:
            try:
                results: list[IngestResult | BaseException] = list(await self.write([item for item, _ in batch]))
            except DatabaseUnavailable:
                raise
            except Exception:
                if len(batch) == 1:
                    raise
                # A statement failed for a reason other than availability: write the messages one
                # by one, so only the message that causes it fails and the others it was
                # coalesced with are stored.
                log.exception("coalesced write failed; retrying its %d messages one by one", len(batch))
                results = []
                for item, _ in batch:
                    try:
                        results.extend(await self.write([item]))
                    except Exception as exc:  # noqa: BLE001 - answered to that request alone
                        results.append(exc)
        except BaseException as exc:  # noqa: BLE001 - handed to every waiting request
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
        else:
            for (_, future), result in zip(batch, results):
                if future.done():
                    continue
                if isinstance(result, BaseException):
                    future.set_exception(result)
                else:
                    future.set_result(result)
        finally:
            self._in_flight -= 1
            if self._pending:
                self._dispatch()

    # -- batch write ------------------------------------------------------------------------

    async def write(self, items: Sequence[Prepared]) -> list[IngestResult]:
        """Store `items`; results in order. Raises DatabaseUnavailable when the database is out of reach."""
        for attempt in range(1, _CONFLICT_ATTEMPTS + 1):
            try:
                return await self._write(items)
            except _CONFLICTS as exc:
                # Two writes moving the same message to different dates (or a relink and a move)
                # can deadlock; PostgreSQL aborts one. Every statement is idempotent, so it is
                # written again here rather than answered 503 (a message stored by the aborted
                # attempt then answers "duplicate", as after any retry).
                metrics.DB_ERRORS.labels(error_type=type(exc).__name__).inc()
                if attempt == _CONFLICT_ATTEMPTS:
                    raise DatabaseUnavailable(type(exc).__name__) from exc
                await asyncio.sleep(random.uniform(0.005, 0.05) * attempt)
            except Exception as exc:
                kind = unavailable_kind(exc)
                metrics.DB_ERRORS.labels(error_type=kind or type(exc).__name__).inc()
                if kind is not None:
                    raise DatabaseUnavailable(kind) from exc
                raise
        raise AssertionError("unreachable")

    async def _write(self, items: Sequence[Prepared]) -> list[IngestResult]:
        await parse_prepared(items)
        batch = _Batch(results=[None] * len(items))
        first: dict[tuple[Any, ...], int] = {}
        work: list[tuple[int, Prepared]] = []
        for index, item in enumerate(items):
            key = item.dedupe_key
            if key in first:  # the same event twice in one batch: the first one speaks for both
                batch.results[index] = IngestResult.duplicate(item.message_id)
                continue
            first[key] = index
            work.append((index, item))
        metrics.COALESCED_BATCH.observe(len(items))

        assert self._db.pool is not None
        async with self._db.pool.acquire() as conn:
            rounds = _rounds(work)
            redated: list[tuple[int, Prepared]] = []
            passes = 0
            while rounds:
                moved = await self._write_round(conn, rounds.pop(0), batch)
                if moved and passes < _MAX_REDATE_ROUNDS:
                    passes += 1
                    await self._redate(conn, moved, batch)
                    redated.extend(moved)
                    rounds.insert(0, moved)  # now at one date: written again like any other
            await self._reconcile(conn, batch)
            if redated:
                await self._apply_tombstones(conn, batch)
                changes = Changes()
                await rederive_keys(conn, sorted({(i.channel_id, i.message_id) for _, i in redated}), changes)
                batch.refresh |= changes.signal_ids
                for channel_id, moment in changes.relink_from.items():
                    batch.relink(channel_id, moment)
                if batch.relink_from or batch.refresh:
                    channels = sorted(batch.relink_from)
                    await relink_and_count(conn, channels, [batch.relink_from[c] for c in channels],
                                           sorted(batch.refresh))
            elif batch.touched or batch.relink_from or batch.refresh:
                # The usual write: tombstones, relink and outcomes in one statement (one round trip).
                channels = sorted(batch.relink_from)
                await settle_and_count(conn, [(i.channel_id, i.message_id) for i in batch.touched], channels,
                                       [batch.relink_from[c] for c in channels], sorted(batch.refresh))

        for index, item in work:
            if index in batch.reasons:
                batch.results[index] = IngestResult(success=True, status="stored", stored=True,
                                                    message_id=item.message_id, reason=batch.reasons[index])
            elif index in batch.stored:
                batch.results[index] = IngestResult.stored_(item.message_id)
                if item.kind == "new" and isinstance(item.parsed, Signal):
                    metrics.SIGNALS_INSERTED.labels(signal_type=item.parsed.signal_type).inc()
                elif item.kind == "new" and isinstance(item.parsed, FollowUp):
                    for event in item.parsed.events:
                        metrics.SIGNAL_EVENTS.labels(event_type=event.event_type).inc()
            else:
                batch.results[index] = IngestResult.duplicate(item.message_id)
        return batch.results  # type: ignore[return-value]

    async def _write_round(self, conn: Any, items: Sequence[tuple[int, Prepared]], batch: _Batch) -> list[tuple[int, Prepared]]:
        """The statements for one round; returns the messages on record with another date."""
        news = [(i, item) for i, item in items if item.kind == "new"]
        edits = [(i, item) for i, item in items if item.kind == "edited"]
        deletes = [(i, item) for i, item in items if item.kind == "deleted"]
        redate: set[int] = set()
        if news:
            for row in await conn.fetch(sql.INSERT_NEW, *self._new_arrays(news)):
                if row["redate"]:
                    redate.add(row["idx"])
                elif row["stored"]:
                    batch.stored.add(row["idx"])
        if edits:
            for row in await conn.fetch(sql.INSERT_EDITS, *self._edit_arrays(edits)):
                if row["idx"] is None:
                    batch.refresh.add(row["signal_id"])
                elif row["redate"]:
                    redate.add(row["idx"])
                elif row["stored"]:
                    batch.stored.add(row["idx"])
        if deletes:
            rows = await conn.fetch(
                sql.INSERT_TOMBSTONES,
                [item.channel_id for _, item in deletes],
                [item.message_id for _, item in deletes],
                [item.deleted_at for _, item in deletes],
            )
            recorded = {(row[0], row[1]) for row in rows}
            batch.stored.update(i for i, item in deletes if (item.channel_id, item.message_id) in recorded)
        # Follow-ups are (re)processed for duplicates too: the same delivery may have stored its
        # message in an attempt that failed before answering (the client got a 503 and retries).
        written_news = [(i, item) for i, item in news if i not in redate]
        events = _events(written_news)
        if events:
            await conn.execute(sql.RECORD_EVENTS, [item.channel_id for _, item, _, _, _ in events],
                               [item.message_id for _, item, _, _, _ in events],
                               [item.original_timestamp for _, item, _, _, _ in events], *_event_values(events),
                               [item.text for _, item, _, _, _ in events])
        for i, item in written_news + [(i, item) for i, item in edits if i not in redate]:
            if isinstance(item.parsed, (Signal, FollowUp)):
                batch.relink(item.channel_id, item.original_timestamp)
            if item.kind == "edited" or i not in batch.stored:
                batch.reconcile.append(item)  # an edit, or a delivery of a message already stored
        batch.touched.extend(item for i, item in items if i not in redate)
        return [(i, item) for i, item in items if i in redate]

    async def _redate(self, conn: Any, items: Sequence[tuple[int, Prepared]], batch: _Batch) -> None:
        """Move messages on record with another date to the date these deliveries carry."""
        for index, item in items:
            async with conn.transaction():
                moved_from = await conn.fetchval(sql.REDATE, item.channel_id, item.message_id, item.original_timestamp)
            if moved_from is not None:
                assert item.original_timestamp is not None
                batch.relink(item.channel_id, min(moved_from, item.original_timestamp))
                batch.reasons[index] = (f"message date changed from {moved_from.isoformat()} to "
                                        f"{item.original_timestamp.isoformat()} (the same message was stored "
                                        "with another date)")
                log.warning("message %s:%s stored with another date moved from %s to %s", item.channel_id,
                            item.message_id, moved_from.isoformat(), item.original_timestamp.isoformat())

    # Both run after the writes have committed (each statement is its own transaction), so that
    # of two racing writes the second sees both: see RECONCILE and APPLY_TOMBSTONES in sql.py.
    async def _reconcile(self, conn: Any, batch: _Batch) -> None:
        """Mark deleted what older texts derived, for the edits and redeliveries of the batch."""
        if batch.reconcile:
            rows = await conn.fetch(sql.RECONCILE, [i.channel_id for i in batch.reconcile],
                                    [i.message_id for i in batch.reconcile],
                                    [i.original_timestamp for i in batch.reconcile])
            for row in rows:
                batch.relink(row["channel_id"], row["from_date"])

    async def _apply_tombstones(self, conn: Any, batch: _Batch) -> None:
        """Apply the tombstones of the messages touched (the path of a write that moved a message;
        the usual one applies them in SETTLE_WRITE, with the relink)."""
        if batch.touched:
            rows = await conn.fetch(sql.APPLY_TOMBSTONES, [i.channel_id for i in batch.touched],
                                    [i.message_id for i in batch.touched])
            for row in rows:
                batch.relink(row["channel_id"], row["from_date"])

    @staticmethod
    def _common_arrays(items: Sequence[tuple[int, Prepared]]) -> tuple[list[Any], ...]:
        return (
            [item.text for _, item in items],
            [item.photos for _, item in items],
            [item.channel_name for _, item in items],
            [item.sender for _, item in items],
            [item.forward for _, item in items],
            [item.reply_to_message_id for _, item in items],
        )

    def _new_arrays(self, items: Sequence[tuple[int, Prepared]]) -> list[list[Any]]:
        return [
            [index for index, _ in items],
            [item.channel_id for _, item in items],
            [item.message_id for _, item in items],
            [item.original_timestamp for _, item in items],
            *self._common_arrays(items),
            *_signal_columns(items),
            [item.channel for _, item in items],
        ]

    def _edit_arrays(self, items: Sequence[tuple[int, Prepared]]) -> list[list[Any]]:
        events = _events(items)
        return [
            [index for index, _ in items],
            [item.channel_id for _, item in items],
            [item.message_id for _, item in items],
            [item.original_timestamp for _, item in items],
            [item.edit_date for _, item in items],
            *self._common_arrays(items),
            *_signal_columns(items),
            [index for index, _, _, _, _ in events],
            *_event_values(events),
        ]
