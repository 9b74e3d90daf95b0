"""Where message events come from, behind one small interface.

- `TelethonSource` (`GATEWAY_SOURCE=telegram`, the default): a Telethon user client on the
  channels in TELEGRAM_CHANNELS, with history backfill.
- `FileSource` (`GATEWAY_SOURCE=file:/path/events.jsonl`): follows a JSONL file of contract payloads
  like `tail -f`. It is for tests, fault injection and demos; it is not Telegram.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from contracts import MessagePayload


@dataclass
class SourceBatch:
    """Events read together. `checkpoint` (if any) is handed back to `commit()` once the events
    are in the durable queue: the source may only move its own position after that (outbox rule)."""

    items: list[tuple[str, bytes]]  # (idempotency key, encoded payload)
    checkpoint: Any = None


@dataclass
class HistoryPage:
    """Backfilled messages of one channel, and the highest message id the page covered
    (service messages that produce no payload still move the cursor)."""

    channel_id: int
    payloads: list[MessagePayload]
    last_id: int


class Source(Protocol):
    kind: str

    @property
    def connected(self) -> bool: ...

    async def connect(self) -> None: ...

    async def close(self) -> None: ...

    def events(self) -> AsyncIterator[SourceBatch]:
        """Live events, for ever (until `close()`)."""
        ...

    async def commit(self, checkpoint: Any) -> None:
        """The events up to `checkpoint` are safely queued."""
        ...

    def channels(self) -> list[int]:
        """Channels that support backfill (empty for sources without history)."""
        ...

    def history(self, channel_id: int, min_id: int | None, *, depth: int | None = None) -> AsyncIterator[HistoryPage]:
        """Messages with id > min_id, oldest first. min_id None: the channel's newest `depth`
        messages (None: the source's default, BACKFILL_INITIAL_LIMIT)."""
        ...

    def on_reconnect(self, callback: Callable[[], None]) -> None:
        """Call `callback` after the connection came back (the gateway backfills then)."""
        ...
