"""Ingest API benchmark: prints figures, asserts nothing (run: `uv run python bench/ingest_bench.py`).

In one run, on this machine, against a throwaway embedded PostgreSQL:

1. the raw database limit: asyncpg single-row `INSERT … ON CONFLICT DO NOTHING` from 16 tasks;
2. `POST /ingest` under granian (auth, parsing, metrics and tracing on), 16 concurrent keep-alive
   connections on loopback, a unique message key per request: req/s, p50, p99;
3. `POST /ingest/batch` (1,000 messages per request): messages/s;
4. the HTTP floors: the same load against granian + Litestar with an empty handler
   (`bench/floor_app.py`), the most any Litestar route can reach here, and against granian with
   a bare ASGI app doing the same (the floor of the API's fast path for the gateway's requests);
5. the peer: a Node/Express 4 + pg endpoint of the old system's shape (`bench/express_peer.js`:
   token header, JSON body, one `INSERT … ON CONFLICT DO NOTHING` into a table shaped like
   forwarded_messages), run with the machine's `node`, its packages `npm install`ed into a temp
   folder. Ours and the peer are loaded by two clients each, interleaved: the asyncio client
   below and wrk (`bench/ingest_wrk.lua`, unique keys per request) when wrk is installed.

Tracing is on in the API as in production with a collector: spans are exported over OTLP/HTTP
to a stand-in collector (`bench/otlp_sink.py`, its own process, decodes and counts every span)
with `OTEL_TRACES_SAMPLER=parentbased_traceidratio` at `--sample-ratio` (default 0.1).
`--database-url` runs against an existing server (e.g. TimescaleDB with history loaded by
bench/timescale_bench.py) instead of a throwaway embedded PostgreSQL.

Everything (database, API, load generator) shares the machine's cores, as in production on a
small box. The load generator is a minimal HTTP/1.1 keep-alive client on raw asyncio streams so
that it takes as little CPU from the server as possible.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import itertools
import os
import shutil
import socket
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
_first_id = 1
_ids = itertools.count(_first_id)
_encoder = msgspec.json.Encoder()


def _payload(channel: int) -> dict:
    message_id = next(_ids)
    return {
        "channelId": str(channel),
        "messageId": message_id,
        # One message in four is a signal, like a busy channel with chatter in between.
        "text": SIGNAL if message_id % 4 == 0 else CHAT,
        "timestamp": (T0 + timedelta(seconds=message_id - _first_id)).isoformat(),
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


async def load_history(port: int, years: float, per_day: int) -> int:
    """`years` of history before T0 through POST /ingest/batch (the real write path), `per_day`
    messages a day over the channels the single-message load uses, one in four a signal."""
    days = int(years * 365)
    total = days * per_day
    step = timedelta(days=1) / per_day
    start = T0 - timedelta(days=days)
    connection = await Connection("127.0.0.1", port).open()
    sent = 0
    try:
        while sent < total:
            batch = []
            for _ in range(min(1000, total - sent)):
                message_id = next(_ids)
                batch.append({"channelId": str(-1000 - sent % 16), "messageId": message_id,
                              "text": SIGNAL if sent % 4 == 0 else CHAT,
                              "timestamp": (start + step * sent).isoformat()})
                sent += 1
            status, answer = await connection.post("/ingest/batch", _encoder.encode({"messages": batch}))
            if status != 200:
                raise RuntimeError(f"history batch answered {status}: {answer[:200]!r}")
    finally:
        connection.close()
    return total


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


def start_floor(workers: int, raw: bool = False) -> tuple[subprocess.Popen, int]:
    """granian serving bench/floor_app.py: the empty Litestar handler, or (`raw`) the bare ASGI app."""
    port = free_port()
    target = ["floor_app:raw_app"] if raw else ["--factory", "floor_app:create_app"]
    process = subprocess.Popen(
        [sys.executable, "-m", "granian", "--interface", "asgi", "--no-log",
         "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers), *target],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parent)},
    )
    _wait_for_port(process, port)
    return process, port


BENCH = Path(__file__).parent
EXPRESS_TABLE = "express_peer.forwarded_messages"


def start_sink() -> tuple[subprocess.Popen, int]:
    port = free_port()
    process = subprocess.Popen([sys.executable, str(BENCH / "otlp_sink.py"), str(port)],
                               stdout=subprocess.PIPE, text=True)
    _wait_for_port(process, port)
    return process, port


def stop_sink(process: subprocess.Popen) -> tuple[int, int]:
    """(export requests, spans) the stand-in collector received."""
    process.terminate()
    out, _ = process.communicate(timeout=10)
    for line in out.splitlines():
        if line.startswith("OTLP_SINK "):
            _, requests, spans, _bytes = line.split()
            return int(requests), int(spans)
    return 0, 0


def start_api(url: str, args: argparse.Namespace | int, sink_port: int | None = None, extra: list[str] = (),
              env_extra: dict[str, str] | None = None, python: str = sys.executable) -> tuple[subprocess.Popen, int]:
    """The API under granian on a free port. `args` may be just a worker count (other benches),
    and without `sink_port` nothing is exported."""
    if isinstance(args, int):
        args = argparse.Namespace(workers=args, sample_ratio=1.0)
    port = free_port()
    tracing = {"OTEL_TRACES_EXPORTER": "none"} if sink_port is None else {
        # Sampled tracing with a real exporter: OTLP/HTTP to the stand-in collector.
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{sink_port}",
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": str(args.sample_ratio),
    }
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "GATEWAY_SECRET_TOKEN": TOKEN,
        "LOG_LEVEL": "WARNING",
        **tracing,
        "DB_POOL_MAX_SIZE": "8",
        **(env_extra or {}),
    }
    process = subprocess.Popen(
        [python, "-m", "ingest_api.cli", "--host", "127.0.0.1", "--port", str(port),
         "--workers", str(args.workers), *extra],
        env=env,
    )
    _wait_for_port(process, port)
    return process, port


def install_express() -> Path | None:
    """`npm install express@4 pg` into a temp folder; None (with a note) when node or npm is missing."""
    if not shutil.which("node") or not shutil.which("npm"):
        print("note: node/npm not found: the Express peer is skipped")
        return None
    folder = Path(tempfile.mkdtemp(prefix="express-peer-"))
    subprocess.run(["npm", "install", "--silent", "--no-audit", "--no-fund", "--prefix", str(folder),
                    "express@4", "pg"], check=True, stdout=subprocess.DEVNULL)
    return folder


async def prepare_express_table(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f"""
            CREATE SCHEMA IF NOT EXISTS express_peer;
            DROP TABLE IF EXISTS {EXPRESS_TABLE};
            CREATE TABLE {EXPRESS_TABLE} (LIKE tp_capital.forwarded_messages INCLUDING ALL);
        """)
    finally:
        await conn.close()


async def drop_express_table(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("DROP SCHEMA IF EXISTS express_peer CASCADE")
    finally:
        await conn.close()


def start_express(folder: Path, url: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    env = {**os.environ, "PORT": str(port), "DATABASE_URL": url, "TOKEN": TOKEN, "TABLE": EXPRESS_TABLE,
           "POOL_SIZE": "8", "NODE_PATH": str(folder / "node_modules"), "NODE_ENV": "production"}
    process = subprocess.Popen(["node", str(BENCH / "express_peer.js")], env=env, stdout=subprocess.DEVNULL)
    _wait_for_port(process, port)
    return process, port


_wrk_channels = itertools.count(-3000, -100)


def run_wrk(port: int, concurrency: int, duration: float) -> dict | None:
    """wrk against POST /ingest: req/s, p50, p99 (ms), errors; None when wrk is not installed."""
    if not shutil.which("wrk"):
        return None
    threads = min(2, concurrency)
    env = {**os.environ, "TOKEN": TOKEN, "CHANNEL_BASE": str(next(_wrk_channels)), "FIRST_ID": str(_first_id)}
    done = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{concurrency}", f"-d{max(1, round(duration))}s", "--latency",
         "-s", str(BENCH / "ingest_wrk.lua"), f"http://127.0.0.1:{port}/ingest"],
        env=env, capture_output=True, text=True, check=True)
    for line in done.stdout.splitlines():
        if line.startswith("WRK_RESULT "):
            _, requests, seconds, p50, p99, errors = line.split()
            return {"rate": int(requests) / float(seconds), "p50": float(p50), "p99": float(p99),
                    "errors": int(errors)}
    raise RuntimeError(f"wrk printed no result: {done.stdout[-500:]} {done.stderr[-500:]}")


def _asyncio_figures(rate: float, latencies: list[float], errors: int) -> dict:
    return {"rate": rate, "p50": _percentile(latencies, 0.5) * 1000, "p99": _percentile(latencies, 0.99) * 1000,
            "errors": errors}


def _stop(process: subprocess.Popen | None) -> None:
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def _row(label: str, figures: dict | None, peer: dict | None = None) -> str:
    if figures is None:
        return f"{label:<46}: (wrk not installed: `apt-get install -y wrk`)"
    ratio = f"  {figures['rate'] / peer['rate']:.2f}x Express" if peer else ""
    return (f"{label:<46}: {figures['rate']:8.0f} req/s  p50 {figures['p50']:5.1f} ms  p99 {figures['p99']:5.1f} ms"
            f"  errors {figures['errors']}{ratio}")


# --matrix: granian options and the writer's in-flight statements, one API start each.
MATRIX: list[tuple[str, list[str], dict[str, str]]] = [
    ("1 worker (defaults)", [], {}),
    ("2 workers", ["--workers", "2"], {}),
    ("1 worker, 2 runtime threads", ["--runtime-threads", "2"], {}),
    ("1 worker, loop asyncio", ["--loop", "asyncio"], {}),
    ("1 worker, backpressure 16", ["--backpressure", "16"], {}),
    ("1 worker, writer in flight 2", [], {"INGEST_COALESCE_MAX_IN_FLIGHT": "2"}),
    ("1 worker, writer in flight 8", [], {"INGEST_COALESCE_MAX_IN_FLIGHT": "8"}),
    ("2 workers, writer in flight 8", ["--workers", "2"], {"INGEST_COALESCE_MAX_IN_FLIGHT": "8"}),
]


async def matrix_async(args: argparse.Namespace) -> None:
    root = Path(tempfile.mkdtemp(prefix="tspg-bench-"))
    root.chmod(0o755)
    pg = EmbeddedPostgres(root / "data").start() if not args.database_url else None
    url = args.database_url or pg.url
    rows = []
    try:
        if not args.skip_migrate:
            await migrate_url(url, report=lambda line: None)
        sink, sink_port = start_sink()
        try:
            for label, flags, env in MATRIX:
                api, port = start_api(url, args, sink_port, flags, env)
                try:
                    await asyncio.sleep(0.5)
                    # Warm-up, then the measurement.
                    await load_single(port, args.concurrency, 1.0, warmup=0.0)
                    cpu_before = _cpu_seconds(api)
                    figures = run_wrk(port, args.concurrency, args.duration)
                    if figures is None:
                        figures = _asyncio_figures(*await load_single(port, args.concurrency, args.duration, 0.0))
                    figures["cpu_ms"] = (_cpu_seconds(api) - cpu_before) / max(1, figures["rate"] * args.duration) * 1000
                finally:
                    _stop(api)
                rows.append((label, figures))
                print(f"{label:<34}: {figures['rate']:7.0f} req/s  p50 {figures['p50']:5.1f} ms  "
                      f"p99 {figures['p99']:5.1f} ms  API CPU {figures['cpu_ms']:.2f} ms/request  errors {figures['errors']}",
                      flush=True)
        finally:
            stop_sink(sink)
    finally:
        if pg is not None:
            pg.destroy()
        shutil.rmtree(root, ignore_errors=True)


async def main_async(args: argparse.Namespace) -> None:
    root: Path | None = None
    pg: EmbeddedPostgres | None = None
    if args.database_url:
        url = args.database_url
    else:
        root = Path(tempfile.mkdtemp(prefix="tspg-bench-"))
        root.chmod(0o755)
        pg = EmbeddedPostgres(root / "data").start()
        url = pg.url
    express_dir = install_express() if not args.no_express else None
    processes: list[subprocess.Popen] = []
    figures: dict[str, dict | None] = {}
    try:
        if not args.skip_migrate:
            await migrate_url(url, report=lambda line: None)
        raw = await raw_limit(url, 16, args.duration)
        sink, sink_port = start_sink()
        processes.append(sink)
        api, port = start_api(url, args, sink_port, args.granian)
        processes.append(api)
        other = None
        if args.compare:
            # Another tree's API (its own interpreter and sources), same database and settings.
            other, other_port = start_api(url, args, sink_port, args.granian, python=args.compare)
            processes.append(other)
        express = None
        if express_dir is not None:
            await prepare_express_table(url)
            express, express_port = start_express(express_dir, url)
            processes.append(express)
        await asyncio.sleep(0.5)
        history = ""
        if args.history_years:
            started = time.perf_counter()
            loaded = await load_history(port, args.history_years, args.history_per_day)
            history = f"; history: {loaded:,} messages over {args.history_years:g} years loaded in {time.perf_counter() - started:.0f} s"

        # Warm-up of every server (new chunks, plans, the pools) so that the first one measured
        # does not pay for it.
        for warm_port in [port] + ([other_port] if other is not None else []) + \
                ([express_port] if express is not None else []):
            if args.warmup > 0:  # --warmup 0: none
                await load_single(warm_port, args.concurrency, args.warmup, warmup=0.0)

        # Interleaved, so that a neighbour's burst on the shared machine hits both sides alike.
        cpu_before = _cpu_seconds(api)
        rate, latencies, errors = await load_single(port, args.concurrency, args.duration, warmup=1.0)
        api_cpu_ms = (_cpu_seconds(api) - cpu_before) / max(1, len(latencies) * (1 + 1.0 / args.duration)) * 1000
        figures["ours_asyncio"] = _asyncio_figures(rate, latencies, errors)
        if express is not None:
            figures["express_asyncio"] = _asyncio_figures(
                *await load_single(express_port, args.concurrency, args.duration, warmup=1.0))
        if other is not None:
            other_cpu = _cpu_seconds(other)
            rate_o, latencies_o, errors_o = await load_single(other_port, args.concurrency, args.duration, warmup=1.0)
            figures["compare_asyncio"] = _asyncio_figures(rate_o, latencies_o, errors_o)
            figures["compare_cpu_ms"] = ((_cpu_seconds(other) - other_cpu)
                                         / max(1, len(latencies_o) * (1 + 1.0 / args.duration)) * 1000)
        figures["ours_wrk"] = run_wrk(port, args.concurrency, args.duration)
        if express is not None:
            figures["express_wrk"] = run_wrk(express_port, args.concurrency, args.duration)
        if other is not None:
            figures["compare_wrk"] = run_wrk(other_port, args.concurrency, args.duration)
        batch = await load_batch(port, args.batch_concurrency, args.duration)
        if other is not None:
            figures["compare_batch"] = {"rate": await load_batch(other_port, args.batch_concurrency, args.duration)}
        _stop(api)
        _stop(express)
        _stop(other)
        requests_exported, spans = stop_sink(sink)

        floor_server, floor_port = start_floor(args.workers)
        processes.append(floor_server)
        await asyncio.sleep(0.5)
        figures["floor"] = _asyncio_figures(*await load_single(floor_port, args.concurrency, args.duration, warmup=1.0))
        _stop(floor_server)
        # The bare server outruns the asyncio client: wrk measures it when installed.
        raw_server, raw_port = start_floor(args.workers, raw=True)
        processes.append(raw_server)
        await asyncio.sleep(0.5)
        figures["raw_floor"] = run_wrk(raw_port, args.concurrency, args.duration) or \
            _asyncio_figures(*await load_single(raw_port, args.concurrency, args.duration, warmup=1.0))
        _stop(raw_server)
    finally:
        for process in processes:
            _stop(process)
        if express_dir is not None:
            shutil.rmtree(express_dir, ignore_errors=True)
            if args.database_url:
                await drop_express_table(url)
        if pg is not None:
            pg.destroy()
        if root is not None:
            shutil.rmtree(root, ignore_errors=True)

    ours, peer = figures["ours_asyncio"], figures.get("express_asyncio")
    ours_wrk, peer_wrk = figures.get("ours_wrk"), figures.get("express_wrk")
    print(f"machine: {os.cpu_count()} cores, shared by PostgreSQL, the API, the peer and the load generators")
    print(f"database: {'given --database-url' if args.database_url else 'embedded PostgreSQL (throwaway)'}{history}; "
          f"granian: {args.workers} worker(s) {' '.join(args.granian)}")
    print(f"tracing: OTLP/HTTP to a stand-in collector, parentbased_traceidratio {args.sample_ratio}: "
          f"{spans} spans in {requests_exported} exports")
    print(f"raw asyncpg single-row INSERT … ON CONFLICT, 16 tasks  : {raw:8.0f} rows/s")
    print(_row(f"POST /ingest, ours, asyncio client, c={args.concurrency}", ours, peer))
    if peer is not None:
        print(_row("POST /ingest, Express peer, asyncio client", peer))
    print(_row(f"POST /ingest, ours, wrk, c={args.concurrency}", ours_wrk, peer_wrk))
    if express_dir is not None:
        print(_row("POST /ingest, Express peer, wrk", peer_wrk))
    if args.compare:
        print(_row("POST /ingest, --compare tree, asyncio client", figures["compare_asyncio"], peer))
        print(_row("POST /ingest, --compare tree, wrk", figures["compare_wrk"], peer_wrk))
    print(f"API CPU per /ingest request (all granian processes)    : {api_cpu_ms:8.2f} ms")
    if args.compare:
        print(f"API CPU per /ingest request, --compare tree            : {figures['compare_cpu_ms']:8.2f} ms")
    print(f"POST /ingest/batch (1,000 per request, {args.batch_concurrency} clients)   : {batch:8.0f} messages/s")
    if args.compare:
        print(f"POST /ingest/batch, --compare tree                  : {figures['compare_batch']['rate']:8.0f} messages/s")
    print(_row("HTTP floor: empty Litestar handler, asyncio", figures["floor"]))
    print(_row(f"HTTP floor: bare ASGI app, {'wrk' if shutil.which('wrk') else 'asyncio'}", figures["raw_floor"]))
    p99s = [(name, f) for name, f in (("asyncio", ours), ("wrk", ours_wrk)) if f]
    checks = ["p99 < 15 ms (" + ", ".join(f"{name} {f['p99']:.1f} ms {'met' if f['p99'] < 15 else 'NOT met'}"
                                         for name, f in p99s) + ")",
              f"batch >= 15,000/s ({'met' if batch >= 15000 else 'NOT met'})"]
    for name, a, b in (("asyncio", ours, peer), ("wrk", ours_wrk, peer_wrk)):
        if a and b:
            checks.insert(0, f"{name}: >= 2.0x Express ({a['rate'] / b['rate']:.2f}x, "
                             f"{'met' if a['rate'] >= 2 * b['rate'] else 'NOT met'})")
    print("targets: " + "; ".join(checks))
    if args.json:
        print("JSON " + json.dumps({"raw": raw, "batch": batch, "api_cpu_ms": api_cpu_ms, "spans": spans, **figures}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measurement (default 10)")
    parser.add_argument("--connections", "--concurrency", dest="concurrency", type=int, default=16,
                        help="concurrent keep-alive connections (default 16)")
    parser.add_argument("--batch-concurrency", type=int, default=2)
    parser.add_argument("--workers", type=int, default=1, help="granian workers (default 1)")
    parser.add_argument("--granian", nargs=argparse.REMAINDER, default=[],
                        help="further ingest-api flags, e.g. --granian --runtime-threads 2 --loop asyncio")
    parser.add_argument("--database-url", help="an existing, migrated server instead of embedded PostgreSQL")
    parser.add_argument("--history-years", type=float, default=0.0,
                        help="first load this many years of history through /ingest/batch (e.g. 3 on TimescaleDB)")
    parser.add_argument("--first-id", type=int, default=1,
                        help="first message id (another run on the same --database-url: above the last one's)")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of unmeasured load on each server first")
    parser.add_argument("--history-per-day", type=int, default=300, help="history messages a day (default 300)")
    parser.add_argument("--skip-migrate", action="store_true", help="do not run migrations on --database-url")
    parser.add_argument("--sample-ratio", type=float, default=0.1,
                        help="OTEL_TRACES_SAMPLER_ARG of the API (parentbased_traceidratio; default 0.1)")
    parser.add_argument("--no-express", action="store_true", help="skip the Express peer")
    parser.add_argument("--compare", metavar="PYTHON",
                        help="also load the API of another tree, run by that interpreter (e.g. OTHER/.venv/bin/python)")
    parser.add_argument("--json", action="store_true", help="also print the figures as one JSON line")
    parser.add_argument("--matrix", action="store_true",
                        help="instead: POST /ingest under each granian option set (wrk when installed)")
    args = parser.parse_args()
    global _ids, _first_id
    _first_id = args.first_id
    _ids = itertools.count(args.first_id)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(matrix_async(args) if args.matrix else main_async(args))


if __name__ == "__main__":
    main()
