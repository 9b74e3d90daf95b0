"""The running gateway: source → durable queue → drainer → API, plus backfill and shutdown.

Every path that produces payloads (live events, backfill) goes through `Gateway.enqueue`, which
writes them to the queue (fsync) before waking the drainer: nothing is published that is not on
disk first, and a source's position (file offset, channel cursor) moves only after that.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass, field

from contracts import MessagePayload, encode_payload, idempotency_key

from . import metrics
from .cursors import CursorStore
from .drainer import Drainer, stop_when_idle
from .publisher import Publisher
from .queue import DurableQueue
from .source import Source, SourceBatch

log = logging.getLogger(__name__)

# Keys of live events remembered so a backfill does not queue them a second time.
_RECENT_KEYS = 50_000


@dataclass
class GatewayState:
    started_at: float = field(default_factory=time.time)
    last_backfill_at: float | None = None
    last_error: str | None = None
    ready: bool = False
    # Damaged queue lines this start set aside (quarantined): `run` exits 3 when it stops.
    set_aside: int = 0


class Gateway:
    def __init__(self, source: Source, queue: DurableQueue, publisher: Publisher, drainer: Drainer,
                 cursors: CursorStore, *, backfill_interval: float = 300.0) -> None:
        self.source = source
        self.queue = queue
        self.publisher = publisher
        self.drainer = drainer
        self.cursors = cursors
        self.backfill_interval = backfill_interval
        self.state = GatewayState()
        self._recent: OrderedDict[str, None] = OrderedDict()
        self._backfill_wanted = asyncio.Event()
        self._stop = asyncio.Event()

    # -- the one way into the queue ----------------------------------------------------------

    async def enqueue(self, batch: SourceBatch) -> None:
        if batch.items:
            self.queue.append_encoded(batch.items)
            for key, _ in batch.items:
                self._remember(key)
            metrics.QUEUE_SIZE.set(self.queue.depth)
            self.drainer.wake()
        if batch.checkpoint is not None:
            await self.source.commit(batch.checkpoint)

    def enqueue_payloads(self, payloads: list[MessagePayload]) -> None:
        """Queue payloads built in-process (Telethon handlers, backfill)."""
        if payloads:
            self.queue.append_encoded((str(idempotency_key(p)), encode_payload(p)) for p in payloads)
            for payload in payloads:
                self._remember(str(idempotency_key(payload)))
            metrics.QUEUE_SIZE.set(self.queue.depth)
            self.drainer.wake()

    def _remember(self, key: str) -> None:
        self._recent[key] = None
        if len(self._recent) > _RECENT_KEYS:
            self._recent.popitem(last=False)

    # -- backfill ----------------------------------------------------------------------------

    def request_backfill(self) -> None:
        self._backfill_wanted.set()

    async def backfill(self) -> int:
        """Queue every message newer than each channel's cursor; returns how many were queued."""
        queued = 0
        for channel_id in self.source.channels():
            cursor = self.cursors.get(channel_id)
            depth = self.cursors.depth_without_cursor() if cursor is None else None
            async for page in self.source.history(channel_id, cursor, depth=depth):
                fresh = [p for p in page.payloads if str(idempotency_key(p)) not in self._recent]
                self.enqueue_payloads(fresh)
                metrics.BACKFILLED.labels(channel_id=str(channel_id)).inc(len(fresh))
                queued += len(fresh)
                # Outbox rule: the cursor moves only once the page is in the queue.
                self.cursors.advance(channel_id, page.last_id)
        self.state.last_backfill_at = time.time()
        if queued:
            log.info("backfill queued %d message(s)", queued)
        return queued

    async def _backfill_loop(self) -> None:
        while not self._stop.is_set():
            try:
                await asyncio.wait_for(self._backfill_wanted.wait(), self.backfill_interval)
            except asyncio.TimeoutError:
                pass
            self._backfill_wanted.clear()
            if self._stop.is_set():
                break
            try:
                await self.backfill()
            except Exception as exc:  # noqa: BLE001 - a failed backfill is retried on the next tick
                self.state.last_error = f"backfill: {exc}"
                log.exception("backfill failed; retrying at the next tick or reconnect")

    # -- live events -------------------------------------------------------------------------

    async def _follow(self) -> None:
        # Runs until the source's events end (after `close()`, once it has handed over what it
        # had already received): on SIGTERM those events still reach the durable queue.
        async for batch in self.source.events():
            await self.enqueue(batch)

    # -- lifecycle ----------------------------------------------------------------------------

    async def run(self, *, shutdown_grace: float = 12.0) -> int:
        """Run until `stop()` (SIGTERM) or a source failure; returns the process exit status.

        The drainer starts first, so what is already queued is delivered even while the source is
        still connecting. On stop: the publish on the wire is allowed to finish (its answer decides
        ack or not), retry sleeps are cut short, the queue files are flushed and the lock released.
        """
        self.source.on_reconnect(self.request_backfill)
        if not self.cursors.loaded:  # `gateway run` loads them before, to report a problem in one line
            self.cursors.load()
        drainer = asyncio.create_task(self.drainer.run(), name="drainer")
        stop_wait = asyncio.create_task(self._stop.wait(), name="stop")
        tasks: list[asyncio.Task] = []
        status = 0
        try:
            connect = asyncio.create_task(self.source.connect(), name="connect")
            await asyncio.wait({connect, stop_wait, drainer}, return_when=asyncio.FIRST_COMPLETED)
            if not connect.done():
                connect.cancel()
                await asyncio.gather(connect, return_exceptions=True)
                if drainer.done() and not drainer.cancelled() and drainer.exception() is not None:
                    status = self._failed("drainer", drainer.exception())
            elif connect.exception() is not None:
                status = self._failed("connecting the source", connect.exception())
            if connect.done() and not connect.cancelled() and connect.exception() is None:
                follower = asyncio.create_task(self._follow(), name="source")
                backfiller = asyncio.create_task(self._backfill_loop(), name="backfill")
                tasks = [follower, backfiller]
                if self.source.channels():
                    self.request_backfill()  # at start, before anything else can be missed
                self.state.ready = True
                await asyncio.wait({stop_wait, follower, drainer}, return_when=asyncio.FIRST_COMPLETED)
                for task in (follower, drainer):
                    if task.done() and not task.cancelled() and task.exception() is not None:
                        status = self._failed(task.get_name(), task.exception())
                    elif task.done() and task is follower and not self._stop.is_set():
                        status = self._failed("source", RuntimeError("the source ended unexpectedly"))
        finally:
            self.state.ready = False
            self._stop.set()
            try:
                await self.source.close()
            except Exception:  # noqa: BLE001 - closing must not keep the queue from being flushed
                log.exception("closing the source failed")
            if tasks:
                follower, backfiller = tasks
                backfiller.cancel()  # safe anywhere: a cursor moves only after its page is queued
                # Let the source hand over the events it already received, briefly.
                await asyncio.wait({follower}, timeout=2.0)
                follower.cancel()
            await stop_when_idle(self.drainer, drainer, shutdown_grace)
            await asyncio.gather(*tasks, drainer, stop_wait, return_exceptions=True)
            self.queue.close()
        return status

    def _failed(self, what: str, exc: BaseException) -> int:
        from .session import SessionError

        # A revoked or unusable session: restarting cannot help (exit 2, which systemd does not
        # restart; the operator runs `gateway login`). A source may also name its own status.
        expected = isinstance(exc, SessionError) or getattr(exc, "exit_code", 1) == 2
        self.state.last_error = str(exc) if expected else f"{what}: {exc}"
        log.error("%s failed: %s", what, exc, exc_info=None if expected else exc)
        return 2 if expected else int(getattr(exc, "exit_code", 1))

    def stop(self) -> None:
        self._stop.set()
