"""Chunk exclusion on TimescaleDB, read from the plans (issue 14).

A database with six years of history (many chunks per hypertable) on a TimescaleDB server of
this module's own; each check runs the statement the API runs, under EXPLAIN ANALYZE (or, for a
whole ingest write and the functions it calls, under auto_explain with nested statements), and
counts the chunks the plan read: a scan node on a chunk that was executed at least once. Both
plan kinds are checked where a statement is prepared: a custom plan (TimescaleDB excludes the
chunks while planning) and a generic one (excluded at executor start or at run time), since
asyncpg prepares every statement and PostgreSQL may switch to the generic plan after five runs.

Without the TimescaleDB build (tests/support/timescale.py) the module is skipped with the reason;
`test_plain_postgresql_plans_use_the_indexes` checks the same statements on the suite's own server
(plain PostgreSQL, or TimescaleDB in CI's second pass) read by index, never by a whole-table scan.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import asyncpg
import msgspec
import pytest

from ingest_api.ingest import sql as ingest_sql
from ingest_api.ingest.validation import validate
from ingest_api.ingest.writer import IngestWriter
from ingest_api.settings import WriterSettings
from ingest_api.signals import queries
from ingest_api.signals.paging import Cursor, Filters, micros
from tests.support import db, timescale
from ts_ops.migrations import apply_migrations

CHANNEL = -1001649127710
START = datetime(2020, 1, 1, tzinfo=timezone.utc)
YEARS = 6
PER_DAY = 24  # one message an hour: enough rows per chunk, quick to seed
# Just after the history's last message: where a live write lands.
LIVE = START + timedelta(hours=YEARS * 365 * PER_DAY) + timedelta(days=1)
SIGNAL = "🟢Swing Trade\nAtivo: VALE3\nCompra: 60,00 a 61,00\nAlvo 1: 65,00\nAlvo final: 70,00\nStop: 55,00"
_CHUNK = re.compile(r"^_hyper_\d+_\d+_chunk$")
_encoder = msgspec.json.Encoder()

# Six years of history straight into the tables (the write path is what the tests below check):
# one message an hour, every fourth a signal, each signal followed 2 hours later by a follow-up.
SEED = """
INSERT INTO tp_capital.forwarded_messages (channel_id, message_id, original_timestamp, message_text)
SELECT $1::bigint, n, $2::timestamptz + n * interval '1 hour',
       CASE WHEN n % 4 = 0 THEN 'Ativo: PETR4' WHEN n % 4 = 2 THEN 'PETR4 ALVO 1 ATINGIDO' ELSE 'bom dia ' || n END
FROM generate_series(1, $3::int) n;
INSERT INTO tp_capital.message_dates (channel_id, message_id, original_timestamp)
SELECT channel_id, message_id, original_timestamp FROM tp_capital.forwarded_messages;
INSERT INTO tp_capital.message_revisions (channel_id, message_id, original_timestamp, revision_date, message_text)
SELECT channel_id, message_id, original_timestamp, original_timestamp, message_text FROM tp_capital.forwarded_messages;
INSERT INTO tp_capital.tp_capital_signals (ts, channel, signal_type, asset, raw_message, channel_id, message_id,
                                           message_date, revision_date)
SELECT floor(extract(epoch FROM original_timestamp) * 1000)::bigint, 'TP Capital', 'Swing Trade',
       'ASSET' || (message_id % 50), message_text, channel_id, message_id, original_timestamp, original_timestamp
FROM tp_capital.forwarded_messages WHERE message_id % 4 = 0;
INSERT INTO tp_capital.signal_events (signal_id, event_type, target_number, raw_message, channel_id, message_id,
                                      message_date, asset, revision_date)
SELECT s.id, CASE WHEN s.message_id % 8 = 0 THEN 'stop_hit' ELSE 'target_hit' END, 1, 'x', s.channel_id,
       s.message_id + 2, s.message_date + interval '2 hours', s.asset, s.message_date + interval '2 hours'
FROM tp_capital.tp_capital_signals s;
"""


@pytest.fixture(scope="module")
def timescale_url() -> Iterator[str]:
    if timescale.script() is None:
        pytest.skip(timescale.missing_reason())
    with timescale.running_server(prefix="tspg-chunks-") as server:
        yield server.url


async def _seed_history(timescale_url: str) -> str:
    async with db.connection(timescale_url) as admin:
        await admin.execute("CREATE DATABASE history")
    url = db.with_database(timescale_url, "history")
    async with db.connection(url) as conn:
        await apply_migrations(conn, report=lambda _line: None)
        await conn.execute(SEED.replace("$1::bigint", str(CHANNEL)).replace("$2::timestamptz", f"'{START.isoformat()}'::timestamptz")
                           .replace("$3::int", str(YEARS * 365 * PER_DAY)))
        await conn.execute("ANALYZE")
    return url


@pytest.fixture(scope="module")
def history_url(timescale_url: str) -> str:
    return asyncio.run(_seed_history(timescale_url))


@pytest.fixture
async def conn(history_url: str) -> AsyncIterator[asyncpg.Connection]:
    async with db.connection(history_url) as connection:
        yield connection


def _plan_nodes(plan: Any) -> Iterator[dict[str, Any]]:
    """Every node of an EXPLAIN (FORMAT JSON) plan, parents before children, in plan order."""
    if isinstance(plan, dict):
        if "Node Type" in plan:
            yield plan
        for value in plan.values():
            yield from _plan_nodes(value)
    elif isinstance(plan, list):
        for value in plan:
            yield from _plan_nodes(value)


def _chunks(plan: Any, executed_only: bool = True) -> list[str]:
    """Chunk relations the plan scanned (executed at least once), in plan order."""
    return [node["Relation Name"] for node in _plan_nodes(plan)
            if isinstance(node.get("Relation Name"), str) and _CHUNK.match(node["Relation Name"])
            and (not executed_only or node.get("Actual Loops", 1) > 0)]


async def _explain(conn: asyncpg.Connection, statement: str, *args: Any, generic: bool = False) -> Any:
    async with conn.transaction():
        await conn.execute(f"SET LOCAL plan_cache_mode = {'force_generic_plan' if generic else 'force_custom_plan'}")
        raw = await conn.fetchval(f"EXPLAIN (ANALYZE, FORMAT JSON) {statement}", *args)
        # Rolled back: an UPDATE explained here changes nothing.
        raise _Rollback(json.loads(raw) if isinstance(raw, str) else raw)


class _Rollback(Exception):
    def __init__(self, plan: Any) -> None:
        super().__init__("rolled back")
        self.plan = plan


async def explain(conn: asyncpg.Connection, statement: str, *args: Any, generic: bool = False) -> Any:
    try:
        await _explain(conn, statement, *args, generic=generic)
    except _Rollback as done:
        return done.plan
    raise AssertionError("unreachable")


async def chunk_count(conn: asyncpg.Connection, table: str) -> int:
    return await conn.fetchval("SELECT count(*) FROM timescaledb_information.chunks "
                               "WHERE hypertable_schema = 'tp_capital' AND hypertable_name = $1", table)


async def chunk_of(conn: asyncpg.Connection, table: str, moment: datetime) -> str:
    return await conn.fetchval("SELECT chunk_name FROM timescaledb_information.chunks "
                               "WHERE hypertable_schema = 'tp_capital' AND hypertable_name = $1 "
                               "AND range_start <= $2 AND $2 < range_end", table, moment)


def _ms(moment: datetime) -> int:
    return micros(moment) // 1000


async def test_the_history_spans_many_chunks(conn: asyncpg.Connection) -> None:
    # 90-day message chunks and 365-day signal chunks (006) over six years.
    assert await chunk_count(conn, "forwarded_messages") >= 24
    assert await chunk_count(conn, "tp_capital_signals") >= 6


@pytest.mark.parametrize("generic", [False, True], ids=["custom-plan", "generic-plan"])
async def test_a_one_week_signals_range_reads_one_chunk(conn: asyncpg.Connection, generic: bool) -> None:
    week = datetime(2023, 3, 6, tzinfo=timezone.utc)
    filters = Filters(limit=100, from_ms=_ms(week), to_ms=_ms(week + timedelta(days=7)) - 1)
    statement, args = queries.list_signals_query(filters)
    plan = await explain(conn, statement, *args, generic=generic)
    assert set(_chunks(plan)) == {await chunk_of(conn, "tp_capital_signals", week)}
    # And it answers what the old `ts` filter answered, in the same order.
    rows = await conn.fetch(statement, *args)
    old = await conn.fetch("SELECT id FROM tp_capital.tp_capital_signals WHERE deleted_at IS NULL "
                           "AND ts >= $1 AND ts <= $2 ORDER BY ts DESC, id DESC LIMIT 101", filters.from_ms,
                           filters.to_ms)
    assert [r["id"] for r in rows] == [r["id"] for r in old] and len(rows) == 7 * PER_DAY // 4


@pytest.mark.parametrize("generic", [False, True], ids=["custom-plan", "generic-plan"])
async def test_the_default_signals_page_reads_the_newest_chunk_only(conn: asyncpg.Connection, generic: bool) -> None:
    statement, args = queries.list_signals_query(Filters(limit=100))
    plan = await explain(conn, statement, *args, generic=generic)
    # The chunks holding the page's 101 rows, newest first (one, or two when the newest chunk
    # has fewer rows than a page), and no other.
    dates = [r["message_date"] for r in await conn.fetch(statement, *args)]
    assert _chunks(plan) == list(dict.fromkeys([await chunk_of(conn, "tp_capital_signals", d) for d in dates]))
    assert len(_chunks(plan)) <= 2 < await chunk_count(conn, "tp_capital_signals")


async def test_a_cursor_page_starts_in_the_cursors_chunk(conn: asyncpg.Connection) -> None:
    at = datetime(2022, 6, 1, tzinfo=timezone.utc)
    row = await conn.fetchrow("SELECT id, ts, message_date FROM tp_capital.tp_capital_signals "
                              "WHERE message_date >= $1 ORDER BY message_date LIMIT 1", at)
    for cursor in (Cursor(id=row["id"], date=row["message_date"]), Cursor(id=row["id"], ts=row["ts"])):
        statement, args = queries.list_signals_query(Filters(limit=100, cursor=cursor))
        plan = await explain(conn, statement, *args, generic=True)
        assert _chunks(plan) == [await chunk_of(conn, "tp_capital_signals", row["message_date"] - timedelta(days=1))]
        ids = [r["id"] for r in await conn.fetch(statement, *args)]
        old = await conn.fetch("SELECT id FROM tp_capital.tp_capital_signals WHERE (ts, id) < ($1, $2) "
                               "ORDER BY ts DESC, id DESC LIMIT 101", row["ts"], row["id"])
        assert ids == [r["id"] for r in old]


@pytest.mark.parametrize("generic", [False, True], ids=["custom-plan", "generic-plan"])
async def test_a_one_week_messages_range_reads_one_chunk(conn: asyncpg.Connection, generic: bool) -> None:
    week = datetime(2021, 2, 1, tzinfo=timezone.utc)
    statement, args = queries.list_messages_query(
        Filters(limit=100, from_ms=_ms(week), to_ms=_ms(week + timedelta(days=7)) - 1))
    plan = await explain(conn, statement, *args, generic=generic)
    assert set(_chunks(plan)) == {await chunk_of(conn, "forwarded_messages", week)}


@pytest.mark.parametrize("generic", [False, True], ids=["custom-plan", "generic-plan"])
async def test_point_lookups_read_one_chunk(conn: asyncpg.Connection, generic: bool) -> None:
    signal = await conn.fetchrow("SELECT id, message_date, ingested_at FROM tp_capital.tp_capital_signals "
                                 "WHERE message_date >= '2021-07-01' ORDER BY message_date LIMIT 1")
    home = await chunk_of(conn, "tp_capital_signals", signal["message_date"])
    # GET /signals/{id}: a function (stored_signal) reads the row; every statement it ran, nested
    # ones included, planned and read that one chunk only.
    for _ in range(7):  # past the five custom plans: the generic plan too
        async with traced(conn) as plans:
            assert (await conn.fetchrow(queries.GET_SIGNAL, signal["id"]))["id"] == signal["id"]
    assert {name for plan in plans for name in _chunks(plan, executed_only=False)} == {home}
    for statement, args in (
        (queries.DELETE_SIGNAL, [signal["id"]]),  # explained in a transaction rolled back
        (queries.FIND_BY_INGESTED_AT, [signal["ingested_at"], signal["ingested_at"] + timedelta(microseconds=1)]),
        (queries.DELETE_ONE, [signal["id"], signal["message_date"]]),
    ):
        plan = await explain(conn, statement, *args, generic=generic)
        assert _chunks(plan) == [home], statement


async def test_the_breakeven_price_of_listed_events_reads_the_signals_chunk(conn: asyncpg.Connection) -> None:
    event = await conn.fetchrow("SELECT e.id, e.signal_id, e.message_date FROM tp_capital.signal_events e "
                                "WHERE e.message_date >= '2024-02-01' ORDER BY e.message_date LIMIT 1")
    await conn.execute("UPDATE tp_capital.signal_events SET breakeven = true, event_type = 'stop_moved' "
                       "WHERE id = $1", event["id"])
    try:
        # The page that starts with that event (a cursor just after it).
        plan = await explain(conn, queries.LIST_EVENTS, CHANNEL, False, _ms(event["message_date"]) + 1, 0, 5)
        date = await conn.fetchval("SELECT message_date FROM tp_capital.signal_keys WHERE id = $1", event["signal_id"])
        assert _chunks(plan) == [await chunk_of(conn, "tp_capital_signals", date)]
    finally:
        await conn.execute("UPDATE tp_capital.signal_events SET breakeven = false, event_type = 'target_hit' "
                           "WHERE id = $1", event["id"])


# -- one ingest write, with every statement it runs (nested ones too) ------------------------

class _OneConnection:
    """What IngestWriter needs of a Database: a pool handing out this one connection."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.pool = self
        self._conn = conn

    @contextlib.asynccontextmanager
    async def acquire(self) -> AsyncIterator[asyncpg.Connection]:
        yield self._conn


@contextlib.asynccontextmanager
async def traced(conn: asyncpg.Connection) -> AsyncIterator[list[Any]]:
    """The plans of every statement run on `conn` inside the block, nested ones (in functions)
    included: auto_explain, its log sent to this client."""
    plans: list[Any] = []

    def collect(_conn: Any, message: Any) -> None:
        text = message.message
        if "plan:" in text:
            plans.append(json.loads(text.split("plan:", 1)[1]))

    await conn.execute("LOAD 'auto_explain'")
    for setting in ("auto_explain.log_min_duration = 0", "auto_explain.log_analyze = on",
                    "auto_explain.log_nested_statements = on", "auto_explain.log_format = json",
                    "auto_explain.log_timing = off", "client_min_messages = log"):
        await conn.execute(f"SET {setting}")
    conn.add_log_listener(collect)
    try:
        yield plans
    finally:
        conn.remove_log_listener(collect)
        await conn.execute("SET auto_explain.log_min_duration = -1")
        await conn.execute("RESET client_min_messages")


async def _traced_write(conn: asyncpg.Connection, payloads: list[dict[str, Any]]) -> list[Any]:
    """Write `payloads` through the ingest writer; the plans of every statement it ran."""
    async with traced(conn) as plans:
        writer = IngestWriter(_OneConnection(conn), WriterSettings())  # type: ignore[arg-type]
        results = await writer.write([validate(_encoder.encode(p)) for p in payloads])
        assert all(r.stored for r in results), results
    return plans


def _payload(message_id: int, moment: datetime, text: str) -> dict[str, Any]:
    return {"channelId": str(CHANNEL), "messageId": message_id, "text": text, "timestamp": moment.isoformat()}


async def test_one_ingest_write_reads_only_the_chunks_of_its_date(conn: asyncpg.Connection) -> None:
    # A live write: after the history's last message (a message dated inside the history relinks
    # its channel from that date on, which reads what came after it, by design: 008).
    when = LIVE + timedelta(hours=1)
    home = {await chunk_of(conn, table, when) for table in ("forwarded_messages", "message_revisions",
                                                              "tp_capital_signals")}
    for message_id, offset, text in ((900_001, 0, SIGNAL), (900_002, 1, "VALE3 ALVO 1 ATINGIDO ✅ +8%")):
        plans = await _traced_write(conn, [_payload(message_id, when + timedelta(minutes=offset), text)])
        assert plans, "auto_explain logged no plan"
        read = {name for plan in plans for name in _chunks(plan)}
        assert read <= home, f"chunks read beyond the message's date: {sorted(read - home)}"
        # And planned: no statement of the write opened another chunk (the ticker lookup of the
        # follow-up may plan older signal chunks it then skips at run time: it reads back in time).
        planned = {name for plan in plans for name in _chunks(plan, executed_only=False)
                   if "s.asset = e.asset" not in plan.get("Query Text", "")}
        assert planned <= home, f"chunks planned beyond the message's date: {sorted(planned - home)}"
    event = await conn.fetchrow("SELECT e.event_type, s.status FROM tp_capital.signal_events e "
                                "JOIN tp_capital.tp_capital_signals s ON s.id = e.signal_id "
                                "WHERE e.channel_id = $1 AND e.message_id = 900002", CHANNEL)
    assert dict(event) == {"event_type": "target_hit", "status": "target_1_hit"}


async def test_the_tombstone_check_touches_no_hypertable_when_nothing_was_deleted(conn: asyncpg.Connection) -> None:
    when = LIVE + timedelta(hours=2)
    plans = await _traced_write(conn, [_payload(900_101, when, "bom dia")])
    texts = [json.dumps(plan) for plan in plans]
    check = [plan for plan, text in zip(plans, texts) if "message_tombstones x" in text]
    assert check, "the tombstone check ran no statement"
    # It read the plain tombstones table, found nothing, and planned no chunk of any hypertable.
    assert all(_chunks(plan, executed_only=False) == [] for plan in check)
    assert not any("UPDATE tp_capital.forwarded_messages" in text for text in texts)
    assert await conn.fetchval("SELECT count(*) FROM tp_capital.forwarded_messages WHERE channel_id = $1 "
                               "AND message_id = 900101 AND original_timestamp = $2", CHANNEL, when) == 1


async def test_a_tombstoned_message_is_marked_in_its_own_chunks(conn: asyncpg.Connection) -> None:
    when = LIVE + timedelta(hours=3)
    await conn.execute(ingest_sql.INSERT_TOMBSTONES, [CHANNEL], [900_201], [when + timedelta(hours=1)])
    home = {await chunk_of(conn, table, when) for table in ("forwarded_messages", "message_revisions",
                                                              "tp_capital_signals")}
    plans = await _traced_write(conn, [_payload(900_201, when, SIGNAL.replace("VALE3", "BBAS3"))])
    read = {name for plan in plans for name in _chunks(plan)}
    assert read <= home, sorted(read - home)
    row = await conn.fetchrow("SELECT f.deleted_at AS message, s.deleted_at AS signal "
                              "FROM tp_capital.forwarded_messages f JOIN tp_capital.tp_capital_signals s "
                              "USING (channel_id, message_id) WHERE f.channel_id = $1 AND f.message_id = 900201",
                              CHANNEL)
    assert row["message"] == row["signal"] == when + timedelta(hours=1)


# -- plain PostgreSQL (or whatever server the suite runs on): the same statements, by index --

def _node_types(plan: Any) -> list[tuple[str, str | None]]:
    return [(node["Node Type"], node.get("Relation Name")) for node in _plan_nodes(plan)]


async def test_plain_postgresql_plans_use_the_indexes(database_url: str) -> None:
    async with db.connection(database_url) as conn:
        # Two years, a message every 2 hours: enough rows that a whole-table scan would show.
        await conn.execute(SEED.replace("$1::bigint", str(CHANNEL)).replace("$2::timestamptz", f"'{START.isoformat()}'::timestamptz")
                           .replace("$3::int", str(2 * 365 * 24)).replace("interval '1 hour'", "interval '2 hours'"))
        await conn.execute("ANALYZE")
        signal = await conn.fetchrow("SELECT id, message_date, ingested_at FROM tp_capital.tp_capital_signals "
                                     "ORDER BY message_date LIMIT 1 OFFSET 500")
        week = datetime(2021, 3, 1, tzinfo=timezone.utc)
        checks = [
            queries.list_signals_query(Filters(limit=100)),
            queries.list_signals_query(Filters(limit=100, from_ms=_ms(week), to_ms=_ms(week + timedelta(days=7)))),
            queries.list_signals_query(Filters(limit=100, cursor=Cursor(id=signal["id"], date=signal["message_date"]))),
            queries.list_messages_query(Filters(limit=100)),
            queries.list_messages_query(Filters(limit=100, from_ms=_ms(week), to_ms=_ms(week + timedelta(days=7)))),
            (queries.GET_SIGNAL, [signal["id"]]),
            (queries.DELETE_SIGNAL, [signal["id"]]),
            (queries.FIND_BY_INGESTED_AT, [signal["ingested_at"], signal["ingested_at"] + timedelta(milliseconds=1)]),
            (ingest_sql.APPLY_TOMBSTONES, [[CHANNEL], [signal["id"]]]),
        ]
        for statement, args in checks:
            nodes = _node_types(await explain(conn, statement, *args))
            scanned = [relation for kind, relation in nodes if kind == "Seq Scan"]
            # (A chunk of a few rows may well be read whole: the TimescaleDB checks above count chunks.)
            assert not [r for r in scanned if r in ("tp_capital_signals", "forwarded_messages", "signal_keys",
                                                    "message_tombstones", "message_dates")], (statement, nodes)
            # A page comes in index order, never sorted. (On TimescaleDB the planner may read a
            # week from the hypertable's own message_date index and sort those few rows: fine.)
            on_chunks = any(relation and relation.startswith("_hyper_") for _, relation in nodes)
            if "LIMIT" in statement and not on_chunks:
                assert "Sort" not in [kind for kind, _ in nodes], (statement, nodes)
        assert (await conn.fetchrow(queries.GET_SIGNAL, signal["id"]))["id"] == signal["id"]
