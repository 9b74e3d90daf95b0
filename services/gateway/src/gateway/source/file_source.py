"""A source that follows a JSONL file of contract payloads (`GATEWAY_SOURCE=file:/path/events.jsonl`).

For tests, the fault-injection harness and demos: it is not Telegram. Each line is one payload as
`contracts.encode_payload` writes it (kind new/edited/deleted). Only complete lines (ending in a
newline) are read. The read offset is persisted (temp + fsync + rename) only after the events
read are in the durable queue, so a SIGKILL at any moment loses nothing: at worst the last lines
are queued again and the API deduplicates them.

A line that is not a valid payload is still queued (under a key naming its offset): the API
refuses it with its reason and it lands in the dead-letter file instead of vanishing.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Annotated

import msgspec

from contracts import decode_payload, idempotency_key

from .. import metrics
from . import HistoryPage, SourceBatch

log = logging.getLogger(__name__)


# What decoding a stranger's line can raise: msgspec's errors, RecursionError (deep nesting),
# UnicodeDecodeError (a ValueError: invalid UTF-8).
_UNDECODABLE = (msgspec.DecodeError, msgspec.ValidationError, RecursionError, ValueError)


def _is_json(line: bytes) -> bool:
    try:
        msgspec.json.decode(line)
    except _UNDECODABLE:
        return False
    return True


class _Offset(msgspec.Struct):
    path: str
    # A negative offset cannot be sought to: it is as unreadable as a cut-off file.
    offset: Annotated[int, msgspec.Meta(ge=0)]


class FileSource:
    kind = "file"

    def __init__(self, path: Path, state_dir: Path, *, poll_interval: float = 0.02, max_lines: int = 1000) -> None:
        self.path = Path(path)
        self.offset_file = Path(state_dir) / "file-source.offset"
        self.poll_interval = poll_interval
        self.max_lines = max_lines
        self.offset = 0
        self._connected = False
        self._closed = asyncio.Event()

    @property
    def connected(self) -> bool:
        return self._connected

    async def connect(self) -> None:
        self.offset = self._load_offset()
        self._connected = True
        metrics.CONNECTION_STATUS.set(1)
        log.info("following %s from byte %d (file source: not Telegram)", self.path, self.offset)

    async def close(self) -> None:
        self._connected = False
        metrics.CONNECTION_STATUS.set(0)
        self._closed.set()

    def _load_offset(self) -> int:
        try:
            saved = msgspec.json.decode(self.offset_file.read_bytes(), type=_Offset)
        except FileNotFoundError:
            return 0
        except (*_UNDECODABLE, OSError) as exc:
            # Starting over only re-sends what the API already has (it deduplicates).
            log.warning("unreadable %s (%s): reading %s from the start", self.offset_file, exc, self.path)
            return 0
        if saved.path != str(self.path.resolve()):
            log.info("%s held the offset of another file (%s): starting at 0", self.offset_file, saved.path)
            return 0
        return saved.offset

    async def commit(self, checkpoint: int) -> None:
        self.offset_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.offset_file.with_name(self.offset_file.name + ".tmp")
        with open(tmp, "wb") as fh:
            fh.write(msgspec.json.encode(_Offset(str(self.path.resolve()), checkpoint)))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.offset_file)

    def _read(self) -> SourceBatch | None:
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return None
        if size < self.offset:
            log.warning("%s shrank below the saved offset (%d < %d): reading it again from the start",
                        self.path, size, self.offset)
            self.offset = 0
        if size == self.offset:
            return None
        with open(self.path, "rb") as fh:
            fh.seek(self.offset)
            data = fh.read(min(size - self.offset, 4 * 1024 * 1024))
        end = data.rfind(b"\n")
        if end < 0:
            return None  # a line is being written: wait for its newline
        lines = data[: end + 1].split(b"\n")[:-1]
        if len(lines) > self.max_lines:
            lines = lines[: self.max_lines]
            end = sum(len(line) + 1 for line in lines) - 1
        batch = SourceBatch(items=[])
        position = self.offset
        for line in lines:
            start = position
            position += len(line) + 1
            if not line.strip():
                continue
            try:
                payload = decode_payload(line)
            except _UNDECODABLE as exc:
                log.error("%s byte %d: not a valid payload (%s: %s); queued so the API's answer dead-letters it",
                          self.path, start, type(exc).__name__, exc)
                if not _is_json(line):
                    # Not JSON (or JSON no decoder reads back: bad UTF-8, deep nesting): queue it
                    # as a JSON string, so the queue line, the batch body and the dead letter stay
                    # valid, readable JSON around it.
                    line = msgspec.json.encode(line.decode("utf-8", "backslashreplace"))
                batch.items.append((f"file:{self.path.name}:{start}", line))
                continue
            metrics.MESSAGES_RECEIVED.labels(channel_id=str(payload.channel_id)).inc()
            batch.items.append((str(idempotency_key(payload)), line))
        self.offset = position
        batch.checkpoint = position
        return batch

    async def events(self) -> AsyncIterator[SourceBatch]:
        while not self._closed.is_set():
            batch = self._read()
            if batch is None:
                try:
                    await asyncio.wait_for(self._closed.wait(), self.poll_interval)
                except asyncio.TimeoutError:
                    pass
                continue
            yield batch

    def channels(self) -> list[int]:
        return []

    async def history(self, channel_id: int, min_id: int | None, *,
                      depth: int | None = None) -> AsyncIterator[HistoryPage]:
        # The file has no history beyond its own lines; the offset covers restarts.
        return
        yield  # pragma: no cover

    def on_reconnect(self, callback: Callable[[], None]) -> None:
        pass
