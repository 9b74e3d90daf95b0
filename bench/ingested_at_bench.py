"""Batch ingest with and without the unique-millisecond ingested_at (migration 010), side by side.

    uv run python bench/ingested_at_bench.py [--duration 10] [--rounds 3]

One embedded PostgreSQL, one ingest API under granian, the load of bench/ingest_bench.py's batch
step (`POST /ingest/batch`, 1,000 messages per request, 2 clients, one message in four a signal).
Between rounds only the column default (and its index) changes, so both variants run on the same
machine minutes apart, in the order before-after, after-before, ... so that the machine's drift
and the table's growth weigh on both alike:

- before: `clock_timestamp()` and no index on ingested_at (as after migration 004: distinct per
  row, but rows share milliseconds);
- after:  `tp_capital.next_signal_ingested_at()` and the ingested_at index (010: a distinct
  millisecond per signal).

It prints messages/s per round and the median of each variant, how many signals of each variant
share a millisecond (0 after), and, because batch throughput on a shared 2-core machine moves by
tens of percent from one round to the next, the database's own cost per signal row of each
variant (one INSERT of 20,000 signals, best of 5, alternating), which load moves much less.
Asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).parent))
import ingest_bench  # noqa: E402 - the load generator and API launcher of the main benchmark

from ts_ops.embedded_pg import EmbeddedPostgres  # noqa: E402
from ts_ops.migrations import migrate_url  # noqa: E402

DEFAULTS = {
    "before": "clock_timestamp()",
    "after": "tp_capital.next_signal_ingested_at()",
}
INDEX = "tp_capital.tp_capital_signals_ingested_at_idx"
SIGNAL_ROWS = """
INSERT INTO tp_capital.tp_capital_signals (ts, channel, signal_type, asset, raw_message, channel_id, message_id,
                                           message_date)
SELECT 0, 'TP Capital', 'Swing Trade', 'PETR4', 'Ativo: PETR4', $1::bigint, g, now() + g * interval '1 s'
FROM generate_series(1, $2::int) g
"""


async def set_variant(conn: asyncpg.Connection, name: str) -> None:
    await conn.execute(f"ALTER TABLE tp_capital.tp_capital_signals ALTER COLUMN ingested_at SET DEFAULT {DEFAULTS[name]}")
    if name == "before":
        await conn.execute(f"DROP INDEX IF EXISTS {INDEX}")
    else:
        await conn.execute(f"CREATE INDEX IF NOT EXISTS tp_capital_signals_ingested_at_idx "
                           "ON tp_capital.tp_capital_signals (ingested_at)")


async def set_default(url: str, name: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await set_variant(conn, name)
    finally:
        await conn.close()


async def cost_per_signal(url: str, rows: int = 20_000, tries: int = 5) -> dict[str, float]:
    """Microseconds per signal row of one large INSERT, per variant (best of `tries`, alternating)."""
    conn = await asyncpg.connect(url)
    best = {name: float("inf") for name in DEFAULTS}
    try:
        for attempt in range(tries):
            for name in DEFAULTS:
                await set_variant(conn, name)
                started = time.perf_counter()
                await conn.execute(SIGNAL_ROWS, -9_000_000 - attempt, rows)
                best[name] = min(best[name], (time.perf_counter() - started) / rows * 1e6)
                await conn.execute("DELETE FROM tp_capital.tp_capital_signals WHERE channel_id <= -9000000")
        return best
    finally:
        await conn.close()


async def shared_milliseconds(url: str, since_id: int) -> tuple[int, int]:
    """(signals stored after `since_id`, those among them sharing a millisecond with another)."""
    conn = await asyncpg.connect(url)
    try:
        row = await conn.fetchrow("""
            SELECT coalesce(sum(n), 0) AS signals, coalesce(sum(n) FILTER (WHERE n > 1), 0) AS sharing
            FROM (SELECT count(*) AS n FROM tp_capital.tp_capital_signals WHERE id > $1
                  GROUP BY date_trunc('milliseconds', ingested_at)) g""", since_id)
        return int(row["signals"]), int(row["sharing"])
    finally:
        await conn.close()


async def max_id(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval("SELECT coalesce(max(id), 0) FROM tp_capital.tp_capital_signals")
    finally:
        await conn.close()


async def main_async(args: argparse.Namespace) -> None:
    root = Path(tempfile.mkdtemp(prefix="tspg-bench-"))
    root.chmod(0o755)
    pg = EmbeddedPostgres(root / "data").start()
    api = None
    results: dict[str, list[float]] = {name: [] for name in DEFAULTS}
    sharing: dict[str, list[tuple[int, int]]] = {name: [] for name in DEFAULTS}
    try:
        await migrate_url(pg.url, report=lambda line: None)
        api, port = ingest_bench.start_api(pg.url, 1)
        await asyncio.sleep(0.5)
        await ingest_bench.load_batch(port, args.batch_concurrency, 2.0)  # warm-up
        for round_number in range(1, args.rounds + 1):
            order = list(DEFAULTS.items()) if round_number % 2 else list(reversed(DEFAULTS.items()))
            for name, expression in order:
                await set_default(pg.url, name)
                first = await max_id(pg.url)
                rate = await ingest_bench.load_batch(port, args.batch_concurrency, args.duration)
                results[name].append(rate)
                sharing[name].append(await shared_milliseconds(pg.url, first))
                print(f"round {round_number} {name:<6} ({expression}): {rate:8.0f} messages/s", flush=True)
        costs = await cost_per_signal(pg.url)
    finally:
        if api is not None:
            api.terminate()
            api.wait(10)
        pg.destroy()
        shutil.rmtree(root, ignore_errors=True)

    print()
    for name, expression in DEFAULTS.items():
        signals = sum(s for s, _ in sharing[name])
        shared = sum(n for _, n in sharing[name])
        print(f"{name:<6} median {statistics.median(results[name]):8.0f} messages/s "
              f"(rounds: {', '.join(f'{r:.0f}' for r in results[name])}); "
              f"{shared:,} of {signals:,} signals share a millisecond  [{expression}]")
    print(f"database cost per signal row (INSERT of 20,000, best of 5): before {costs['before']:.1f} µs, "
          f"after {costs['after']:.1f} µs (+{costs['after'] - costs['before']:.1f} µs; one message in four is a signal)")
    after = statistics.median(results["after"])
    print(f"after / before: {after / statistics.median(results['before']):.2f}; "
          f"batch >= 15,000/s with 010: {'met' if after >= 15000 else 'NOT met'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per round and variant (default 10)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-concurrency", type=int, default=2)
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
