"""Migration 010: every signal's ingested_at is its own millisecond, on plain PostgreSQL and on a
TimescaleDB hypertable; signals stored before it are spread without ever taking another's value.

The old dashboard deletes a signal by sending back its ingested_at at millisecond precision, so
two signals in one millisecond (the rows of one batch) could not be told apart.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import asyncpg
import pytest

from tests.support import db, timescale
from ts_ops.migrations import apply_migrations, default_migrations_dir

LOCK_KEY = 4005015  # the allocator's advisory lock (010)
T0 = datetime(2025, 10, 7, 12, 0, tzinfo=timezone.utc)

INSERT_SIGNALS = """
INSERT INTO tp_capital.tp_capital_signals (ts, channel, signal_type, asset, raw_message, channel_id, message_id,
                                           message_date)
SELECT 0, 'TP Capital', 'Swing Trade', 'PETR4', 'Ativo: PETR4', $1::bigint, g, $2::timestamptz + g * interval '1 s'
FROM generate_series($3::int, $4::int) g
"""
SHARED_MILLISECONDS = """
SELECT count(*) FROM (
    SELECT 1 FROM tp_capital.tp_capital_signals GROUP BY date_trunc('milliseconds', ingested_at) HAVING count(*) > 1
) shared
"""


async def insert(conn: asyncpg.Connection, channel: int, first: int, last: int) -> None:
    await conn.execute(INSERT_SIGNALS, channel, T0, first, last)


async def concurrent_batches(url: str, writers: int = 6, batches: int = 8, size: int = 50) -> int:
    """`writers` connections insert `batches` statements of `size` signals each, at the same time."""
    async def write(index: int, conn: asyncpg.Connection) -> None:
        for batch in range(batches):
            first = batch * size + 1
            await insert(conn, -100 - index, first, first + size - 1)

    async with contextlib.AsyncExitStack() as stack:
        conns = [await stack.enter_async_context(db.connection(url)) for _ in range(writers)]
        await asyncio.gather(*(write(i, c) for i, c in enumerate(conns)))
    return writers * batches * size


@pytest.fixture
async def conn(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    async with db.connection(database_url) as connection:
        yield connection


async def test_concurrent_batches_get_distinct_milliseconds(database_url: str, conn: asyncpg.Connection) -> None:
    stored = await concurrent_batches(database_url)
    assert await conn.fetchval("SELECT count(*) FROM tp_capital.tp_capital_signals") == stored
    assert await conn.fetchval(SHARED_MILLISECONDS) == 0
    # Whole milliseconds, so the old dashboard's value is the stored value.
    assert await conn.fetchval("SELECT count(*) FROM tp_capital.tp_capital_signals "
                               "WHERE ingested_at <> date_trunc('milliseconds', ingested_at)") == 0


async def test_values_follow_the_clock_after_an_idle_sequence(conn: asyncpg.Connection) -> None:
    # The allocator last handed out a value an hour ago (an idle night looks the same).
    await conn.execute("SELECT setval('tp_capital.signal_ingested_at_ms', $1)",
                       int((datetime.now(timezone.utc) - timedelta(hours=1)).timestamp() * 1000))
    before = datetime.now(timezone.utc)
    await insert(conn, -1, 1, 1)
    after = datetime.now(timezone.utc)
    value = await conn.fetchval("SELECT ingested_at FROM tp_capital.tp_capital_signals")
    assert before - timedelta(milliseconds=1) <= value <= after + timedelta(milliseconds=1)


async def test_an_open_transaction_holds_the_clock_back_but_never_repeats(database_url: str,
                                                                         conn: asyncpg.Connection) -> None:
    """While another transaction that took values is open, the sequence is not moved to the clock:
    values may lag it (documented), never repeat; once it ends, they rejoin the clock."""
    # The rows' chunk exists before the two transactions overlap: on a TimescaleDB hypertable, an
    # insert that needs a chunk another open transaction is creating waits for that one to end.
    await insert(conn, -5, 1, 1)
    await conn.execute("SELECT setval('tp_capital.signal_ingested_at_ms', $1)",
                       int((datetime.now(timezone.utc) - timedelta(hours=1)).timestamp() * 1000))
    async with db.connection(database_url) as other:
        async with other.transaction():
            await insert(other, -3, 1, 1)  # the first value moves the sequence to the clock...
            await other.execute("SELECT setval('tp_capital.signal_ingested_at_ms', $1)",  # ...put it back behind
                                int((datetime.now(timezone.utc) - timedelta(hours=1)).timestamp() * 1000))
            await insert(conn, -4, 1, 2)  # meanwhile: behind the clock, and not moved while `other` is open
            lagging = [r["ingested_at"] for r in await conn.fetch(
                "SELECT ingested_at FROM tp_capital.tp_capital_signals WHERE channel_id = -4 ORDER BY 1")]
            assert all(datetime.now(timezone.utc) - v > timedelta(minutes=59) for v in lagging)
            assert lagging[1] - lagging[0] == timedelta(milliseconds=1)
        await insert(conn, -4, 3, 3)  # `other` has committed: back to the clock
        latest = await conn.fetchval("SELECT max(ingested_at) FROM tp_capital.tp_capital_signals WHERE channel_id = -4")
        assert abs(latest - datetime.now(timezone.utc)) < timedelta(seconds=1)
        assert await conn.fetchval(SHARED_MILLISECONDS) == 0


async def test_a_burst_runs_ahead_one_millisecond_per_signal_then_rejoins_the_clock(conn: asyncpg.Connection) -> None:
    await insert(conn, -1, 1, 2000)  # one statement: far more than one signal per millisecond
    values = [r["ingested_at"] for r in await conn.fetch(
        "SELECT ingested_at FROM tp_capital.tp_capital_signals ORDER BY ingested_at")]
    steps = [b - a for a, b in zip(values, values[1:])]
    # One millisecond apart, except where the clock caught up mid-statement (a pause longer than the
    # lead built so far: a new TimescaleDB chunk, a busy machine): then the values jump to the clock.
    assert min(steps) == timedelta(milliseconds=1)
    assert sum(step == timedelta(milliseconds=1) for step in steps) >= 0.95 * len(steps)
    assert values[-1] > datetime.now(timezone.utc)  # ahead of the clock, by design (documented)
    # Once the clock has passed the last value handed out, new signals get the clock again.
    await asyncio.sleep((values[-1] - datetime.now(timezone.utc)).total_seconds() + 0.05)
    await insert(conn, -1, 2001, 2001)
    latest = await conn.fetchval("SELECT max(ingested_at) FROM tp_capital.tp_capital_signals")
    assert abs(latest - datetime.now(timezone.utc)) < timedelta(milliseconds=500)


async def test_a_cancelled_statement_does_not_keep_the_allocator_lock(database_url: str,
                                                                     conn: asyncpg.Connection) -> None:
    # A statement cancelled while it allocates (statement_timeout, a client giving up) must not
    # leave the advisory lock held by its connection: the sequence could never be moved to the
    # clock again. (A first version that took a session lock per value left it held after about
    # one cancel in ten here.)
    async with db.connection(database_url) as other:
        for _ in range(30):
            with pytest.raises(asyncpg.QueryCanceledError):
                async with conn.transaction():
                    await conn.execute("SET LOCAL statement_timeout = '3ms'")
                    await conn.execute("SELECT tp_capital.next_signal_ingested_at() FROM generate_series(1, 1000000)")
            assert await other.fetchval("SELECT pg_try_advisory_lock($1)", LOCK_KEY) is True
            assert await other.fetchval("SELECT pg_advisory_unlock($1)", LOCK_KEY) is True
        # The cancelled connection itself goes on inserting.
        await asyncio.wait_for(insert(conn, -2, 1, 10), 5)


async def test_signals_stored_before_010_move_to_free_milliseconds(empty_database_url: str, tmp_path: Path) -> None:
    """Shared milliseconds are spread, a value no other signal shared is kept, and no signal moves
    to a millisecond another signal had: a stale value finds its own signal or none."""
    before_010 = tmp_path / "sql"
    source = default_migrations_dir()
    for schema_dir in source.iterdir():
        target = before_010 / schema_dir.name
        target.mkdir(parents=True)
        for path in schema_dir.glob("*.sql"):
            if schema_dir.name != "tp_capital" or int(path.name[:3]) < 10:
                shutil.copy(path, target / path.name)
    async with db.connection(empty_database_url) as conn:
        await apply_migrations(conn, before_010)
        shared, neighbour, alone = (T0 + timedelta(microseconds=123_456), T0 + timedelta(milliseconds=124),
                                    T0 + timedelta(seconds=5, microseconds=7))
        await insert(conn, -1, 1, 4)  # one batch before 004: the same value four times
        await conn.execute("UPDATE tp_capital.tp_capital_signals SET ingested_at = $1", shared)
        await insert(conn, -1, 5, 5)
        await insert(conn, -1, 6, 6)
        await conn.execute("UPDATE tp_capital.tp_capital_signals SET ingested_at = $1 WHERE message_id = 5", neighbour)
        await conn.execute("UPDATE tp_capital.tp_capital_signals SET ingested_at = $1 WHERE message_id = 6", alone)
        original = {r["message_id"]: r["ingested_at"] for r in await conn.fetch(
            "SELECT message_id, ingested_at FROM tp_capital.tp_capital_signals")}

        await apply_migrations(conn, source)

        now = {r["message_id"]: r["ingested_at"] for r in await conn.fetch(
            "SELECT message_id, ingested_at FROM tp_capital.tp_capital_signals")}
    assert now[5] == neighbour and now[6] == alone  # unshared values are kept exactly
    moved = [now[i] for i in (1, 2, 3, 4)]
    millis = lambda moment: moment.replace(microsecond=moment.microsecond // 1000 * 1000)  # noqa: E731
    assert len({millis(v) for v in now.values()}) == 6  # every signal its own millisecond now
    # None of the moved signals took a millisecond any signal had before (.123, .124, 5.000).
    assert not {millis(v) for v in moved} & {millis(v) for v in original.values()}
    assert [v - T0 for v in moved] == [timedelta(milliseconds=ms) for ms in (125, 126, 127, 128)]


# -- the same on TimescaleDB ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def timescale_url() -> Iterator[str]:
    """A TimescaleDB server of this module's own (the shared build: tests/support/timescale.py)."""
    if timescale.script() is None:
        pytest.skip(timescale.missing_reason())
    with timescale.running_server() as server:
        yield server.url


async def test_on_a_timescaledb_hypertable(timescale_url: str) -> None:
    async with db.connection(timescale_url) as admin:
        await admin.execute("CREATE DATABASE tradingsystem")
    url = db.with_database(timescale_url, "tradingsystem")
    async with db.connection(url) as conn:
        await apply_migrations(conn)
        hypertables = {r["hypertable_name"] for r in await conn.fetch(
            "SELECT hypertable_name FROM timescaledb_information.hypertables WHERE hypertable_schema = 'tp_capital'")}
        assert "tp_capital_signals" in hypertables
        stored = await concurrent_batches(url)
        # Rows landed in several chunks (90-day chunks, message dates spread over months).
        await insert(conn, -200, 1, 3)
        await conn.execute("INSERT INTO tp_capital.tp_capital_signals (ts, channel, signal_type, asset, raw_message, "
                           "channel_id, message_id, message_date) VALUES (0, 'c', 'Swing Trade', 'VALE3', 'x', -201, 1, "
                           "'2024-01-01T00:00:00Z')")
        chunks = await conn.fetchval("SELECT count(*) FROM timescaledb_information.chunks "
                                     "WHERE hypertable_name = 'tp_capital_signals'")
        assert chunks >= 2
        assert await conn.fetchval("SELECT count(*) FROM tp_capital.tp_capital_signals") == stored + 4
        assert await conn.fetchval(SHARED_MILLISECONDS) == 0
