"""Gateway figures (printed, not asserted): replay of a 100,000-message queue through the real
ingest API, end-to-end latency event → committed row, gateway RSS.

    uv run python bench/gateway_bench.py [--messages 100000]

It starts its own PostgreSQL and the ingest API under granian (the reliability harness's process
control), writes a queue of N records, times `gateway replay`, then measures latency through the
file source and through the in-process push path the Telethon adapter uses.
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.reliability.harness
from contracts import NewMessage, encode_payload, idempotency_key
from gateway.queue import DurableQueue
from tests.support import processes

TOKEN = "bench-token-0123456789abcdefghijklmnopqrstuvwxyz"
BASE = datetime(2025, 1, 1, tzinfo=timezone.utc)


def payload(channel: int, i: int) -> NewMessage:
    return NewMessage(channel_id=str(channel), message_id=i, timestamp=BASE + timedelta(seconds=i),
                      text=f"Ativo: PETR{i % 10}\nCompra: 38,50 a 38,70\nAlvo 1: 39,20\nStop: 38,00 #{i}")


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def count_rows(url: str, channel: int) -> int:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval("SELECT count(*) FROM tp_capital.forwarded_messages WHERE channel_id=$1", channel)
    finally:
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--latency-samples", type=int, default=300)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="gwbench-"))
    db = processes.Database(work / "pg").start()
    api_port, gw_port = processes.free_ports(2)
    api = processes.ingest_api(api_port, db.url, TOKEN, work / "api.log")
    api.start()
    env = processes.service_env(API_ENDPOINT=f"http://127.0.0.1:{api_port}/ingest", API_SECRET_TOKEN=TOKEN,
                                FAILURE_QUEUE_PATH=str(work / "gw" / "queue.jsonl"), GATEWAY_DATA_DIR=str(work / "gw"),
                                GATEWAY_ENV_FILE=str(work / "none.env"), GATEWAY_HOST="127.0.0.1", GATEWAY_PORT=str(gw_port))
    try:
        # 1. replay of a big queue
        channel = -1001000000001
        queue = DurableQueue(work / "gw" / "queue.jsonl")
        queue.open()
        t = time.perf_counter()
        items = [(str(idempotency_key(p)), encode_payload(p)) for p in (payload(channel, i) for i in range(1, args.messages + 1))]
        for s in range(0, len(items), 10_000):
            queue.append_encoded(items[s:s + 10_000])
        queue.close()
        print(f"queue of {args.messages:,} written in {time.perf_counter() - t:.1f}s "
              f"({(work / 'gw' / 'queue.jsonl').stat().st_size / 1e6:.1f} MB)")
        t = time.perf_counter()
        proc = subprocess.Popen([str(processes.script_path("gateway")), "replay", "--no-progress"], env=env, cwd=work,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        peak = 0
        while proc.poll() is None:
            peak = max(peak, rss_kb(proc.pid))
            time.sleep(0.05)
        elapsed = time.perf_counter() - t
        out = proc.stdout.read().decode()
        rows = asyncio.run(count_rows(db.url, channel))
        print(f"replay: {elapsed:.1f}s for {args.messages:,} ({args.messages / elapsed:,.0f} msg/s), rows {rows:,}, "
              f"peak RSS {peak / 1024:.0f} MB, exit {proc.returncode}\n  {out.strip().splitlines()[-1]}")

        # 2. latency: event appended to the file source -> row committed (API acknowledged)
        events = work / "events.jsonl"
        events.touch()
        gateway = processes.ManagedProcess("gateway", [str(processes.script_path("gateway")), "run"],
                                           {**env, "GATEWAY_SOURCE": f"file:{events}"}, work / "gw.log",
                                           # Readiness, not /health (the old shared format with its
                                           # three checks): /ready is 200 once the source follows the
                                           # file, so the first latency sample does not include the start.
                                           ready=lambda: processes.http_ok(f"http://127.0.0.1:{gw_port}/ready"))
        gateway.start()
        idle_rss = rss_kb(gateway.proc.pid)
        latencies = asyncio.run(_latency(db.url, events, args.latency_samples))
        q = statistics.quantiles(latencies, n=100)
        print(f"latency file event -> committed row ({len(latencies)} samples, file source polls every 20 ms): "
              f"p50 {q[49]:.1f} ms, p90 {q[89]:.1f} ms, p99 {q[98]:.1f} ms")
        print(f"gateway RSS: {idle_rss / 1024:.0f} MB at start, {rss_kb(gateway.proc.pid) / 1024:.0f} MB after the latency run")
        gateway.stop()
        pushed = asyncio.run(_push_latency(db.url, f"http://127.0.0.1:{api_port}/ingest", work / "push", args.latency_samples))
        q = statistics.quantiles(pushed, n=100)
        print(f"latency pushed event (the Telethon path: handler -> queue fsync -> POST /ingest) -> API acknowledged "
              f"(row committed) "
              f"({len(pushed)} samples): p50 {q[49]:.1f} ms, p90 {q[89]:.1f} ms, p99 {q[98]:.1f} ms")
    finally:
        api.stop()
        db.destroy()


async def _latency(url: str, events: Path, samples: int) -> list[float]:
    channel = -1001000000002
    conn = await asyncpg.connect(url)
    out = []
    try:
        for i in range(1, samples + 1):
            line = encode_payload(payload(channel, i)) + b"\n"
            t = time.perf_counter()
            with open(events, "ab") as fh:
                fh.write(line)
            while not await conn.fetchval("SELECT 1 FROM tp_capital.forwarded_messages WHERE channel_id=$1 AND message_id=$2", channel, i):
                await asyncio.sleep(0.0005)
            out.append((time.perf_counter() - t) * 1000)
            await asyncio.sleep(0.01)
    finally:
        await conn.close()
    return out


async def _push_latency(url: str, endpoint: str, folder: Path, samples: int) -> list[float]:
    from gateway.cursors import CursorStore
    from gateway.drainer import Drainer
    from gateway.publisher import Publisher, create_session
    from gateway.service import Gateway
    from gateway.settings import PublishSettings
    from gateway.source import SourceBatch

    class Push:
        kind = "push"
        connected = True
        def __init__(self): self.inbox = asyncio.Queue()
        async def connect(self): pass
        async def close(self): self.inbox.put_nowait(None)
        async def events(self):
            while (item := await self.inbox.get()) is not None:
                yield item
        async def commit(self, checkpoint): pass
        def channels(self): return []
        async def history(self, channel_id, min_id):
            return
            yield
        def on_reconnect(self, callback): pass

    channel = -1001000000003
    folder.mkdir(parents=True, exist_ok=True)
    queue = DurableQueue(folder / "queue.jsonl")
    queue.open()
    settings = PublishSettings(endpoint=endpoint, token=TOKEN)
    # The API answers only after its transaction committed, so "the drainer settled the record"
    # comes a moment after the row became visible: an upper bound on event -> committed row that,
    # unlike polling the table, puts no extra load on this event loop or the database.
    settled = asyncio.Event()
    out = []
    async with create_session(settings) as session:
        publisher = Publisher(settings, session)
        source = Push()
        drainer = Drainer(queue, publisher, batch_size=500, backoff_initial=1, backoff_max=1,
                          on_progress=lambda count: settled.set())
        gateway = Gateway(source, queue, publisher, drainer, CursorStore(folder / "cursors.json"))
        run = asyncio.create_task(gateway.run())
        await asyncio.sleep(0.2)
        for i in range(1, samples + 1):
            p = payload(channel, i)
            settled.clear()
            t = time.perf_counter()
            source.inbox.put_nowait(SourceBatch(items=[(str(idempotency_key(p)), encode_payload(p))]))
            await settled.wait()
            out.append((time.perf_counter() - t) * 1000)
            await asyncio.sleep(0.01)
        gateway.stop()
        await run
    stored = await count_rows(url, channel)
    if stored != samples:
        raise RuntimeError(f"push latency run: {stored} rows for {samples} events")
    return out


if __name__ == "__main__":
    main()
