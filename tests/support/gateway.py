"""Gateway test helpers: payloads, a scripted ingest API on a loopback port, settings, queue lines.

`ScriptedAPI` is a real aiohttp server speaking the ingest API's HTTP contract (same status codes
and bodies, stored/duplicate by idempotency key); each request takes the next scripted action, so
tests choose exactly which answers the gateway gets. The real API is used in
tests/gateway/test_end_to_end.py. The fixtures built on these are in tests/gateway/conftest.py.
"""

from __future__ import annotations

import asyncio
import itertools
import sys
import zlib
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import msgspec
from aiohttp import web

from contracts import (BatchResult, DeletedMessage, EditedMessage, IngestResult, NewMessage, decode_batch,
                       decode_payload, encode, idempotency_key)
from gateway.cursors import CursorStore
from gateway.drainer import Drainer
from gateway.publisher import Publisher
from gateway.queue import DurableQueue, QueueRecord, record_crc
from gateway.service import Gateway
from gateway.settings import PublishSettings
from ts_ops.embedded_pg import free_port

BASE = datetime(2025, 11, 3, 13, 0, tzinfo=timezone.utc)
CHANNEL = -1001649127710
_ids = itertools.count(1)


def new(message_id: int | None = None, text: str = "hello", channel: int = CHANNEL) -> NewMessage:
    message_id = message_id or next(_ids)
    return NewMessage(channel_id=str(channel), message_id=message_id,
                      timestamp=BASE + timedelta(seconds=message_id), text=text)


def edited(message_id: int, text: str, minutes: int = 1, channel: int = CHANNEL) -> EditedMessage:
    return EditedMessage(channel_id=str(channel), message_id=message_id, timestamp=BASE + timedelta(seconds=message_id),
                         edit_date=BASE + timedelta(seconds=message_id, minutes=minutes), text=text)


def deleted(message_id: int, channel: int = CHANNEL) -> DeletedMessage:
    return DeletedMessage(channel_id=str(channel), message_id=message_id, timestamp=BASE + timedelta(seconds=message_id))


# Actions a scripted API can take for one request.
OK = "ok"  # store (or duplicate) every message, like the real API
UNAVAILABLE = "503"
TOO_MANY = "429"
TIMEOUT = "timeout"  # store, but answer only after the client gave up
BAD_REQUEST = "400"
UNAUTHORIZED = "401"
REJECT = "reject"  # 200 with status "rejected" per message


@dataclass
class Received:
    path: str
    keys: list[str]
    headers: dict[str, str]
    at: float
    raws: list[bytes] = field(default_factory=list)  # the payloads as sent


@dataclass
class ScriptedAPI:
    url: str = ""
    script: deque = field(default_factory=deque)
    requests: list[Received] = field(default_factory=list)
    stored: Counter = field(default_factory=Counter)  # key -> times stored (must never exceed 1)
    answered: Counter = field(default_factory=Counter)  # key -> acknowledgements sent
    default: str = OK
    timeout_sleep: float = 1.0
    # The `error` text of the 503 answers (an API may quote what it was sent there).
    unavailable_error: str = "Database connection failed"
    # Called with each request as it arrives, before it is answered (e.g. to look at the gateway's
    # files at that moment). It should record problems, not raise: an exception here becomes a
    # 500 answer, which the gateway simply retries.
    on_request: Callable[[Received], None] | None = None

    def then(self, *actions: str) -> "ScriptedAPI":
        self.script.extend(actions)
        return self

    def _store(self, raw: bytes) -> IngestResult:
        payload = decode_payload(raw)
        key = str(idempotency_key(payload))
        if self.stored[key]:
            return IngestResult.duplicate(payload.message_id)
        self.stored[key] += 1
        return IngestResult.stored_(payload.message_id)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        batch = request.path.endswith("/batch")
        raws = [bytes(m) for m in decode_batch(body).messages] if batch else [body]
        keys = []
        for raw in raws:
            try:
                keys.append(str(idempotency_key(decode_payload(raw))))
            except msgspec.DecodeError:
                keys.append("<invalid>")
        received = Received(request.path, keys, dict(request.headers), asyncio.get_running_loop().time(), raws)
        self.requests.append(received)
        if self.on_request is not None:
            self.on_request(received)
        action = self.script.popleft() if self.script else self.default
        if action == UNAVAILABLE:
            return web.json_response({"error": self.unavailable_error}, status=503)
        if action == TOO_MANY:
            return web.json_response({"error": "Too many requests"}, status=429)
        if action == BAD_REQUEST:
            return web.json_response({"error": "Validation failed", "details": ["text must be a string"]}, status=400)
        if action == UNAUTHORIZED:
            return web.json_response({"error": "Invalid gateway token"}, status=401)
        valid = []
        for raw in raws:
            try:
                decode_payload(raw)
                valid.append(True)
            except msgspec.DecodeError:
                valid.append(False)
        if action == REJECT or not all(valid) and not batch:
            results = [IngestResult.rejected(["messageId is required"]) for _ in raws]
        else:
            results = [self._store(raw) if ok else IngestResult.rejected(["not a payload"]) for raw, ok in zip(raws, valid)]
        if action == TIMEOUT:
            await asyncio.sleep(self.timeout_sleep)
            return web.json_response({"error": "too late"}, status=503)
        for key, result in zip(keys, results):
            if result.acknowledged:
                self.answered[key] += 1
        if batch:
            answer = BatchResult(results=results, stored=sum(r.status == "stored" for r in results),
                                 duplicates=sum(r.status == "duplicate" for r in results))
        else:
            answer = results[0]
        if not batch and results[0].status == "rejected":
            return web.Response(body=encode({"error": "Validation failed", "details": results[0].details}),
                                status=400, content_type="application/json")
        return web.Response(body=encode(answer), content_type="application/json")


async def start_api(api: ScriptedAPI) -> web.AppRunner:
    app = web.Application()
    app.router.add_post("/ingest", api.handle)
    app.router.add_post("/ingest/batch", api.handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    api.url = f"http://127.0.0.1:{port}"
    return runner


def publish_settings(url: str, **overrides) -> PublishSettings:
    values = dict(endpoint=f"{url}/ingest", token="t" * 40, timeout_seconds=0.5, max_retry_attempts=3,
                  retry_delay_ms=10, batch_size=50)
    values.update(overrides)
    return PublishSettings(**values)



# -- the gateway in-process -----------------------------------------------------------------------


async def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


def build(tmp_path: Path, source, publisher: Publisher) -> Gateway:
    queue = DurableQueue(tmp_path / "queue.jsonl")
    queue.open()
    drainer = Drainer(queue, publisher, batch_size=50, backoff_initial=0.05, backoff_max=0.1)
    return Gateway(source, queue, publisher, drainer, CursorStore(tmp_path / "cursors.json"), backfill_interval=3600)



# -- queue files as a crash or damage leaves them ---------------------------------------------------


def crash(queue: DurableQueue) -> None:
    """What a SIGKILL leaves: the files as written so far, no compaction, the lock released."""
    for fh in (queue._queue_fh, queue._ack_fh, queue._lock_fh):
        if fh is not None:
            fh.close()
    queue._queue_fh = queue._ack_fh = queue._lock_fh = None
    queue._close_reader()


DEEP = 5_000  # far past msgspec's nesting limit (~1,000): decoding it raises RecursionError


def record_line(seq: int, key: str, payload: bytes, *, crc: int | None = None) -> bytes:
    """A queue line exactly as the writer lays it out, with a correct checksum unless told otherwise."""
    line = msgspec.json.encode(QueueRecord(seq=seq, key=key, payload=msgspec.Raw(payload), queued_at=1.0,
                                           crc=record_crc(seq, key, payload) if crc is None else crc))
    return line + b"\n"


# Lines no decoder can read, each with a checksum that matches (the worst case: only decoding can
# tell) or does not (the raw-bytes check must catch it before any parser recurses).
POISON = {
    "nested payload, checksum right": record_line(90, "k90", b"[" * DEEP + b"]" * DEEP),
    "nested payload, checksum wrong": record_line(91, "k91", b"[" * DEEP + b"]" * DEEP, crc=1),
    "nested line": b"[" * DEEP + b"]" * DEEP + b"\n",
    "nested object in the payload": record_line(92, "k92", b'{"a":' * DEEP + b"1" + b"}" * DEEP),
    "invalid UTF-8 in the key, checksum right":
        b'{"seq":93,"key":"k\xff","payload":{},"queuedAt":1.0,"crc":%d}\n' % zlib.crc32(b"{}", zlib.crc32(b"93|k\xff|")),
    "invalid UTF-8 in the payload, checksum right": record_line(94, "k94", b'{"text":"\xc3\x28"}'),
    "binary garbage": b"\x00\xff\xfe{\"seq\":\n",
    "seq beyond 64 bits": record_line(95, "k95", b"{}").replace(b'"seq":95', b'"seq":99999999999999999999'),
}


# -- the `gateway` console script as a subprocess ------------------------------------------------

GATEWAY = str(Path(sys.executable).parent / "gateway")
