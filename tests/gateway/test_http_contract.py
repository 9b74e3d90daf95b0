"""The gateway's HTTP endpoints through its real aiohttp server: /healthz, /health with its
telegram/queue/api checks in the old shared format, /ready, /logs.

The gateway runs in-process (file source → queue → drainer → a scripted ingest API on loopback,
see conftest.py); each case puts it in one state and reads what the endpoints answer.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import pytest

from contracts import encode_payload
from gateway import metrics as gauges
from gateway.cursors import CursorStore
from gateway.drainer import Drainer
from gateway.http import start_server
from gateway.publisher import Publisher
from gateway.queue import DurableQueue
from gateway.service import Gateway
from gateway.source.file_source import FileSource
from ts_ops.embedded_pg import free_port

from tests.support.gateway import POISON, UNAUTHORIZED, UNAVAILABLE, new, record_line

ISO_MS = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$"
OLD_FORMAT = {"status", "service", "version", "timestamp", "uptime", "checks", "responseTime"}
OWN_FIELDS = {"uptimeSeconds", "source", "queueDepth", "deadLetters", "quarantinedLines", "lastPublishAt",
              "lastError", "retryBackoffSeconds", "cursors", "lastBackfillAt"}


async def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


class Running:
    def __init__(self, gateway: Gateway, url: str) -> None:
        self.gateway, self.url = gateway, url

    async def get(self, path: str, **params: str) -> tuple[int, dict]:
        async with aiohttp.ClientSession() as client:
            async with client.get(self.url + path, params=params) as response:
                return response.status, await response.json()


@pytest.fixture
async def gateway_http(tmp_path: Path, api, make_publisher) -> AsyncIterator[Callable]:
    """Start a gateway and its HTTP server; `start(run=True, **publisher overrides)`."""
    stops: list[Callable] = []

    async def start(run: bool = True, queue_lines: bytes = b"", **overrides) -> Running:
        """`queue_lines`: what the queue file holds before the gateway opens it."""
        events = tmp_path / "events.jsonl"
        events.write_bytes(encode_payload(new(1)) + b"\n")
        (tmp_path / "queue.jsonl").write_bytes(queue_lines)
        queue = DurableQueue(tmp_path / "queue.jsonl")
        queue.open()
        publisher: Publisher = await make_publisher(api.url, **overrides)
        drainer = Drainer(queue, publisher, batch_size=50, backoff_initial=0.5, backoff_max=1.0)
        gateway = Gateway(FileSource(events, tmp_path, poll_interval=0.01), queue, publisher, drainer,
                          CursorStore(tmp_path / "cursors.json"), backfill_interval=3600)
        port = free_port()
        runner = await start_server(gateway, "127.0.0.1", port)
        task = asyncio.create_task(gateway.run()) if run else None

        async def stop() -> None:
            gateway.stop()
            if task is not None:
                await asyncio.wait_for(task, 10)
            else:
                queue.close()
            await runner.cleanup()

        stops.append(stop)
        return Running(gateway, f"http://127.0.0.1:{port}")

    gauges.TOKEN_MISMATCH.set(0)  # a process-wide gauge: another test's value must not leak in
    yield start
    for stop in stops:
        await stop()
    gauges.TOKEN_MISMATCH.set(0)


async def test_healthz_is_the_old_liveness_answer(gateway_http) -> None:
    running = await gateway_http(run=False)  # not even connected: liveness is still 200
    status, body = await running.get("/healthz")
    assert status == 200
    assert set(body) == {"status", "service", "uptime"}
    assert (body["status"], body["service"]) == ("healthy", "telegram-gateway") and body["uptime"] >= 0


async def test_health_while_the_source_is_not_connected_is_503(gateway_http) -> None:
    running = await gateway_http(run=False)
    status, body = await running.get("/health")
    assert status == 503
    assert OLD_FORMAT | OWN_FIELDS <= set(body)
    assert body["status"] == "unhealthy" and body["service"] == "telegram-gateway"
    assert list(body["checks"]) == ["telegram", "queue", "api"]
    assert body["checks"]["telegram"]["status"] == "unhealthy"
    assert "not connected yet" in body["checks"]["telegram"]["message"]
    assert (await running.get("/ready"))[0] == 503


async def test_health_and_the_status_file_show_the_same_gateway_status(gateway_http, tmp_path: Path) -> None:
    """One GatewayStatus: /health's own fields are what `run` writes to gateway-status.json, and
    `gateway status` reads that file back (keys written by another version are ignored)."""
    import msgspec

    from gateway.status import GatewayStatus, read_status, running_status, status_path, write_status

    running = await gateway_http()
    await wait_for(lambda: running.gateway.queue.depth == 0 and running.gateway.publisher.last_publish_at)
    _, body = await running.get("/health")
    fields = {field.encode_name for field in msgspec.structs.fields(GatewayStatus)}
    assert fields <= set(body) and OWN_FIELDS <= fields
    assert body["command"] == "run" and body["running"] is True and body["queueDepth"] == 0
    assert body["source"] == {"kind": "file", "connected": True} and body["telegram"] is None
    path = status_path(tmp_path)
    write_status(path, running_status(running.gateway))
    written = read_status(path)
    assert written is not None and written.last_publish_at == body["lastPublishAt"]
    assert written.queue_path == body["queuePath"] and written.cursor_file == body["cursorFile"]
    path.write_bytes(msgspec.json.encode({"command": "replay", "setAside": 2, "futureField": [1]}))
    assert read_status(path) == GatewayStatus(command="replay")


# (what the scripted API answers, the check that changes, its status, a phrase of its message, /health status)
STATES = [
    ("ok", "api", "healthy", "last delivery", 200),
    (UNAVAILABLE, "api", "degraded", "unreachable, next try in", 200),
    (UNAUTHORIZED, "api", "degraded", "the API answers 401", 200),
]


@pytest.mark.parametrize(("answer", "check", "status", "phrase", "http_status"), STATES,
                         ids=[s[0] for s in STATES])
async def test_health_checks_follow_the_api(gateway_http, api, answer: str, check: str, status: str, phrase: str,
                                            http_status: int) -> None:
    api.default = answer
    running = await gateway_http(max_retry_attempts=0)
    await wait_for(lambda: len(api.requests) >= 1)
    if answer != "ok":
        await wait_for(lambda: running.gateway.drainer.backoff > 0)
    else:
        await wait_for(lambda: running.gateway.publisher.last_publish_at is not None)
    code, body = await running.get("/health")
    assert code == http_status
    result = body["checks"][check]
    assert set(result) == {"status", "message", "responseTime"}
    assert result["status"] == status and phrase in result["message"], result
    assert body["status"] == status  # the other checks are healthy
    assert body["checks"]["telegram"]["status"] == "healthy"
    assert body["checks"]["telegram"]["message"] == "file source (not Telegram) connected"
    if answer == "ok":
        # What the APIs now require of every write (415 otherwise).
        assert api.requests[0].headers["Content-Type"] == "application/json"
        assert re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", result["message"])
        assert body["checks"]["queue"]["message"] == "0 queued, 0 dead letter(s), 0 quarantined line(s)"
        assert body["quarantinedLines"] == 0


async def test_dead_letters_make_the_queue_check_degraded(gateway_http, api) -> None:
    api.default = "400"  # the API refuses the record: it goes to the dead-letter file
    running = await gateway_http(max_retry_attempts=0)
    await wait_for(lambda: running.gateway.queue.dead_letters == 1)
    code, body = await running.get("/health")
    assert code == 200 and body["status"] == "degraded"
    assert body["checks"]["queue"]["status"] == "degraded" and "1 dead letter" in body["checks"]["queue"]["message"]
    assert body["deadLetters"] == 1  # the gateway's own field says the same


async def test_quarantined_lines_make_the_queue_check_degraded_until_the_file_is_moved_away(gateway_http, api) -> None:
    kept = record_line(1, "k1", encode_payload(new(7)))
    running = await gateway_http(queue_lines=kept + POISON["nested line"] + POISON["binary garbage"])
    await wait_for(lambda: len(api.stored) == 2)  # the good record and the file source's event
    code, body = await running.get("/health")
    assert code == 200 and body["status"] == "degraded"
    assert body["quarantinedLines"] == 2 and body["queueDepth"] == 0 and body["deadLetters"] == 0
    queue_check = body["checks"]["queue"]
    assert queue_check["status"] == "degraded"
    assert queue_check["message"].startswith("0 queued, 0 dead letter(s), 2 quarantined line(s) (quarantined lines")
    assert "queue.quarantine.jsonl" in queue_check["message"] and "drain-queue.md" in queue_check["message"]
    async with aiohttp.ClientSession() as client:
        async with client.get(running.url + "/metrics") as response:
            assert "\ntelegram_queue_quarantined_lines 2.0\n" in await response.text()

    # The operator looked at the lines (docs/runbooks/drain-queue.md) and moved the file away:
    # /health and the gauge follow without a restart.
    quarantine = running.gateway.queue.files.quarantine
    quarantine.rename(quarantine.with_name(quarantine.name + ".reviewed"))
    code, body = await running.get("/health")
    assert (code, body["status"], body["quarantinedLines"]) == (200, "healthy", 0)
    assert body["checks"]["queue"] == {**body["checks"]["queue"], "status": "healthy",
                                       "message": "0 queued, 0 dead letter(s), 0 quarantined line(s)"}
    async with aiohttp.ClientSession() as client:
        async with client.get(running.url + "/metrics") as response:
            assert "\ntelegram_queue_quarantined_lines 0.0\n" in await response.text()


async def test_gateway_logs(gateway_http) -> None:
    from ts_runtime.logs import history

    running = await gateway_http(run=False)
    root = logging.getLogger()
    # `gateway run` attaches the history to the root logger (ts_runtime.logs.setup_logging); pytest
    # owns the root logger here, so the test attaches it for its own duration.
    attached, level = history not in root.handlers, root.level
    if attached:
        root.addHandler(history)
    root.setLevel(logging.INFO)
    try:
        logging.getLogger("gateway.test").warning("a warning for /logs")
        status, body = await running.get("/logs", level="warn", limit="1")
    finally:
        root.setLevel(level)
        if attached:
            root.removeHandler(history)
    assert status == 200
    (entry,) = body["data"]
    assert set(entry) == {"timestamp", "level", "message", "context"}
    assert entry["message"] == "a warning for /logs" and entry["level"] == "warn"
    assert re.fullmatch(ISO_MS, entry["timestamp"]) and entry["context"]["logger"] == "gateway.test"
    for params, field in (({"level": "loud"}, "level"), ({"limit": "none"}, "limit")):
        status, body = await running.get("/logs", **params)
        assert status == 400 and body["error"] == f"{field} is invalid" and body["details"][0].startswith(field)
