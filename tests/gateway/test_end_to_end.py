"""End to end: `gateway run` (file source) and `gateway import` as processes, against the real ingest
API under granian on a loopback port and a real PostgreSQL database.

The file source is a JSONL of contract payloads (for tests and fault injection; it is not Telegram).
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from contracts import encode_payload
from tests.support import processes
from tests.support.db import fetch

from tests.support.gateway import GATEWAY, deleted, edited, new
from tests.support.processes import gateway_env

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "samples/tp-capital-export/result.json"
TOKEN = "e2e-gateway-token-0123456789abcdefghijklmnop"
CHANNEL = -1001649127710


def wait_until(condition: Callable[[], bool], timeout: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def messages(database_url: str) -> dict[int, tuple[str, bool, object]]:
    rows = fetch(database_url, "SELECT message_id, message_text, deleted_at, edit_date FROM tp_capital.forwarded_messages"
                               " WHERE channel_id = $1", CHANNEL)
    ids = [r["message_id"] for r in rows]
    assert len(ids) == len(set(ids)), "a message is stored twice"
    return {r["message_id"]: (r["message_text"], r["deleted_at"] is not None, r["edit_date"]) for r in rows}


@pytest.fixture
def api(database_url: str, tmp_path: Path) -> Iterator[tuple[processes.ManagedProcess, str]]:
    port = processes.free_port()
    process = processes.ingest_api(port, database_url, TOKEN, tmp_path / "ingest-api.log")
    process.start()
    try:
        yield process, f"http://127.0.0.1:{port}"
    finally:
        process.stop()


def append(path: Path, payloads) -> None:
    with open(path, "ab") as fh:
        fh.write(b"".join(encode_payload(p) + b"\n" for p in payloads))


def test_stream_with_api_outage_and_gateway_sigkill_arrives_exactly_once(api, database_url: str, tmp_path: Path) -> None:
    api_process, api_url = api
    workdir = tmp_path / "gateway"
    workdir.mkdir()
    events = tmp_path / "events.jsonl"
    events.touch()
    port = processes.free_port()
    gateway = processes.gateway(port, events, f"{api_url}/ingest", TOKEN, workdir, tmp_path / "gateway.log",
                                RETRY_DELAY_MS="100", MAX_RETRY_ATTEMPTS="2", API_TIMEOUT_SECONDS="2",
                                DRAIN_BACKOFF_MAX_SECONDS="1")
    gateway.start()
    health = lambda: processes.gateway_health(port) or {}  # noqa: E731
    try:
        # 1. Messages, an edit and a deletion.
        append(events, [new(i, f"message {i}") for i in range(1, 21)])
        append(events, [edited(3, "message 3, edited"), deleted(5)])
        wait_until(lambda: len(messages(database_url)) == 20 and health().get("queueDepth") == 0, what="first batch")
        stored = messages(database_url)
        assert stored[3][0] == "message 3, edited" and stored[3][2] is not None
        assert stored[5][1] is True and not stored[4][1]

        # 2. The API goes away for a while; messages keep coming and wait in the queue.
        api_process.stop()
        append(events, [new(i, f"message {i}") for i in range(21, 41)])
        wait_until(lambda: health().get("queueDepth", 0) >= 20 and health().get("lastError"), what="queueing")
        time.sleep(1.0)  # a few failed drain rounds
        assert len(messages(database_url)) == 20
        api_process.start()
        wait_until(lambda: health().get("queueDepth") == 0 and len(messages(database_url)) == 40, what="drain after outage")

        # 3. The gateway is SIGKILLed with work pending, then restarted.
        append(events, [new(i, f"message {i}") for i in range(41, 61)])
        gateway.kill()
        append(events, [new(i, f"message {i}") for i in range(61, 71)] + [edited(50, "message 50, edited")])
        gateway.start()
        wait_until(lambda: len(messages(database_url)) == 70 and health().get("queueDepth") == 0, what="after SIGKILL")
        stored = messages(database_url)
        assert stored[50][0] == "message 50, edited"
        assert {i for i, (text, *_ ) in stored.items()} == set(range(1, 71))
        assert all(text.startswith(f"message {i}") for i, (text, *_) in stored.items())
        # One revision per edit: nothing applied twice.
        revisions = fetch(database_url, "SELECT message_id, count(*) AS n FROM tp_capital.message_revisions"
                                        " WHERE channel_id = $1 AND revision_date > original_timestamp"
                                        " GROUP BY message_id", CHANNEL)
        assert {r["message_id"]: r["n"] for r in revisions} == {3: 1, 50: 1}
        assert health()["deadLetters"] == 0
    finally:
        gateway.stop()
    assert gateway.proc.returncode == 0  # SIGTERM: clean exit


def test_import_of_the_sample_export_twice_stores_once_and_signals_appear(api, database_url: str, tmp_path: Path) -> None:
    _, api_url = api

    def run_import() -> subprocess.CompletedProcess:
        return subprocess.run([GATEWAY, "import", str(SAMPLE)], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                              env=gateway_env(tmp_path, API_ENDPOINT=f"{api_url}/ingest", API_SECRET_TOKEN=TOKEN))

    first = run_import()
    assert first.returncode == 0, first.stdout + first.stderr
    assert "import: 20 stored, 0 already stored" in first.stdout
    rows = fetch(database_url, "SELECT count(*) AS n FROM tp_capital.forwarded_messages WHERE channel_id = $1", CHANNEL)
    signals_before = fetch(database_url, "SELECT id, asset FROM tp_capital.tp_capital_signals ORDER BY id")
    assert rows[0]["n"] == 20 and signals_before

    second = run_import()
    assert second.returncode == 0, second.stdout + second.stderr
    assert "import: 0 stored, 20 already stored" in second.stdout
    assert fetch(database_url, "SELECT count(*) AS n FROM tp_capital.forwarded_messages")[0]["n"] == 20
    assert fetch(database_url, "SELECT id, asset FROM tp_capital.tp_capital_signals ORDER BY id") == signals_before

    data = httpx.get(f"{api_url}/signals", params={"limit": 100}, timeout=10).json()["data"]
    assets = {row["asset"] for row in data}
    assert {"BOVAW32", "BOVAW14", "PETR4"} <= assets
    assert len(data) == len(signals_before)
    # The edited post's signal carries the text after the edit.
    bovaw14 = next(row for row in data if row["asset"] == "BOVAW14")
    assert "Alvo final: 2,50" in bovaw14["raw_message"]


def test_wrong_token_keeps_messages_queued_and_raises_the_alert(api, database_url: str, tmp_path: Path) -> None:
    _, api_url = api
    workdir = tmp_path / "gateway"
    workdir.mkdir()
    events = tmp_path / "events.jsonl"
    append(events, [new(1), new(2)])
    port = processes.free_port()
    gateway = processes.gateway(port, events, f"{api_url}/ingest", "not-the-token-" + "x" * 30, workdir,
                                tmp_path / "gateway.log", RETRY_DELAY_MS="100", DRAIN_BACKOFF_MAX_SECONDS="1")
    gateway.start()
    try:
        wait_until(lambda: "telegram_gateway_token_mismatch 1.0" in httpx.get(f"http://127.0.0.1:{port}/metrics").text,
                   what="token alert")
        assert processes.gateway_health(port)["queueDepth"] == 2
    finally:
        gateway.stop()
    assert fetch(database_url, "SELECT count(*) AS n FROM tp_capital.forwarded_messages")[0]["n"] == 0
    assert "not-the-token-xxxxxxxx" not in (tmp_path / "gateway.log").read_text()  # at most 8 characters logged


def test_gateway_and_api_spans_share_one_trace(database_url: str, tmp_path: Path) -> None:
    tracing = dict(OTEL_SDK_DISABLED="false", OTEL_TRACES_EXPORTER="console", OTEL_BSP_SCHEDULE_DELAY="50")
    api_port, port = processes.free_ports(2)
    api = processes.ingest_api(api_port, database_url, TOKEN, tmp_path / "ingest-api.log", **tracing)
    api.start()
    events = tmp_path / "events.jsonl"
    append(events, [new(1)])
    workdir = tmp_path / "gateway"
    workdir.mkdir()
    gateway = processes.gateway(port, events, f"http://127.0.0.1:{api_port}/ingest", TOKEN, workdir,
                                tmp_path / "gateway.log", **tracing)
    try:
        gateway.start()
        wait_until(lambda: (processes.gateway_health(port) or {}).get("lastPublishAt") is not None, what="publish")
        gateway.stop()
        wait_until(lambda: '"gateway.publish"' in (tmp_path / "gateway.log").read_text(), what="gateway span")
        log = (tmp_path / "gateway.log").read_text()
        trace_ids = set(re.findall(r'"trace_id": "0x([0-9a-f]{32})"', log))
        publish = log[log.index('"name": "gateway.publish"'):]
        publish_trace = re.search(r'"trace_id": "0x([0-9a-f]{32})"', publish).group(1)
        assert publish_trace in trace_ids
        wait_until(lambda: publish_trace in (tmp_path / "ingest-api.log").read_text(), timeout=20,
                   what="the API's span in the gateway's trace")
    finally:
        gateway.stop()
        api.stop()
