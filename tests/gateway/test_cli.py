"""The `gateway` console script: configuration errors, Telegram preflight, status, replay, import,
SIGTERM and systemd notifications, each as a real subprocess."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from contracts import decode_payload, encode_payload
from gateway.cursors import CursorStore
from gateway.queue import DurableQueue, record_crc
from gateway.status import GatewayStatus, status_path, write_status
from ts_ops.embedded_pg import free_port

from tests.support.gateway import GATEWAY, POISON, UNAVAILABLE, edited, new, record_line
from tests.support.processes import gateway_env

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "samples/tp-capital-export/result.json"


def run_cli(workdir: Path, *args: str, timeout: float = 60, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([GATEWAY, *args], env=gateway_env(workdir, **env), cwd=workdir, capture_output=True,
                          text=True, timeout=timeout)


@pytest.mark.parametrize(("env", "message"), [
    ({"GATEWAY_PORT": "abc"}, "gateway: GATEWAY_PORT must be an integer, got 'abc'"),
    ({"API_ENDPOINT": "localhost:4005/ingest"}, "gateway: API_ENDPOINT must be an http(s) URL"),
    ({"GATEWAY_SOURCE": "kafka"}, "gateway: GATEWAY_SOURCE must be `telegram` or `file:/path/events.jsonl`"),
    ({"TELEGRAM_API_ID": "12ab"}, "gateway: TELEGRAM_API_ID must be a number"),
    ({"PUBLISH_BATCH_SIZE": "5000"}, "gateway: PUBLISH_BATCH_SIZE must be between 1 and 1000"),
])
def test_configuration_errors_are_one_line_and_exit_2(tmp_path: Path, env: dict, message: str) -> None:
    result = run_cli(tmp_path, "run", **env)
    assert result.returncode == 2
    assert result.stderr.startswith(message) and result.stderr.count("\n") == 1
    assert not (tmp_path / "failure-queue.jsonl").exists()


def test_run_without_credentials_names_what_is_missing_and_gateway_login(tmp_path: Path) -> None:
    result = run_cli(tmp_path, "run", TELEGRAM_SESSION_PATH=str(tmp_path / "gw.session"))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    for name in ("TELEGRAM_API_ID", "TELEGRAM_API_HASH", "TELEGRAM_CHANNELS", "gateway login", str(tmp_path / "gw.session")):
        assert name in result.stderr


def test_run_with_credentials_but_no_session(tmp_path: Path) -> None:
    result = run_cli(tmp_path, TELEGRAM_API_ID="12345", TELEGRAM_API_HASH="f" * 32, TELEGRAM_CHANNELS="-1001649127710",
                     TELEGRAM_SESSION_PATH=str(tmp_path / "gw.session"))
    assert result.returncode == 2  # `run` is the default command
    assert "missing a session" in result.stderr and "TELEGRAM_API_ID" not in result.stderr
    assert "`gateway login`" in result.stderr


def test_run_with_a_corrupt_session_file_renames_it_and_exits_2(tmp_path: Path) -> None:
    session = tmp_path / "gw.session"
    session.write_bytes(b"this is not an SQLite database" * 100)
    result = run_cli(tmp_path, "run", TELEGRAM_API_ID="12345", TELEGRAM_API_HASH="f" * 32,
                     TELEGRAM_CHANNELS="-1001649127710", TELEGRAM_SESSION_PATH=str(session))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "corrupt" in result.stderr and "gateway login" in result.stderr
    assert not session.exists()
    [renamed] = tmp_path.glob("gw.session.corrupt-*")
    assert renamed.read_bytes().startswith(b"this is not an SQLite database")
    assert not (tmp_path / "failure-queue.jsonl").exists()  # nothing started


def test_status_shows_queue_dead_letters_cursors_and_last_error(tmp_path: Path) -> None:
    queue = DurableQueue(tmp_path / "failure-queue.jsonl")
    queue.open()
    records = queue.append([new(1), new(2), new(3)])
    queue.ack([records[0].seq])
    queue.dead_letter([(records[1], "Validation failed", ["text must be a string"], 400)])
    queue.close()
    with open(tmp_path / "failure-queue.jsonl", "ab") as fh:
        fh.write(b"garbage line\n")
    CursorStore(tmp_path / "cursors.json").advance(-1001649127710, 5810)
    write_status(status_path(tmp_path), GatewayStatus(last_error="2026-01-01T00:00:00Z timeout: no answer",
                                                      last_publish_at=1.0e9, pid=1, command="run"))
    result = run_cli(tmp_path, "status")
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert "running        no" in text
    assert "queue depth    1 (oldest queued" in text
    assert "dead letters   1 in" in text and "Validation failed" in text and "(HTTP 400)" in text
    assert "cursors        -1001649127710 → 5810" in text
    assert "last error     2026-01-01T00:00:00Z timeout: no answer" in text
    assert "unreadable     1 line(s)" in text
    report = json.loads(run_cli(tmp_path, "status", "--json").stdout)
    assert report["queueDepth"] == 1 and report["deadLetters"] == 1 and report["running"] is False
    assert report["cursors"] == {"-1001649127710": 5810} and report["unreadableLines"] == 1
    # Read-only: nothing was recovered, quarantined or compacted by looking.
    assert b"garbage line" in (tmp_path / "failure-queue.jsonl").read_bytes()
    assert not (tmp_path / "failure-queue.quarantine.jsonl").exists()


async def test_replay_drains_through_the_batch_endpoint_with_a_progress_bar(tmp_path: Path, api) -> None:
    queue = DurableQueue(tmp_path / "failure-queue.jsonl")
    queue.open()
    queue.append([new(i) for i in range(1, 8)])
    queue.close()
    process = await asyncio.create_subprocess_exec(
        GATEWAY, "replay", "--progress", env=gateway_env(tmp_path, API_ENDPOINT=f"{api.url}/ingest", PUBLISH_BATCH_SIZE="3"),
        cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, stderr.decode()
    assert "replay: 7 message(s) queued" in stdout.decode()
    assert ("replay: 7 stored, 0 already stored (duplicates), 0 refused (dead letters), 0 set aside (quarantined), "
            "0 still queued") in stdout.decode()
    assert "7/7" in stderr.decode()  # tqdm's bar
    # Batches of PUBLISH_BATCH_SIZE; a lone last record goes to /ingest (same answer, cheaper).
    assert [r.path for r in api.requests] == ["/ingest/batch", "/ingest/batch", "/ingest"]
    assert len(api.stored) == 7


async def test_replay_while_the_api_is_down_keeps_everything_and_exits_1(tmp_path: Path, api) -> None:
    api.default = UNAVAILABLE
    queue = DurableQueue(tmp_path / "failure-queue.jsonl")
    queue.open()
    queue.append([new(1), new(2)])
    queue.close()
    process = await asyncio.create_subprocess_exec(
        GATEWAY, "replay", env=gateway_env(tmp_path, API_ENDPOINT=f"{api.url}/ingest", RETRY_DELAY_MS="1"),
        cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 1
    assert "2 message(s) stay queued" in stderr.decode()
    assert len(api.requests) == 4  # first attempt + 3 retries
    assert json.loads(run_cli(tmp_path, "status", "--json").stdout)["lastError"].endswith("503 Database connection failed")


async def test_import_queues_then_publishes_and_a_second_import_stores_nothing(tmp_path: Path, api) -> None:
    async def import_once() -> tuple[int, str]:
        process = await asyncio.create_subprocess_exec(
            GATEWAY, "import", str(SAMPLE), env=gateway_env(tmp_path, API_ENDPOINT=f"{api.url}/ingest"),
            cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
        return process.returncode, stdout.decode() + stderr.decode()

    code, output = await import_once()
    assert code == 0, output
    assert "import: 20 stored, 0 already stored" in output
    code, output = await import_once()
    assert code == 0, output
    assert "import: 0 stored, 20 already stored" in output
    assert sorted(api.stored.values()) == [1] * 20


def test_import_of_a_file_that_is_not_an_export(tmp_path: Path) -> None:
    (tmp_path / "x.json").write_text("[]")
    result = run_cli(tmp_path, "import", str(tmp_path / "x.json"))
    assert result.returncode == 2 and "is not a Telegram Desktop chat export" in result.stderr


def _notify_socket(tmp_path: Path) -> tuple[socket.socket, str]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = str(tmp_path / "notify.sock")
    sock.bind(path)
    sock.settimeout(20)
    return sock, path


def _receive(sock: socket.socket, wanted: str, seen: list[str]) -> None:
    deadline = time.monotonic() + 20
    while wanted not in seen:
        assert time.monotonic() < deadline, f"{wanted} not received; got {seen}"
        seen.append(sock.recv(4096).decode())


def test_sigterm_finishes_flushes_and_exits_0_with_systemd_notifications(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"".join(encode_payload(new(i)) + b"\n" for i in range(1, 6)))
    sock, address = _notify_socket(tmp_path)
    port = free_port()
    api_port = free_port()  # nothing listens: every publish fails, everything stays queued
    env = gateway_env(tmp_path, GATEWAY_SOURCE=f"file:{events}", GATEWAY_PORT=str(port),
                      API_ENDPOINT=f"http://127.0.0.1:{api_port}/ingest", RETRY_DELAY_MS="50",
                      NOTIFY_SOCKET=address, WATCHDOG_USEC="200000")
    process = subprocess.Popen([GATEWAY, "run"], env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT)
    seen: list[str] = []
    try:
        _receive(sock, "READY=1", seen)
        _receive(sock, "WATCHDOG=1", seen)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).json()
            if health["queueDepth"] == 5:
                break
            time.sleep(0.05)
        assert health["queueDepth"] == 5 and health["lastError"]
        status = json.loads(run_cli(tmp_path, "status", "--json").stdout)
        assert status["running"] is True and status["queueDepth"] == 5
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=15)
        _receive(sock, "STOPPING=1", seen)
    finally:
        if process.poll() is None:
            process.kill()
        sock.close()
    assert process.returncode == 0, output.decode()
    assert b"gateway stopped (exit status 0, 5 record(s) stay queued)" in output
    queue = DurableQueue(tmp_path / "failure-queue.jsonl")
    assert queue.open().pending == 5
    queue.close()
    assert json.loads(run_cli(tmp_path, "status", "--json").stdout)["running"] is False


def test_replay_refuses_while_a_gateway_owns_the_queue(tmp_path: Path) -> None:
    queue = DurableQueue(tmp_path / "failure-queue.jsonl")
    queue.open()
    try:
        result = run_cli(tmp_path, "replay")
    finally:
        queue.close()
    assert result.returncode == 1
    assert "owned by a running gateway" in result.stderr and result.stderr.count("\n") == 1


def test_systemd_notify_reaches_a_real_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gateway import systemd

    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert systemd.notify("READY=1") is False  # not under systemd: a no-op
    sock, address = _notify_socket(tmp_path)
    monkeypatch.setenv("NOTIFY_SOCKET", address)
    try:
        assert systemd.notify("READY=1") is True
        assert sock.recv(64) == b"READY=1"
    finally:
        sock.close()
    # An abstract-namespace address (`@name`), as systemd often hands out.
    abstract = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    name = f"gateway-test-{os.getpid()}"
    abstract.bind("\0" + name)
    monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
    try:
        assert systemd.notify("WATCHDOG=1") is True
        assert abstract.recv(64) == b"WATCHDOG=1"
    finally:
        abstract.close()
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "gone.sock"))
    assert systemd.notify("READY=1") is False  # logged, never raised
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert systemd.watchdog_interval() == 15.0
    monkeypatch.setenv("WATCHDOG_PID", "1")
    assert systemd.watchdog_interval() is None


# -- damaged queue lines and shared seqs (issue 16, items 3 and 4) -----------------------------------

def _queue_with_a_bad_line(workdir: Path, bad: bytes, count: int = 10) -> None:
    queue = DurableQueue(workdir / "failure-queue.jsonl")
    queue.open()
    queue.append([new(i) for i in range(1, count + 1)])
    queue.close()
    path = workdir / "failure-queue.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    lines.insert(3, bad)
    path.write_bytes(b"".join(lines))


def _flipped_byte(workdir: Path) -> bytes:
    """A record whose payload lost a bit (still JSON: only the checksum can tell)."""
    return record_line(11, "-1001649127710:11", encode_payload(new(11, "hello")).replace(b"hello", b"hellp"),
                       crc=record_crc(11, "-1001649127710:11", encode_payload(new(11, "hello"))))


async def _gateway(workdir: Path, *args: str, **env: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        GATEWAY, *args, env=gateway_env(workdir, **env), cwd=workdir,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    return process.returncode, stdout.decode(), stderr.decode()


@pytest.mark.parametrize("damage", ["nested 5,000 levels", "flipped byte"])
async def test_replay_sets_a_damaged_line_aside_says_so_and_exits_3(tmp_path: Path, api, damage: str) -> None:
    bad = POISON["nested payload, checksum right"] if damage.startswith("nested") else _flipped_byte(tmp_path)
    _queue_with_a_bad_line(tmp_path, bad)
    status = run_cli(tmp_path, "status")
    assert status.returncode == 0 and "Traceback" not in status.stderr
    assert "queue depth    10" in status.stdout and "unreadable     1 line(s)" in status.stdout

    code, stdout, stderr = await _gateway(tmp_path, "replay", API_ENDPOINT=f"{api.url}/ingest")
    assert code == 3, stdout + stderr
    assert "Traceback" not in stderr
    assert ("replay: 10 stored, 0 already stored (duplicates), 0 refused (dead letters), 1 set aside (quarantined), "
            "0 still queued") in stdout
    assert "replay: set aside 1 damaged queue line(s)" in stderr and "line 4: " in stderr
    assert len(api.stored) == 10
    quarantine = tmp_path / "failure-queue.quarantine.jsonl"
    assert json.loads(quarantine.read_text())["line"] == bad.rstrip(b"\n").decode()

    status = run_cli(tmp_path, "status")
    assert f"quarantined    1 line(s) in {quarantine} (1 set aside by the last `replay`)" in status.stdout
    # Nothing set aside by this run: 0, while status still counts the quarantine file.
    code, stdout, _ = await _gateway(tmp_path, "replay", API_ENDPOINT=f"{api.url}/ingest")
    assert code == 0 and "0 set aside (quarantined)" in stdout
    assert json.loads(run_cli(tmp_path, "status", "--json").stdout)["quarantinedLines"] == 1


async def test_import_also_reports_and_exits_3_when_it_set_a_queue_line_aside(tmp_path: Path, api) -> None:
    _queue_with_a_bad_line(tmp_path, POISON["nested line"], count=2)
    code, stdout, stderr = await _gateway(tmp_path, "import", str(SAMPLE), API_ENDPOINT=f"{api.url}/ingest")
    assert code == 3, stdout + stderr
    assert "import: 22 stored" in stdout and "1 set aside (quarantined)" in stdout
    assert "import: set aside 1 damaged queue line(s)" in stderr


async def test_two_lines_sharing_a_seq_are_counted_alike_and_both_delivered(tmp_path: Path, api) -> None:
    queue = DurableQueue(tmp_path / "failure-queue.jsonl")
    queue.open()
    records = queue.append([new(i) for i in range(1, 11)])
    queue.close()
    with open(tmp_path / "failure-queue.jsonl", "ab") as fh:
        fh.write(record_line(records[4].seq, "-1001649127710:500", encode_payload(new(500))))
    status = run_cli(tmp_path, "status")
    assert "queue depth    11" in status.stdout
    assert "shared seq     1 line(s) reuse another line's seq" in status.stdout
    code, stdout, stderr = await _gateway(tmp_path, "replay", API_ENDPOINT=f"{api.url}/ingest")
    assert code == 0, stdout + stderr
    assert "replay: 11 message(s) queued" in stdout and "replay: 11 stored" in stdout
    assert "1 queue line(s) shared a seq with another line: renumbered, every one is delivered" in stderr
    assert "seq 5 is used by another line too: kept as seq 11" in stderr
    assert sorted(api.stored) == sorted([r.key for r in records] + ["-1001649127710:500"])


async def test_run_starts_despite_a_poison_line_delivers_the_rest_and_exits_3(tmp_path: Path, api) -> None:
    _queue_with_a_bad_line(tmp_path, POISON["nested payload, checksum right"])
    events = tmp_path / "events.jsonl"
    events.write_bytes(encode_payload(new(20)) + b"\n")
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        GATEWAY, "run", env=gateway_env(tmp_path, GATEWAY_SOURCE=f"file:{events}", GATEWAY_PORT=str(port),
                                        API_ENDPOINT=f"{api.url}/ingest", LOG_FORMAT="text"),
        cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while len(api.stored) < 11:
            assert time.monotonic() < deadline and process.returncode is None, "the gateway did not deliver"
            await asyncio.sleep(0.05)
        report = json.loads(run_cli(tmp_path, "status", "--json").stdout)
        assert report["running"] is True and report["quarantinedLines"] == 1 and report["lastSetAside"] == 1
        async with httpx.AsyncClient() as client:
            metrics = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
        assert "\ntelegram_queue_quarantined_lines 1.0\n" in metrics
        process.send_signal(signal.SIGTERM)
        output, _ = await asyncio.wait_for(process.communicate(), 20)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 3, output.decode()
    assert b"set aside 1 damaged line(s)" in output and b"Traceback" not in output
    assert json.loads(run_cli(tmp_path, "status", "--json").stdout)["running"] is False


# -- import: streamed, bounded, one-line errors (issue 16 item 7) ------------------------------------

def _export(path: Path, messages: list[dict]) -> Path:
    path.write_text(json.dumps({"name": "TP Capital", "type": "public_channel", "id": 1649127710,
                                "messages": messages}, ensure_ascii=False), encoding="utf-8")
    return path


def _post(i: int, **fields) -> dict:
    return {"id": i, "type": "message", "date": "2025-11-03T10:00:00", "date_unixtime": str(1762174800 + i),
            "text": f"post {i}", **fields}


def test_import_of_a_deeply_nested_text_is_one_line_exit_2_in_little_memory(tmp_path: Path) -> None:
    depth = 200_000
    export = tmp_path / "result.json"
    export.write_text('{"id": 1649127710, "type": "public_channel", "messages": [{"id": 1, "type": "message", '
                      '"date_unixtime": "1762174800", "text": ' + "[" * depth + "]" * depth + "}]}")
    process = subprocess.Popen([GATEWAY, "import", str(export)], env=gateway_env(tmp_path), cwd=tmp_path,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    # The kernel's high-water mark of the process, read until it exits (ru_maxrss would count the
    # memory of this pytest process, which the child shares until it execs).
    peak_kb = 0
    while process.poll() is None:
        try:
            status = Path(f"/proc/{process.pid}/status").read_text()
            peak_kb = max(peak_kb, int(status.split("VmHWM:")[1].split()[0]))
        except (OSError, IndexError):
            pass
        time.sleep(0.01)
    stderr = process.stderr.read().decode()
    assert process.returncode == 2, stderr
    assert stderr.count("\n") == 1 and "Traceback" not in stderr
    assert stderr.startswith(f"gateway: {export}: message #1 of `messages` is nested more than 32 levels deep")
    assert 0 < peak_kb < 150 * 1024  # ijson's items() needs gigabytes for this file


async def test_import_sends_entity_lists_as_text_and_replies_with_their_id(tmp_path: Path, api) -> None:
    export = _export(tmp_path / "result.json", [
        _post(1, text=["🟢Swing Trade ", {"type": "bold", "text": "BOVAW32"}]),
        _post(2, text="Alvo 2 batido ✅", reply_to_message_id=1),
    ])
    code, stdout, stderr = await _gateway(tmp_path, "import", "--progress", str(export), API_ENDPOINT=f"{api.url}/ingest")
    assert code == 0, stdout + stderr
    sent = {p.message_id: p for r in api.requests for p in map(decode_payload, r.raws)}
    assert sent[1].text == "🟢Swing Trade BOVAW32" and sent[1].reply_to_message_id is None
    assert sent[2].reply_to_message_id == 1
    assert "queued=2" in stderr and "stored=2" in stderr  # the progress bar (bytes of the file, counts)


async def test_a_cut_off_export_delivers_what_precedes_the_cut_and_exits_2(tmp_path: Path, api) -> None:
    export = _export(tmp_path / "result.json", [_post(i) for i in range(1, 13_001)])
    export.write_bytes(export.read_bytes()[:-200])  # a download cut short: the last posts are gone
    code, stdout, stderr = await _gateway(tmp_path, "import", str(export), API_ENDPOINT=f"{api.url}/ingest")
    assert code == 2, stdout + stderr
    assert stderr.count("\n") == 1 and "a cut-off file?" in stderr and "Traceback" not in stderr
    # Read in chunks of 5,000: the whole ones before the cut, and the part of the last one, are stored.
    stored = len(api.stored)
    assert 12_990 < stored < 13_000 and f"import: {stored} stored" in stdout
    assert "0 still queued" in stdout


async def test_import_while_the_api_is_down_queues_the_whole_export_for_later(tmp_path: Path, api) -> None:
    api.default = UNAVAILABLE
    export = _export(tmp_path / "result.json", [_post(i) for i in range(1, 12_001)])
    code, stdout, stderr = await _gateway(tmp_path, "import", str(export), API_ENDPOINT=f"{api.url}/ingest",
                                          RETRY_DELAY_MS="1", MAX_RETRY_ATTEMPTS="1")
    assert code == 1, stdout + stderr
    assert "import: 12000 message(s) of TP Capital -1001649127710" in stdout and "12000 still queued" in stdout
    # After the first failed chunk it stops trying and only queues: 1 attempt + 1 retry, once.
    assert len(api.requests) == 2
    api.default = "ok"
    code, stdout, _ = await _gateway(tmp_path, "replay", API_ENDPOINT=f"{api.url}/ingest")
    assert code == 0 and len(api.stored) == 12_000


# -- files read at start: a damaged one is reported, never a traceback ----------------------------

async def _run_until(workdir: Path, api, condition, *, timeout: float = 30, **env: str) -> tuple[int, str]:
    """`gateway run` on the file source until `condition()` holds, then SIGTERM; (exit status, output)."""
    events = workdir / "events.jsonl"
    if not events.exists():
        events.write_bytes(encode_payload(new(20)) + b"\n")
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        GATEWAY, "run", env=gateway_env(workdir, GATEWAY_SOURCE=f"file:{events}", GATEWAY_PORT=str(port),
                                        API_ENDPOINT=f"{api.url}/ingest", LOG_FORMAT="text", **env),
        cwd=workdir, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    try:
        deadline = time.monotonic() + timeout
        while not await condition(port):
            assert time.monotonic() < deadline and process.returncode is None, "the gateway did not get there"
            await asyncio.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        output, _ = await asyncio.wait_for(process.communicate(), 20)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    return process.returncode, output.decode()


@pytest.mark.parametrize(("damage", "content"), [
    ("cut off", b'{"-1001649127710": 58'),
    ("not JSON", b"-1001649127710=5810"),
    ("nested 5,000 levels", b"[" * 5000 + b"]" * 5000),
    ("wrong types", b'{"-1001649127710": "5810", "x": true}'),
])
async def test_run_starts_despite_a_damaged_cursor_file_and_keeps_it_aside(tmp_path: Path, api, damage: str,
                                                                           content: bytes) -> None:
    (tmp_path / "cursors.json").write_bytes(content)
    status = run_cli(tmp_path, "status")
    assert status.returncode == 0 and "Traceback" not in status.stderr
    assert "cursors        unreadable: " in status.stdout and "the next `gateway run` keeps it aside" in status.stdout

    async def delivered(_port: int) -> bool:
        return len(api.stored) == 1

    code, output = await _run_until(tmp_path, api, delivered)
    assert code == 0, output
    assert "Traceback" not in output
    [kept] = tmp_path.glob("cursors.json.damaged-*")
    assert kept.read_bytes() == content
    [error] = [line for line in output.splitlines() if " ERROR gateway.cursors: " in line]
    assert "is damaged" in error and kept.name in error and "none is skipped" in error
    assert "1000 message(s) deep" in error  # BACKFILL_RECOVERY_LIMIT's default
    after = run_cli(tmp_path, "status")
    assert "cursors        none yet" in after.stdout
    assert f"damaged cursor file kept: {kept}" in after.stdout
    assert json.loads(run_cli(tmp_path, "status", "--json").stdout)["damagedCursorFiles"] == [str(kept)]


def test_a_recovery_depth_of_zero_is_refused(tmp_path: Path) -> None:
    result = run_cli(tmp_path, "run", BACKFILL_RECOVERY_LIMIT="0")
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert result.stderr.startswith("gateway: BACKFILL_RECOVERY_LIMIT must be at least 1, got 0")


def test_an_env_file_that_is_not_utf8_is_one_line_and_exit_2(tmp_path: Path) -> None:
    (tmp_path / "gateway.env").write_bytes(b"API_SECRET_TOKEN=\xff\xfe\n")
    result = run_cli(tmp_path, "status", GATEWAY_ENV_FILE=str(tmp_path / "gateway.env"))
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "gateway.env is not UTF-8 text (byte ff at offset 17)" in result.stderr


async def test_a_damaged_file_source_offset_reads_the_file_again(tmp_path: Path, api) -> None:
    events = tmp_path / "events.jsonl"
    events.write_bytes(encode_payload(new(21)) + b"\n" + encode_payload(new(22)) + b"\n")
    (tmp_path / "file-source.offset").write_bytes(
        json.dumps({"path": str(events.resolve()), "offset": -5}).encode())  # a negative offset crashed the source

    async def delivered(_port: int) -> bool:
        return len(api.stored) == 2

    code, output = await _run_until(tmp_path, api, delivered)
    assert code == 0, output
    assert "unreadable" in output and "reading" in output and "from the start" in output


# -- secrets in the log output and /logs (cut to 8 characters, as the APIs do) --------------------

TOKEN = "tok3n-" + "a1b2c3d4" * 5
API_HASH = "0123456789abcdef" * 2
SESSION = "1BVtsOK8Bu" + "Zm9vYmFyYmF6cXV4" * 12


def _windows(secret: str) -> list[str]:
    """Every 9-character piece of a secret: none may appear (8 characters are shown at most)."""
    return [secret[i:i + 9] for i in range(len(secret) - 8)]


async def test_secrets_never_appear_beyond_8_characters_in_logs_or_logs_endpoint(tmp_path: Path, api) -> None:
    # An API that quotes what it was sent in its error text: the gateway logs that text.
    api.unavailable_error = f"bad token {TOKEN}, hash {API_HASH}, session {SESSION}"
    api.default = UNAVAILABLE
    seen: dict[str, object] = {}

    async def quoted(port: int) -> bool:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            try:
                logs = (await client.get("/logs")).json()
                health = (await client.get("/health")).json()
            except httpx.HTTPError:
                return False
        seen.update(logs=logs, health=health)
        return any("bad token" in entry["message"] for entry in logs["data"])

    code, output = await _run_until(tmp_path, api, quoted, API_SECRET_TOKEN=TOKEN, TELEGRAM_API_HASH=API_HASH,
                                    TELEGRAM_SESSION=SESSION, RETRY_DELAY_MS="20", MAX_RETRY_ATTEMPTS="1",
                                    LOG_LEVEL="DEBUG")
    assert code == 0, output
    logs, health = json.dumps(seen["logs"], ensure_ascii=False), json.dumps(seen["health"], ensure_ascii=False)
    status = run_cli(tmp_path, "status", "--json", API_SECRET_TOKEN=TOKEN).stdout
    assert f"bad token {TOKEN[:8]}…, hash {API_HASH[:8]}…, session {SESSION[:8]}…" in output
    assert f"bad token {TOKEN[:8]}…" in logs and f"bad token {TOKEN[:8]}…" in health
    for secret in (TOKEN, API_HASH, SESSION):
        for where, text in (("log output", output), ("/logs", logs), ("/health", health), ("status", status)):
            leaked = [piece for piece in _windows(secret) if piece in text]
            assert not leaked, f"{where} shows {leaked[0]!r} of a secret"


async def test_the_start_up_line_lists_the_endpoints_served(tmp_path: Path, api) -> None:
    async def started(port: int) -> bool:
        try:
            async with httpx.AsyncClient() as client:
                return (await client.get(f"http://127.0.0.1:{port}/ready")).status_code == 200
        except httpx.HTTPError:
            return False

    code, output = await _run_until(tmp_path, api, started)
    assert code == 0, output
    [line] = [line for line in output.splitlines() if "gateway listening on" in line]
    assert "(/healthz /health /ready /logs /metrics)" in line


# -- requeue: reviewed payloads back on the normal path ---------------------------------------------

async def test_requeue_delivers_recovered_payloads_and_refuses_a_file_with_a_bad_line(tmp_path: Path, api) -> None:
    payloads = tmp_path / "recovered.jsonl"
    payloads.write_bytes(encode_payload(new(31)) + b"\n\n" + encode_payload(edited(31, "fixed")) + b"\n"
                         + b'{"kind": "new", "channelId": "x"}\n'
                         + b'{"kind": "new", "text": ' + b"[" * 3000 + b"]" * 3000 + b"}\n")
    code, stdout, stderr = await _gateway(tmp_path, "requeue", str(payloads), API_ENDPOINT=f"{api.url}/ingest")
    assert code == 2 and "Traceback" not in stderr
    assert "requeue:   line 4: not a payload" in stderr and "requeue:   line 5: not a payload (nested too deeply)" in stderr
    assert stderr.endswith(f"gateway: {payloads}: 2 line(s) are not payloads (one contract payload a line); "
                           "nothing was queued\n")
    assert not api.requests and not (tmp_path / "failure-queue.jsonl").exists()

    lines = payloads.read_bytes().splitlines(keepends=True)
    payloads.write_bytes(b"".join(lines[:3]))
    code, stdout, stderr = await _gateway(tmp_path, "requeue", str(payloads), API_ENDPOINT=f"{api.url}/ingest")
    assert code == 0, stdout + stderr
    assert f"requeue: 2 payload(s) from {payloads} queued; 2 message(s) to deliver" in stdout
    assert "requeue: 2 stored, 0 already stored (duplicates)" in stdout
    code, stdout, _ = await _gateway(tmp_path, "requeue", str(payloads), API_ENDPOINT=f"{api.url}/ingest")
    assert code == 0 and "requeue: 0 stored, 2 already stored (duplicates)" in stdout


async def test_run_and_status_read_past_damaged_side_files(tmp_path: Path, api) -> None:
    """The other files read at start: the status file, the dead-letter and quarantine files (only
    counted, the newest dead letter shown), each damaged the worst ways; the queue itself is the
    quarantine's business (above)."""
    deep = b"[" * 100_000 + b"]" * 100_000
    (tmp_path / "gateway-status.json").write_bytes(b'{"cursors": ' + deep + b"}")
    (tmp_path / "failure-queue.dead-letter.jsonl").write_bytes(b'{"seq":1,"key":"k","payload":' + deep + b"}\n"
                                                               + b"\xff\xfe not json\n")
    (tmp_path / "failure-queue.quarantine.jsonl").write_bytes(deep + b"\n\x00\x01\n")
    status = run_cli(tmp_path, "status")
    assert status.returncode == 0 and "Traceback" not in status.stderr, status.stderr
    assert "dead letters   2 in" in status.stdout and "quarantined    2 line(s)" in status.stdout

    async def delivered(_port: int) -> bool:
        return len(api.stored) == 1

    code, output = await _run_until(tmp_path, api, delivered)
    assert code == 0 and "Traceback" not in output, output
    report = json.loads(run_cli(tmp_path, "status", "--json").stdout)
    assert report["deadLetters"] == 2 and report["quarantinedLines"] == 2 and report["command"] == "run"
