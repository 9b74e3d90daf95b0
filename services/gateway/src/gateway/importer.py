"""`gateway import`: a Telegram Desktop export streamed through the durable queue to the API.

The export is read a chunk of messages at a time (export.ExportReader: flat memory however large
the file), each chunk is written to the queue (write-ahead, one fsync) and then published through
`/ingest/batch` while the next chunk is parsed in a worker thread. So the queue holds about one
chunk at a time and the parser's time hides behind the API's. If the API stops acknowledging,
the rest of the file is still queued (nothing read is ever dropped) and the command ends with the
backlog left for `gateway run` or `gateway replay`, as before.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field

from contracts import encode_payload, idempotency_key

from . import compose
from .delivery import publish_counts
from .drainer import stop_when_idle
from .export import ExportError, ExportReader
from .queue import DurableQueue
from .settings import GatewaySettings

# Messages parsed, queued (one fsync) and published together.
CHUNK_MESSAGES = 5_000


@dataclass
class ImportOutcome:
    emptied: bool                   # everything queued was acknowledged
    queued: int = 0                 # payloads this import wrote to the queue
    already_waiting: int = 0        # keys already in the queue (an import cut short), not queued again
    finished_reading: bool = False  # reached the end of `messages`
    problem: str | None = None      # the export turned out not to be one (one line)
    interrupted: bool = False       # SIGTERM / SIGINT: stopped reading
    counts: dict = field(default_factory=dict)


def _chunks(reader: ExportReader, waiting: set[str], outcome: ImportOutcome) -> Iterator[list[tuple[str, bytes]]]:
    chunk: list[tuple[str, bytes]] = []
    try:
        for payload in reader.payloads():
            key = str(idempotency_key(payload))
            if key in waiting:
                outcome.already_waiting += 1
                continue
            chunk.append((key, encode_payload(payload)))
            if len(chunk) == CHUNK_MESSAGES:
                yield chunk
                chunk = []
    except ExportError:
        # A cut-off or broken file: the messages read before the problem go the normal way.
        if chunk:
            yield chunk
        raise
    if chunk:
        yield chunk
    outcome.finished_reading = True


async def import_export(settings: GatewaySettings, queue: DurableQueue, reader: ExportReader, *,
                        progress: bool | None) -> ImportOutcome:
    """Stream `reader` into `queue` and publish as it goes; SIGTERM/SIGINT stop it cleanly."""
    from tqdm import tqdm

    publish = settings.publish
    outcome = ImportOutcome(emptied=False)
    # Keys already waiting (an import cut short) are not queued twice; the API deduplicates the rest.
    waiting = queue.pending_keys()
    chunks = _chunks(reader, waiting, outcome)
    loop = asyncio.get_running_loop()
    async with compose.delivery(settings, queue, one_shot=True) as drainer:
        publisher = drainer.publisher
        # disable=None: no bar when stderr is not a terminal (logs of `uv run stack`, tests).
        with tqdm(total=reader.size, desc="import", unit="B", unit_scale=True, file=sys.stderr,
                  disable=None if progress is None else not progress) as bar:

            def show() -> None:
                bar.update(reader.bytes_read - bar.n)
                bar.set_postfix(queued=outcome.queued, stored=publisher.counts.get("stored", 0),
                                duplicate=publisher.counts.get("duplicate", 0), refresh=False)

            async def work() -> bool:
                api_up = True
                following = asyncio.create_task(asyncio.to_thread(next, chunks, None))
                while True:
                    try:
                        chunk = await following
                    except ExportError as exc:
                        outcome.problem = str(exc)
                        chunk = None
                    if chunk is None:
                        break
                    queue.append_encoded(chunk)  # on disk (fsync'd) before anything is published
                    outcome.queued += len(chunk)
                    if outcome.interrupted:
                        break
                    # Parse the next chunk while this one is published.
                    following = asyncio.create_task(asyncio.to_thread(next, chunks, None))
                    if api_up:
                        api_up = await drainer.drain_once()
                    show()
                if api_up and queue.depth:
                    api_up = await drainer.drain_once()
                show()
                return api_up and not queue.depth

            task = asyncio.create_task(work())
            stopping: list[asyncio.Task] = []

            def on_signal() -> None:
                outcome.interrupted = True
                stopping.append(asyncio.create_task(stop_when_idle(drainer, task, publish.timeout_seconds + 1.0)))

            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, on_signal)
            try:
                outcome.emptied = await task
            except asyncio.CancelledError:
                outcome.emptied = False
            finally:
                for sig in (signal.SIGTERM, signal.SIGINT):
                    loop.remove_signal_handler(sig)
                await asyncio.gather(*stopping, return_exceptions=True)
    outcome.counts = publish_counts(publisher)
    return outcome
