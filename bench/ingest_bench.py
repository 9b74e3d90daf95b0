"""Ingest API benchmark: prints figures, asserts nothing (run: `uv run python bench/ingest_bench.py`).

In one run, on this machine, against a throwaway embedded PostgreSQL:

1. the raw database limit: asyncpg single-row `INSERT … ON CONFLICT DO NOTHING` from 16 tasks;
2. `POST /ingest` under granian (auth, parsing, metrics and tracing on), 16 concurrent keep-alive
   connections on loopback, a unique message key per request: req/s, p50, p99;
3. `POST /ingest/batch` (1,000 messages per request): messages/s;
4. the HTTP floor: the same load against granian + Litestar with an empty handler
   (`bench/floor_app.py`), the most any handler on this stack can reach here.

Everything (database, API, load generator) shares the machine's cores, as in production on a
small box. The load generator is a minimal HTTP/1.1 keep-alive client on raw asyncio streams so
that it takes as little CPU from the server as possible.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import asyncpg
import msgspec
import psutil

from ts_ops.embedded_pg import EmbeddedPostgres, free_port
from ts_ops.migrations import migrate_url

TOKEN = "bench-gateway-token-0123456789abcdef-0123"
T0 = datetime(2025, 10, 7, 12, 0, tzinfo=timezone.utc)
SIGNAL = "🟢Swing Trade\nAtivo: BOVAW32\nCompra: 1,04 a 1,06\nAlvo 1: 1,15\nAlvo 2: 2,15\nAlvo final: 3,50\nStop: 0,70"
CHAT = "Bom dia pessoal! Hoje vamos ter um dia interessante no mercado."
_ids = itertools.count(1)
_encoder = msgspec.json.Encoder()


def _payload(channel: int) -> dict:
    message_id = next(_ids)
    return {
        "channelId": str(channel),
        "messageId": message_id,
        # One message in four is a signal, like a busy channel with chatter in between.
        "text": SIGNAL if message_id % 4 == 0 else CHAT,
        "timestamp": (T0 + timedelta(seconds=message_id)).isoformat(),
    }


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


# -- 1. raw database limit -------------------------------------------------------------------

RAW_INSERT = """
INSERT INTO tp_capital.forwarded_messages (channel_id, message_id, original_timestamp, message_text)
VALUES ($1, $2, $3, $4)
ON CONFLICT ON CONSTRAINT forwarded_messages_message_key DO NOTHING
"""


async def raw_limit(url: str, tasks: int, duration: float) -> float:
    pool = await asyncpg.create_pool(url, min_size=tasks, max_size=tasks)
    count = 0
    stop_at = time.perf_counter() + duration

    async def run() -> None:
        nonlocal count
        async with pool.acquire() as conn:
            while time.perf_counter() < stop_at:
                message_id = next(_ids)
                await conn.execute(RAW_INSERT, -1, message_id, T0 + timedelta(seconds=message_id), CHAT)
                count += 1

    started = time.perf_counter()
    await asyncio.gather(*(run() for _ in range(tasks)))
    elapsed = time.perf_counter() - started
    await pool.close()
    return count / elapsed


# -- 2./3. HTTP load -------------------------------------------------------------------------

class Connection:
    """One keep-alive HTTP/1.1 connection (requests one at a time, as a gateway worker does)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port

    async def open(self) -> "Connection":
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        return self

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\n"
            f"X-Gateway-Token: {TOKEN}\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        self.writer.write(head + body)
        header = await self.reader.readuntil(b"\r\n\r\n")
        status = int(header[9:12])
        length = 0
        for line in header.split(b"\r\n")[1:]:
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


async def load_single(port: int, concurrency: int, duration: float, warmup: float) -> tuple[float, list[float], int]:
    latencies: list[float] = []
    errors = 0
    measuring_from = time.perf_counter() + warmup
    stop_at = measuring_from + duration

    async def run(worker: int) -> None:
        nonlocal errors
        connection = await Connection("127.0.0.1", port).open()
        try:
            while (now := time.perf_counter()) < stop_at:
                body = _encoder.encode(_payload(-1000 - worker))
                status, _ = await connection.post("/ingest", body)
                done = time.perf_counter()
                if status != 200:
                    errors += 1
                if now >= measuring_from:
                    latencies.append(done - now)
        finally:
            connection.close()

    await asyncio.gather(*(run(w) for w in range(concurrency)))
    return len(latencies) / duration, latencies, errors


async def load_batch(port: int, concurrency: int, duration: float, size: int = 1000) -> float:
    messages = 0
    stop_at = time.perf_counter() + duration

    async def run(worker: int) -> None:
        nonlocal messages
        connection = await Connection("127.0.0.1", port).open()
        try:
            while time.perf_counter() < stop_at:
                body = _encoder.encode({"messages": [_payload(-2000 - worker) for _ in range(size)]})
                status, answer = await connection.post("/ingest/batch", body)
                if status != 200:
                    raise RuntimeError(f"batch answered {status}: {answer[:200]!r}")
                messages += size
        finally:
            connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(run(w) for w in range(concurrency)))
    return messages / (time.perf_counter() - started)


def _cpu_seconds(process: subprocess.Popen) -> float:
    parent = psutil.Process(process.pid)
    total = 0.0
    for proc in [parent, *parent.children(recursive=True)]:
        try:
            times = proc.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


def _wait_for_port(process: subprocess.Popen, port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"nothing answered on port {port}")


def start_floor(workers: int) -> tuple[subprocess.Popen, int]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "granian", "--interface", "asgi", "--factory", "--no-log",
         "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers), "floor_app:create_app"],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parent)},
    )
    _wait_for_port(process, port)
    return process, port


def start_api(url: str, workers: int) -> tuple[subprocess.Popen, int]:
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "GATEWAY_SECRET_TOKEN": TOKEN,
        "LOG_LEVEL": "WARNING",
        # Tracing on: spans are created for every request and statement (export is the
        # collector's cost, not the API's; set OTEL_TRACES_EXPORTER=otlp to include it).
        "OTEL_TRACES_EXPORTER": os.environ.get("OTEL_TRACES_EXPORTER", "none"),
        "DB_POOL_MAX_SIZE": "8",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "ingest_api.cli", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)],
        env=env,
    )
    _wait_for_port(process, port)
    return process, port


async def main_async(args: argparse.Namespace) -> None:
    root = Path(tempfile.mkdtemp(prefix="tspg-bench-"))
    root.chmod(0o755)
    pg = EmbeddedPostgres(root / "data").start()
    api: subprocess.Popen | None = None
    try:
        await migrate_url(pg.url, report=lambda line: None)
        raw = await raw_limit(pg.url, 16, args.duration)
        api, port = start_api(pg.url, args.workers)
        await asyncio.sleep(0.5)
        cpu_before = _cpu_seconds(api)
        rate, latencies, errors = await load_single(port, args.concurrency, args.duration, warmup=1.0)
        # CPU the API used per request (warm-up included in both counts): a figure that holds
        # even when other work shares the machine, unlike req/s.
        api_cpu_ms = (_cpu_seconds(api) - cpu_before) / max(1, len(latencies) * (1 + 1.0 / args.duration)) * 1000
        batch = await load_batch(port, args.batch_concurrency, args.duration)
        api.terminate()
        api.wait(10)
        api = None
        floor_server, floor_port = start_floor(args.workers)
        try:
            await asyncio.sleep(0.5)
            floor, floor_latencies, _ = await load_single(floor_port, args.concurrency, args.duration, warmup=1.0)
        finally:
            floor_server.terminate()
            floor_server.wait(10)
    finally:
        if api is not None:
            api.terminate()
            api.wait(10)
        pg.destroy()
        shutil.rmtree(root, ignore_errors=True)

    p50, p99 = _percentile(latencies, 0.50) * 1000, _percentile(latencies, 0.99) * 1000
    print(f"machine: {os.cpu_count()} cores, shared by PostgreSQL, the API and this load generator")
    print(f"raw asyncpg single-row INSERT … ON CONFLICT, 16 tasks : {raw:8.0f} rows/s")
    print(f"POST /ingest, concurrency {args.concurrency}, {args.workers} worker(s)   : {rate:8.0f} req/s "
          f"({rate / raw:.2f}x raw)  p50 {p50:.1f} ms  p99 {p99:.1f} ms  mean {statistics.fmean(latencies) * 1000:.1f} ms"
          f"  errors {errors}")
    print(f"API CPU per /ingest request (all granian processes)  : {api_cpu_ms:8.2f} ms")
    print(f"POST /ingest/batch (1,000 per request, {args.batch_concurrency} clients) : {batch:8.0f} messages/s")
    print(f"HTTP floor: empty Litestar handler, same load          : {floor:8.0f} req/s "
          f"({floor / raw:.2f}x raw)  p50 {_percentile(floor_latencies, 0.5) * 1000:.1f} ms  "
          f"p99 {_percentile(floor_latencies, 0.99) * 1000:.1f} ms")
    print(f"targets: /ingest >= 0.8x raw ({'met' if rate >= 0.8 * raw else 'NOT met'}), "
          f"p99 < 15 ms ({'met' if p99 < 15 else 'NOT met'}), batch >= 15,000/s ({'met' if batch >= 15000 else 'NOT met'})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measurement (default 10)")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--batch-concurrency", type=int, default=2)
    parser.add_argument("--workers", type=int, default=1, help="granian workers (default 1)")
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
