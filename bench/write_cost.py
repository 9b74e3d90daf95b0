"""Database time per coalesced flush of POST /ingest: prints figures, asserts nothing.

    uv run python bench/write_cost.py [--batches 400] [--size 16] [--signals 1]
    /work/main/.venv/bin/python bench/write_cost.py      # another tree's writer and migrations

On a throwaway embedded PostgreSQL (fsync on, pg_stat_statements preloaded), drives
`IngestWriter.write()` directly (no HTTP) with batches shaped like the coalesced flushes of
bench/ingest_bench.py: `--size` new messages with unique keys over 16 channels, one in four a
signal. The writer is the imported tree's own code, so the same script measures any checkout.

Prints, for the timed batches (one writer task, as INGEST_COALESCE_MAX_IN_FLIGHT=1):
1. wall time per statement the writer sent (client side, round trip included) and per message;
2. what the server did meanwhile: write transactions (commits waiting for a WAL flush), WAL bytes;
3. pg_stat_statements per statement, nested ones included (plans, plan and execution time);
4. throughput with 1 and 2 writer tasks sending batch after batch (INGEST_COALESCE_MAX_IN_FLIGHT
   1 and 2, no HTTP): messages/s, and CPU per message of PostgreSQL and of the writer's process;
5. auto_explain (ANALYZE, BUFFERS, WAL, triggers, nested statements) of one batch's statements,
   as the writer's prepared statements ran them (after the warm-up: the plan the cache picked).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import shutil
import statistics
import tempfile
import time
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
import psutil

from ingest_api.db import Database
from ingest_api.ingest import sql as ingest_sql
from ingest_api.ingest.validation import validate
from ingest_api.ingest.writer import IngestWriter
from ingest_api.settings import WriterSettings
from ingest_api.signals import outcomes as outcomes_sql
from ts_ops.embedded_pg import EmbeddedPostgres
from ts_ops.migrations import migrate_url
from ts_runtime.settings import DatabaseSettings

T0 = datetime(2025, 10, 7, 12, 0, tzinfo=timezone.utc)
SIGNAL = "🟢Swing Trade\nAtivo: BOVAW32\nCompra: 1,04 a 1,06\nAlvo 1: 1,15\nAlvo 2: 2,15\nAlvo final: 3,50\nStop: 0,70"
CHAT = "Bom dia pessoal! Hoje vamos ter um dia interessante no mercado."
_encoder = msgspec.json.Encoder()
_ids = itertools.count(1)


def _batch(size: int, signals: int | None = None) -> list[Any]:
    """`size` new messages as the bench sends them: a channel per connection, 1 in 4 a signal
    (or the first `signals` of the batch)."""
    items = []
    for position in range(size):
        message_id = next(_ids)
        signal = message_id % 4 == 0 if signals is None else position < signals
        items.append(validate(_encoder.encode({
            "channelId": str(-1000 - message_id % 16), "messageId": message_id,
            "text": SIGNAL if signal else CHAT,
            "timestamp": (T0 + timedelta(seconds=message_id)).isoformat()})))
    return items


def _statement_names() -> dict[str, str]:
    names = {}
    for module in (ingest_sql, outcomes_sql):
        for name, value in vars(module).items():
            if name.isupper() and isinstance(value, str) and len(value) > 20:
                names[value] = name
    return names


class _TimedConnection:
    """The writer's connection, timing each statement (and each transaction's commit)."""

    def __init__(self, conn: asyncpg.Connection, record: Any, names: dict[str, str]) -> None:
        self._conn, self._record, self._names = conn, record, names

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._conn, name)
        if name not in ("fetch", "fetchrow", "fetchval", "execute", "executemany"):
            return attribute

        async def timed(query: str, *args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return await attribute(query, *args, **kwargs)
            finally:
                label = self._names.get(query) or " ".join(query.split())[:40]
                self._record(label, time.perf_counter() - started)
        return timed

    def transaction(self, *args: Any, **kwargs: Any) -> Any:
        inner = self._conn.transaction(*args, **kwargs)
        record = self._record

        class _Timed:
            async def __aenter__(self) -> Any:
                started = time.perf_counter()
                await inner.__aenter__()
                record("BEGIN", time.perf_counter() - started)
                return self

            async def __aexit__(self, *exc: Any) -> Any:
                started = time.perf_counter()
                try:
                    return await inner.__aexit__(*exc)
                finally:
                    record("COMMIT/ROLLBACK", time.perf_counter() - started)
        return _Timed()


class _TimedPool:
    def __init__(self, pool: asyncpg.Pool, record: Any, names: dict[str, str]) -> None:
        self._pool, self._record, self._names = pool, record, names
        self.on_acquire: Any = None
        self.on_release: Any = None

    @contextlib.asynccontextmanager
    async def acquire(self) -> Any:
        async with self._pool.acquire() as conn:
            if self.on_acquire is not None:
                await self.on_acquire(conn)
            try:
                yield _TimedConnection(conn, self._record, self._names)
            finally:
                if self.on_release is not None:
                    await self.on_release(conn)


class _TimedDatabase:
    def __init__(self, pool: _TimedPool) -> None:
        self.pool = pool


async def _server_counters(conn: asyncpg.Connection) -> dict[str, float]:
    # Read from the WAL position and the transaction id counter, not from pg_stat_*: backends
    # report those counters up to 10 s late.
    row = await conn.fetchrow("SELECT pg_current_wal_insert_lsn() - '0/0'::pg_lsn AS wal,"
                              " pg_snapshot_xmax(pg_current_snapshot())::text::bigint AS next_xid")
    return {"wal_bytes": float(row["wal"]), "xids": float(row["next_xid"])}


def _postgres_cpu(pg: EmbeddedPostgres) -> float:
    """CPU seconds of the cluster's processes so far (postmaster and its children)."""
    postmaster = psutil.Process(int((pg.data_dir / "postmaster.pid").read_text().split()[0]))
    total = 0.0
    for process in [postmaster, *postmaster.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            times = process.cpu_times()
            total += times.user + times.system
    return total


async def _throughput(writer: IngestWriter, pg: EmbeddedPostgres, tasks: int, size: int, seconds: float) -> str:
    """`tasks` writers each sending batch after batch (INGEST_COALESCE_MAX_IN_FLIGHT=`tasks`)."""
    messages = 0
    stop_at = time.perf_counter() + seconds

    async def run() -> None:
        nonlocal messages
        while time.perf_counter() < stop_at:
            await writer.write(_batch(size))
            messages += size

    cpu_pg, cpu_self = _postgres_cpu(pg), time.process_time()
    started = time.perf_counter()
    await asyncio.gather(*(run() for _ in range(tasks)))
    elapsed = time.perf_counter() - started
    pg_ms = (_postgres_cpu(pg) - cpu_pg) / messages * 1000
    self_ms = (time.process_time() - cpu_self) / messages * 1000
    return (f"  {tasks} writer task(s), {seconds:.0f} s: {messages / elapsed:8,.0f} messages/s  "
            f"({messages / elapsed / size:,.0f} flushes/s); PostgreSQL CPU {pg_ms:.3f} ms/message, "
            f"writer process CPU {self_ms:.3f} ms/message")


async def main_async(args: argparse.Namespace) -> None:
    root = Path(tempfile.mkdtemp(prefix="tspg-cost-"))
    root.chmod(0o755)
    pg = EmbeddedPostgres(root / "data", settings={
        "shared_preload_libraries": "pg_stat_statements", "pg_stat_statements.track": "all",
        "pg_stat_statements.track_planning": "on", "track_wal_io_timing": "on"}).start()
    try:
        await migrate_url(pg.url, report=lambda line: None)
        admin = await asyncpg.connect(pg.url)
        await admin.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        database = Database(DatabaseSettings(url=pg.url))
        await database.open()
        assert database.pool is not None
        times: dict[str, list[float]] = defaultdict(list)
        recording = False

        def record(label: str, seconds: float) -> None:
            if recording:
                times[label].append(seconds)

        pool = _TimedPool(database.pool, record, _statement_names())
        writer = IngestWriter(_TimedDatabase(pool), WriterSettings(max_batch=500, max_in_flight=1))  # type: ignore[arg-type]

        for _ in range(args.warmup):  # past the plan cache's five custom plans, the pool warm
            await writer.write(_batch(args.size))
        await admin.execute("SELECT pg_stat_statements_reset()")
        before = await _server_counters(admin)
        recording = True
        walls = []
        started = time.perf_counter()
        for _ in range(args.batches):
            batch = _batch(args.size, args.signals)
            t = time.perf_counter()
            results = await writer.write(batch)
            walls.append(time.perf_counter() - t)
            if any(r.status != "stored" for r in results):
                print("  (a message was not answered 'stored':", {r.status for r in results}, ")")
        elapsed = time.perf_counter() - started
        recording = False
        after = await _server_counters(admin)

        n, size = args.batches, args.size
        shape = "1 in 4 a signal" if args.signals is None else f"{args.signals} signal(s) each"
        print(f"write_cost: {n} batches of {size} new messages ({shape}, 16 channels), one writer task")
        print(f"  writer.write() per batch: mean {1000 * statistics.mean(walls):.2f} ms, "
              f"p50 {1000 * statistics.median(walls):.2f} ms  ->  {1000 * elapsed / (n * size):.3f} ms/message, "
              f"{n * size / elapsed:,.0f} messages/s")
        print(f"  {'statement (client wall, round trip)':<36} {'per batch':>9} {'mean ms':>8} {'p50 ms':>8} "
              f"{'ms/batch':>9} {'ms/msg':>7}")
        for label, values in sorted(times.items(), key=lambda kv: -sum(kv[1])):
            print(f"  {label:<36} {len(values) / n:9.2f} {1000 * statistics.mean(values):8.3f} "
                  f"{1000 * statistics.median(values):8.3f} {1000 * sum(values) / n:9.3f} "
                  f"{1000 * sum(values) / (n * size):7.3f}")
        outside = sum(walls) - sum(sum(v) for v in times.values())
        print(f"  {'(writer Python between statements)':<36} {'':>9} {'':>8} {'':>8} {1000 * outside / n:9.3f} "
              f"{1000 * outside / (n * size):7.3f}")
        diff = {k: after[k] - before[k] for k in after}
        print(f"  server per batch: {diff['xids'] / n:.2f} write transactions (a commit that waits for a WAL flush"
              f" each), {diff['wal_bytes'] / n / 1024:.1f} KiB WAL")

        rows = await admin.fetch("""
            SELECT toplevel, calls, plans, total_plan_time, total_exec_time, wal_records, query
            FROM pg_stat_statements
            WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
              AND query NOT ILIKE '%pg_stat%' AND calls > 0
            ORDER BY total_exec_time + total_plan_time DESC LIMIT 14""")
        print("  pg_stat_statements over the timed batches (T: sent by the writer, N: nested in a function):")
        print(f"    {'':1} {'calls/b':>7} {'plans/b':>7} {'plan ms/b':>9} {'exec ms/b':>9} {'WAL rec/b':>9}  statement")
        for r in rows:
            text = " ".join(r["query"].split())
            print(f"    {'T' if r['toplevel'] else 'N'} {r['calls'] / n:7.2f} {r['plans'] / n:7.2f} "
                  f"{r['total_plan_time'] / n:9.3f} {r['total_exec_time'] / n:9.3f} {r['wal_records'] / n:9.1f}  "
                  f"{text[:90]}")

        print("\nthroughput, no HTTP (the database side's ceiling for these flushes):")
        for tasks in (1, 2):
            print(await _throughput(writer, pg, tasks, size, args.seconds), flush=True)

        if args.explain:
            notices: list[str] = []

            async def explain_on(conn: asyncpg.Connection) -> None:
                conn.add_log_listener(listener)
                await conn.execute(
                    "LOAD 'auto_explain'; SET auto_explain.log_min_duration = 0; SET auto_explain.log_analyze = on;"
                    " SET auto_explain.log_buffers = on; SET auto_explain.log_wal = on;"
                    " SET auto_explain.log_triggers = on; SET auto_explain.log_nested_statements = on;"
                    " SET auto_explain.log_level = notice; SET client_min_messages = notice")

            async def explain_off(conn: asyncpg.Connection) -> None:
                conn.remove_log_listener(listener)

            def listener(_conn: Any, message: Any) -> None:
                notices.append(message.message)

            pool.on_acquire, pool.on_release = explain_on, explain_off
            await writer.write(_batch(size))
            print(f"\nauto_explain of one batch of {size} ({len(notices)} statements, nested included):")
            for message in notices:
                print(message.rstrip())
                print("-" * 100)
        await database.close()
        await admin.close()
    finally:
        pg.destroy()
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=400)
    parser.add_argument("--size", type=int, default=16)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--signals", type=int, help="signals per batch (default: one message in four)")
    parser.add_argument("--seconds", type=float, default=4.0, help="of each throughput run")
    parser.add_argument("--no-explain", dest="explain", action="store_false")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
