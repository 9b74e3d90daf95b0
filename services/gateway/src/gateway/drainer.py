"""Moves records from the durable queue to the API: the only consumer of the queue.

New records wake it at once (the live path: a message is queued, then published within
milliseconds); when the API stays unavailable after the publisher's retries, it waits with a
capped exponential backoff and tries again, for ever. Records leave the queue only after the API
answered stored/duplicate (ack) or refused them (dead-letter file).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from . import metrics
from .publisher import Outcome, PublishResult, Publisher
from .queue import DurableQueue, QueueRecord

log = logging.getLogger(__name__)


def publish_queue_gauges(queue: DurableQueue) -> None:
    """Set the queue-size, dead-letter and quarantine gauges from the queue (what /health reports too)."""
    metrics.QUEUE_SIZE.set(queue.depth)
    metrics.DEAD_LETTERS.set(queue.dead_letters)
    metrics.QUARANTINED_LINES.set(queue.recount_quarantine())


def settle(queue: DurableQueue, records: list[QueueRecord], results: list[PublishResult]) -> tuple[int, int, int]:
    """Apply publish results to the queue; returns (acknowledged, dead-lettered, still queued)."""
    acked = [r.seq for r, res in zip(records, results) if res.outcome is Outcome.ACKED]
    refused = [(r, res.reason, res.details, res.http_status)
               for r, res in zip(records, results) if res.outcome is Outcome.REJECTED]
    queue.ack(acked)
    if refused:
        for record, reason, details, _ in refused:
            log.error("the API refused %s (%s %s): moved to %s", record.key, reason, details,
                      queue.files.dead_letter.name)
        queue.dead_letter(refused)
    publish_queue_gauges(queue)
    return len(acked), len(refused), len(records) - len(acked) - len(refused)


class Drainer:
    def __init__(self, queue: DurableQueue, publisher: Publisher, *, batch_size: int,
                 backoff_initial: float, backoff_max: float,
                 on_progress: Callable[[int], None] | None = None) -> None:
        self.queue = queue
        self.publisher = publisher
        self.batch_size = batch_size
        self.backoff_initial = max(backoff_initial, 0.05)
        self.backoff_max = max(backoff_max, self.backoff_initial)
        self.on_progress = on_progress
        self._wake = asyncio.Event()
        self._stopping = False
        self.backoff = 0.0
        self.busy = False

    def wake(self) -> None:
        """New records are in the queue (or the caller wants an immediate retry)."""
        self._wake.set()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def drain_once(self) -> bool:
        """Publish until the queue is empty (True) or the API stops acknowledging (False)."""
        while self.queue.depth and not self._stopping:
            records = self.queue.pending(self.batch_size)
            self.busy = True
            try:
                results = await self.publisher.publish_batch(records)
            finally:
                self.busy = False
            done, refused, kept = settle(self.queue, records, results)
            if self.on_progress is not None:
                self.on_progress(done + refused)
            if kept:
                return False
        return not self.queue.depth

    async def run(self) -> None:
        # At start, not only after a publish: a restart may find dead letters (or a backlog) on
        # disk, and with nothing to publish `settle()` would not run and the alert would stay quiet.
        publish_queue_gauges(self.queue)
        while not self._stopping:
            self._wake.clear()
            if await self.drain_once():
                self.backoff = 0.0
                await self._wake.wait()
                continue
            if self._stopping:
                break
            self.backoff = min(self.backoff_max, self.backoff * 2 if self.backoff else self.backoff_initial)
            log.warning("API unavailable (%s); %d record(s) stay queued, next try in %.1fs (or on the next message)",
                        self.publisher.last_error or "no answer", self.queue.depth, self.backoff)
            try:
                await asyncio.wait_for(self._wake.wait(), self.backoff)
            except asyncio.TimeoutError:
                pass


async def stop_when_idle(drainer: Drainer, task: asyncio.Task, grace: float) -> None:
    """Stop `task` (running `drainer`) without losing an answer: let a request on the wire finish
    (up to `grace` seconds) but cut a retry sleep or an idle wait short.

    Cancelling between requests is safe: a record is acknowledged only after the API's answer,
    so a cancelled publish is simply sent again at the next start (and deduplicated)."""
    drainer.stop()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace
    while not task.done():
        if drainer.publisher.in_flight == 0 or loop.time() >= deadline:
            task.cancel()
            break
        await asyncio.sleep(0.01)
