"""The gateway in-process: file source → queue → drainer → scripted API; backfill; HTTP endpoints."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import aiohttp
import pytest

from contracts import MessagePayload, encode_payload, idempotency_key
from gateway import metrics as gauges
from gateway.cursors import CursorStore
from gateway.http import start_server
from gateway.queue import DurableQueue
from gateway.source import HistoryPage, SourceBatch
from gateway.source.file_source import FileSource
from ts_ops.embedded_pg import free_port

from tests.support.gateway import TIMEOUT, UNAVAILABLE, build, deleted, edited, new, wait_for


async def test_file_source_events_reach_the_api_and_the_offset_follows(tmp_path, api, make_publisher) -> None:
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"".join(encode_payload(p) + b"\n" for p in (new(1, "a"), edited(1, "b"), deleted(1))))
    source = FileSource(events, tmp_path, poll_interval=0.01)
    gateway = build(tmp_path, source, await make_publisher(api.url))
    run = asyncio.create_task(gateway.run())
    await wait_for(lambda: len(api.stored) == 3)
    with open(events, "ab") as fh:  # a line being written is not read before its newline
        line = encode_payload(new(2, "c"))
        fh.write(line[:10])
        fh.flush()
        await asyncio.sleep(0.1)
        assert len(api.stored) == 3
        fh.write(line[10:] + b"\n")
    await wait_for(lambda: len(api.stored) == 4)
    gateway.stop()
    assert await asyncio.wait_for(run, 10) == 0
    assert sorted(api.stored.values()) == [1, 1, 1, 1]
    assert source.offset == events.stat().st_size
    assert b'"offset":%d' % events.stat().st_size in (tmp_path / "file-source.offset").read_bytes()


async def test_a_line_that_is_not_json_ends_in_the_dead_letter_file(tmp_path, api, make_publisher) -> None:
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"this is not json\n" + encode_payload(new(1)) + b"\n")
    gateway = build(tmp_path, FileSource(events, tmp_path, poll_interval=0.01), await make_publisher(api.url))
    run = asyncio.create_task(gateway.run())
    await wait_for(lambda: gateway.queue.dead_letters == 1 and len(api.stored) == 1)
    gateway.stop()
    await asyncio.wait_for(run, 10)
    assert b"this is not json" in gateway.queue.files.dead_letter.read_bytes()


async def test_sigterm_path_waits_for_the_request_on_the_wire_not_for_retry_sleeps(tmp_path, api, make_publisher) -> None:
    api.default = UNAVAILABLE
    events = tmp_path / "events.jsonl"
    events.write_bytes(encode_payload(new(1)) + b"\n")
    # A long retry schedule: stopping must not wait for it.
    publisher = await make_publisher(api.url, retry_delay_ms=60_000, max_retry_attempts=3)
    gateway = build(tmp_path, FileSource(events, tmp_path, poll_interval=0.01), publisher)
    run = asyncio.create_task(gateway.run())
    await wait_for(lambda: len(api.requests) == 1)
    started = asyncio.get_running_loop().time()
    gateway.stop()
    assert await asyncio.wait_for(run, 5) == 0
    assert asyncio.get_running_loop().time() - started < 1.0
    again = DurableQueue(tmp_path / "queue.jsonl")
    assert again.open().pending == 1  # flushed and still there for the next start
    again.close()


class HistorySource:
    """A Source with channel history (a test double of the protocol; not Telegram)."""

    kind = "test-history"

    def __init__(self, history: dict[int, list[MessagePayload]]) -> None:
        self.history_by_channel = history
        self.live: asyncio.Queue[SourceBatch] = asyncio.Queue()
        self.requests: list[tuple[int, int | None]] = []
        self._reconnect: Callable[[], None] | None = None
        self._connected = False

    @property
    def connected(self) -> bool:
        return self._connected

    async def connect(self) -> None:
        self._connected = True

    async def close(self) -> None:
        self._connected = False
        self.live.put_nowait(None)

    async def events(self) -> AsyncIterator[SourceBatch]:
        while (batch := await self.live.get()) is not None:
            yield batch

    async def commit(self, checkpoint) -> None:
        pass

    def channels(self) -> list[int]:
        return list(self.history_by_channel)

    async def history(self, channel_id: int, min_id: int | None, *,
                      depth: int | None = None) -> AsyncIterator[HistoryPage]:
        self.requests.append((channel_id, min_id))
        messages = [p for p in self.history_by_channel[channel_id] if p.message_id > (min_id or 0)]
        for start in range(0, len(messages), 2):
            page = messages[start:start + 2]
            yield HistoryPage(channel_id, page, page[-1].message_id)

    def on_reconnect(self, callback: Callable[[], None]) -> None:
        self._reconnect = callback

    def reconnected(self) -> None:
        assert self._reconnect is not None
        self._reconnect()


async def test_backfill_at_start_and_after_reconnect_moves_the_cursor(tmp_path, api, make_publisher) -> None:
    channel = -1001649127710
    source = HistorySource({channel: [new(i) for i in (1, 2, 3)]})
    gateway = build(tmp_path, source, await make_publisher(api.url))
    run = asyncio.create_task(gateway.run())
    await wait_for(lambda: len(api.stored) == 3)
    assert source.requests == [(channel, None)]
    assert gateway.cursors.get(channel) == 3
    # A live message arrives, then the connection drops; the gap (4, 5) is found by backfill.
    live = new(6)
    await source.live.put(SourceBatch(items=[(str(idempotency_key(live)), encode_payload(live))]))
    await wait_for(lambda: len(api.stored) == 4)
    source.history_by_channel[channel] += [new(4), new(5), live]
    source.reconnected()
    await wait_for(lambda: len(api.stored) == 6)
    assert source.requests[-1] == (channel, 3)
    assert gateway.cursors.get(channel) == 6
    # The live message was remembered: backfill did not queue it again.
    assert len([r for r in api.requests if f"{channel}:6" in r.keys]) == 1
    gateway.stop()
    await asyncio.wait_for(run, 10)
    assert CursorStore(tmp_path / "cursors.json").load() == {channel: 6}


async def test_stop_still_queues_the_events_the_source_already_received(tmp_path, api, make_publisher) -> None:
    api.default = UNAVAILABLE
    source = HistorySource({})
    gateway = build(tmp_path, source, await make_publisher(api.url, max_retry_attempts=0))
    run = asyncio.create_task(gateway.run())
    await wait_for(lambda: gateway.state.ready)
    payloads = [new(i) for i in range(1, 6)]
    for payload in payloads:  # received, not yet handed over...
        source.live.put_nowait(SourceBatch(items=[(str(idempotency_key(payload)), encode_payload(payload))]))
    gateway.stop()  # ...when SIGTERM arrives
    assert await asyncio.wait_for(run, 10) == 0
    queue = DurableQueue(tmp_path / "queue.jsonl")
    queue.open()
    assert sorted(r.key for r in queue.pending()) == sorted(str(idempotency_key(p)) for p in payloads)
    queue.close()


async def test_health_ready_and_metrics(tmp_path, api, make_publisher) -> None:
    events = tmp_path / "events.jsonl"
    events.write_bytes(encode_payload(new(1)) + b"\n")
    gateway = build(tmp_path, FileSource(events, tmp_path, poll_interval=0.01), await make_publisher(api.url))
    port = free_port()
    runner = await start_server(gateway, "127.0.0.1", port)
    url = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession() as client:
        async with client.get(url + "/ready") as response:
            assert response.status == 503  # not connected yet
        run = asyncio.create_task(gateway.run())
        await wait_for(lambda: len(api.stored) == 1)
        async with client.get(url + "/health") as response:
            health = await response.json()
            assert response.status == 200
        async with client.get(url + "/ready") as response:
            assert response.status == 200 and (await response.json())["ready"] is True
        async with client.get(url + "/metrics") as response:
            metrics = await response.text()
    gateway.stop()
    await asyncio.wait_for(run, 10)
    await runner.cleanup()
    assert health["status"] == "healthy" and health["queueDepth"] == 0
    assert health["source"] == {"kind": "file", "connected": True}
    assert health["lastPublishAt"] is not None and health["deadLetters"] == 0
    for name in ("telegram_connection_status", "telegram_messages_received_total", "telegram_messages_published_total",
                 "telegram_failure_queue_size", "telegram_dead_letter_size", "telegram_gateway_token_mismatch"):
        assert f"\n{name}" in metrics, name
    assert 'telegram_messages_received_total{channel_id="-1001649127710"}' in metrics


async def test_metrics_after_a_restart_count_what_is_already_on_disk(tmp_path, api, make_publisher) -> None:
    # A previous run left one dead letter and one record still queued.
    queue = DurableQueue(tmp_path / "queue.jsonl")
    queue.open()
    refused, _ = queue.append([new(1), new(2)])
    queue.dead_letter([(refused, "Validation failed", ["text must be a string"], 400)])
    queue.close()
    # A new process: its gauges start at 0 (this one's may hold another test's values).
    gauges.QUEUE_SIZE.set(0)
    gauges.DEAD_LETTERS.set(0)
    # The API holds the first publish, so no answer has been settled while /metrics is read.
    api.then(TIMEOUT)
    api.timeout_sleep = 5.0
    publisher = await make_publisher(api.url, timeout_seconds=1.0, max_retry_attempts=0)
    gateway = build(tmp_path, HistorySource({}), publisher)
    port = free_port()
    runner = await start_server(gateway, "127.0.0.1", port)
    run = asyncio.create_task(gateway.run())
    try:
        await wait_for(lambda: len(api.requests) == 1)
        async with aiohttp.ClientSession() as client:
            async with client.get(f"http://127.0.0.1:{port}/health") as response:
                health = await response.json()
            async with client.get(f"http://127.0.0.1:{port}/metrics") as response:
                metrics = await response.text()
    finally:
        gateway.stop()
        await asyncio.wait_for(run, 10)
        await runner.cleanup()
    assert (health["deadLetters"], health["queueDepth"]) == (1, 1)
    # What the dead-letter alert (infra/prometheus/alerts.yml) reads must agree with /health.
    assert "\ntelegram_dead_letter_size 1.0\n" in metrics
    assert "\ntelegram_failure_queue_size 1.0\n" in metrics


@pytest.mark.parametrize("exit_code", [1, 2])
async def test_a_failing_source_stops_the_gateway_with_its_exit_status(tmp_path, api, make_publisher, exit_code) -> None:
    from gateway.session import SessionError

    class Broken(HistorySource):
        async def connect(self) -> None:
            # A revoked session cannot be fixed by a restart (2); anything else may be (1).
            raise SessionError("session revoked") if exit_code == 2 else RuntimeError("session revoked")

    gateway = build(tmp_path, Broken({}), await make_publisher(api.url))
    assert await asyncio.wait_for(gateway.run(), 10) == exit_code
    assert "session revoked" in gateway.state.last_error
