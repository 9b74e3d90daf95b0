"""Batch ingest with and without the unique-millisecond ingested_at (migration 015), side by side.

    uv run python bench/ingested_at_bench.py [--duration 10] [--rounds 3]

One embedded PostgreSQL, one ingest API under granian, the load of bench/ingest_bench.py's batch
step (`POST /ingest/batch`, 1,000 messages per request, 2 clients, one message in four a signal).
Between rounds only the column default changes, so both variants run on the same machine minutes
apart, alternating (before, after, before, after, ...) to spread the machine's drift over both:

- before: `clock_timestamp()` (migration 004: distinct per row, but rows share milliseconds);
- after:  `tp_capital.next_signal_ingested_at()` (015: a distinct millisecond per signal).

It prints messages/s per round and the median of each variant, plus how many signals of the
"after" rounds share a millisecond (must be 0). Asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).parent))
import ingest_bench  # noqa: E402 - the load generator and API launcher of the main benchmark

from ts_common.embedded_pg import EmbeddedPostgres  # noqa: E402
from ts_common.migrations import migrate_url  # noqa: E402

DEFAULTS = {
    "before": "clock_timestamp()",
    "after": "tp_capital.next_signal_ingested_at()",
}


async def set_default(url: str, expression: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f"ALTER TABLE tp_capital.tp_capital_signals ALTER COLUMN ingested_at SET DEFAULT {expression}")
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
            for name, expression in DEFAULTS.items():
                await set_default(pg.url, expression)
                first = await max_id(pg.url)
                rate = await ingest_bench.load_batch(port, args.batch_concurrency, args.duration)
                results[name].append(rate)
                sharing[name].append(await shared_milliseconds(pg.url, first))
                print(f"round {round_number} {name:<6} ({expression}): {rate:8.0f} messages/s", flush=True)
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
    after = statistics.median(results["after"])
    print(f"after / before: {after / statistics.median(results['before']):.2f}; "
          f"batch >= 15,000/s with 015: {'met' if after >= 15000 else 'NOT met'}")


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
