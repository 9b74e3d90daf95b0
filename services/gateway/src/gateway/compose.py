"""The composition root: the one place that builds the gateway's objects from its settings and
wires them together (queue, cursors, source, publisher and drainer, the running gateway, its HTTP
server, stamina's retry hook). The commands (run.py, delivery.py, status) ask for them here; the
modules they come from never build each other's.

Imports stay inside the functions: `gateway status` and the session commands do not load aiohttp,
Telethon or the tracing SDK they do not use.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from .settings import GatewaySettings

if TYPE_CHECKING:
    from aiohttp import web

    from .cursors import CursorStore
    from .drainer import Drainer
    from .queue import DurableQueue
    from .service import Gateway
    from .source import Source

# The one-shot commands publish everything queued and stop at the first refusal to acknowledge:
# they never sleep between tries (Drainer.drain_once), this is only its floor.
_ONE_SHOT_BACKOFF = 0.05


def instrument() -> None:
    """Process-wide, for every command: stamina's one retry hook (its counter and log line)."""
    from .publisher import instrument_retries

    instrument_retries()


def start_tracing() -> None:
    """The tracer provider of `run`: its publish spans, and `traceparent` reaching the API."""
    from ts_runtime.telemetry import setup_tracing

    from .status import SERVICE

    setup_tracing(SERVICE)


def make_queue(settings: GatewaySettings) -> DurableQueue:
    """The write-ahead queue (unopened: the caller opens it, to report what recovery found)."""
    from .queue import DurableQueue

    return DurableQueue(settings.queue.path)


def make_cursors(settings: GatewaySettings) -> CursorStore:
    """The backfill cursors; the status file's copy is their last known position."""
    from .cursors import FILE_NAME, CursorStore
    from .status import last_known_cursors

    data_dir = settings.queue.data_dir
    return CursorStore(data_dir / FILE_NAME, recovery_limit=settings.telegram.backfill_recovery_limit,
                       last_known=lambda: last_known_cursors(data_dir))


def source_factory(settings: GatewaySettings) -> Callable[[], Source]:
    """What `run` listens to: GATEWAY_SOURCE=file:… (tests, demos) or Telegram. A factory, so
    that Telethon is created inside the event loop that runs it."""
    path = settings.file_source_path
    if path is not None:
        from .source.file_source import FileSource

        return lambda: FileSource(path, settings.queue.data_dir)
    from .source.telethon_source import TelethonSource

    return lambda: TelethonSource(settings.telegram)


@asynccontextmanager
async def delivery(settings: GatewaySettings, queue: DurableQueue, *, one_shot: bool,
                   on_progress: Callable[[int], None] | None = None) -> AsyncIterator[Drainer]:
    """The HTTP session, the publisher on it and the drainer over `queue`, for as long as the block
    runs (`drainer.publisher` is the publisher). `run` backs off on the configured schedule; the
    one-shot commands (import, replay, requeue) never wait."""
    from .drainer import Drainer
    from .publisher import Publisher, create_session

    publish = settings.publish
    if one_shot:
        initial = maximum = _ONE_SHOT_BACKOFF
    else:
        initial, maximum = publish.retry_delay_ms / 1000, publish.drain_backoff_max_seconds
    async with create_session(publish) as session:
        publisher = Publisher(publish, session)
        yield Drainer(queue, publisher, batch_size=publish.batch_size, backoff_initial=initial,
                      backoff_max=maximum, on_progress=on_progress)


def make_gateway(settings: GatewaySettings, source: Source, queue: DurableQueue, drainer: Drainer,
                 cursors: CursorStore) -> Gateway:
    from .service import Gateway

    return Gateway(source, queue, drainer.publisher, drainer, cursors,
                   backfill_interval=settings.telegram.backfill_interval_seconds)


async def start_http(settings: GatewaySettings, gateway: Gateway) -> web.AppRunner:
    """/healthz, /health, /ready, /logs, /metrics on GATEWAY_HOST:GATEWAY_PORT (OSError if taken)."""
    from .http import start_server

    return await start_server(gateway, settings.host, settings.port)
