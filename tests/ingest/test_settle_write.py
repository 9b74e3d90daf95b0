"""What a write runs after its rows have committed (tp_capital.settle_write, migration 023):
tombstones, relink and outcomes in one statement, with the same results as the two statements it
replaced (still run on a database without 023)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone

import msgspec
import pytest
from prometheus_client import REGISTRY

from ingest_api.db import Database
from ingest_api.ingest.validation import validate
from ingest_api.ingest.writer import IngestWriter
from ingest_api.settings import WriterSettings
from tests.support.db import connection
from ts_runtime.settings import DatabaseSettings

CHANNEL = -4_200_000_023
T0 = datetime(2025, 11, 3, 13, 0, tzinfo=timezone.utc)
SIGNAL = "🟢Swing Trade\nAtivo: QSETL11\nCompra: 1,04 a 1,06\nAlvo 1: 1,15\nAlvo 2: 2,15\nAlvo final: 3,50\nStop: 0,70"
TARGET = "QSETL11 ALVO 1 ATINGIDO ✅\n+17,02%"
_encoder = msgspec.json.Encoder()


def _item(message_id: int, text: str, minutes: int):
    return validate(_encoder.encode({"channelId": str(CHANNEL), "messageId": message_id, "text": text,
                                     "timestamp": (T0 + timedelta(minutes=minutes)).isoformat()}))


@contextlib.asynccontextmanager
async def _writer(database_url: str) -> AsyncIterator[IngestWriter]:
    database = Database(DatabaseSettings(url=database_url))
    await database.open()
    try:
        yield IngestWriter(database, WriterSettings(max_batch=500, max_in_flight=1))
    finally:
        await database.close()


def _outcomes_counted(outcome: str) -> float:
    return REGISTRY.get_sample_value("api_signal_outcomes_total", {"outcome": outcome}) or 0.0


@contextlib.asynccontextmanager
async def _without_settle_write(conn, hide: bool) -> AsyncIterator[None]:
    signature = "(bigint[], bigint[], bigint[], timestamptz[], bigint[])"
    if hide:  # a database migration 023 has not reached: the writer runs the two statements it merged
        await conn.execute(f"ALTER FUNCTION tp_capital.settle_write{signature} RENAME TO settle_write_hidden")
    try:
        yield
    finally:
        if hide:
            await conn.execute(f"ALTER FUNCTION tp_capital.settle_write_hidden{signature} RENAME TO settle_write")


@pytest.mark.parametrize("hide", [False, True], ids=["one statement (023)", "without 023"])
async def test_a_tombstone_seen_after_the_commit_is_applied_and_relinked(database_url: str, hide: bool) -> None:
    async with connection(database_url) as conn, _writer(database_url) as writer, _without_settle_write(conn, hide):
        counted = _outcomes_counted("target_hit")
        results = await writer.write([_item(1, SIGNAL, 0), _item(2, TARGET, 60), _item(3, "bom dia", 61)])
        assert [r.status for r in results] == ["stored"] * 3
        signal = await conn.fetchrow("SELECT id, status FROM tp_capital.tp_capital_signals WHERE channel_id = $1",
                                     CHANNEL)
        assert signal["status"] == "target_1_hit"  # relinked and refreshed after the insert
        assert _outcomes_counted("target_hit") == counted + 1  # the outcome recorded and counted once

        # A deletion whose own write committed while these messages' write was running: its
        # tombstone is on record, but neither statement saw the other's rows. The next write
        # touching the messages (here the gateway's redelivery) applies it.
        deleted_at = T0 + timedelta(hours=5)
        await conn.execute("INSERT INTO tp_capital.message_tombstones (channel_id, message_id, deleted_at) "
                           "VALUES ($1, 2, $2), ($1, 3, $2)", CHANNEL, deleted_at)
        results = await writer.write([_item(2, TARGET, 60), _item(3, "bom dia", 61)])
        assert [r.status for r in results] == ["duplicate"] * 2

        messages = await conn.fetch("SELECT message_id, deleted_at FROM tp_capital.forwarded_messages "
                                    "WHERE channel_id = $1 ORDER BY message_id", CHANNEL)
        assert [(r["message_id"], r["deleted_at"]) for r in messages] == [(1, None), (2, deleted_at), (3, deleted_at)]
        event = await conn.fetchrow("SELECT signal_id, deleted_at FROM tp_capital.signal_events WHERE channel_id = $1",
                                    CHANNEL)
        # The deleted follow-up is unlinked by the relink of the same statement, and the signal
        # it had moved is open again; the outcome stays counted once (a counter never goes down).
        assert dict(event) == {"signal_id": None, "deleted_at": deleted_at}
        assert await conn.fetchval("SELECT status FROM tp_capital.tp_capital_signals WHERE id = $1",
                                   signal["id"]) == "open"
        assert _outcomes_counted("target_hit") == counted + 1


@pytest.mark.parametrize("hide", [False, True], ids=["one statement (023)", "without 023"])
async def test_deleting_a_follow_up_unlinks_it_and_reopens_its_signal(database_url: str, hide: bool) -> None:
    # The relink here comes from the tombstone alone: a deletion asks for none itself.
    async with connection(database_url) as conn, _writer(database_url) as writer, _without_settle_write(conn, hide):
        await writer.write([_item(1, SIGNAL, 0), _item(2, TARGET, 60)])
        assert await conn.fetchval("SELECT status FROM tp_capital.tp_capital_signals WHERE channel_id = $1",
                                   CHANNEL) == "target_1_hit"
        delete = validate(_encoder.encode({"kind": "deleted", "channelId": str(CHANNEL), "messageId": 2}))
        assert [r.status for r in await writer.write([delete])] == ["stored"]
        event = await conn.fetchrow("SELECT signal_id, deleted_at IS NOT NULL AS deleted FROM tp_capital.signal_events "
                                    "WHERE channel_id = $1", CHANNEL)
        assert dict(event) == {"signal_id": None, "deleted": True}
        assert await conn.fetchval("SELECT status FROM tp_capital.tp_capital_signals WHERE channel_id = $1",
                                   CHANNEL) == "open"


async def test_a_signal_arriving_after_its_follow_up_is_linked_by_the_same_statement(database_url: str) -> None:
    async with connection(database_url) as conn, _writer(database_url) as writer:
        await writer.write([_item(2, TARGET, 60)])
        assert await conn.fetchval("SELECT signal_id FROM tp_capital.signal_events WHERE channel_id = $1",
                                   CHANNEL) is None
        counted = _outcomes_counted("target_hit")
        await writer.write([_item(1, SIGNAL, 0)])
        row = await conn.fetchrow("SELECT s.status, e.signal_id = s.id AS linked FROM tp_capital.tp_capital_signals s, "
                                  "tp_capital.signal_events e WHERE s.channel_id = $1 AND e.channel_id = $1", CHANNEL)
        assert dict(row) == {"status": "target_1_hit", "linked": True}
        assert _outcomes_counted("target_hit") == counted + 1


async def test_the_outcomes_query_keeps_its_generic_plan(database_url: str) -> None:
    # 023 plans record_outcomes once per connection (its custom plans cost 25 times its run). A
    # later CREATE OR REPLACE FUNCTION of it would silently drop that setting: it must say it again.
    async with connection(database_url) as conn:
        config = await conn.fetchval("SELECT proconfig FROM pg_proc WHERE oid = "
                                     "'tp_capital.record_outcomes(bigint[], timestamptz[])'::regprocedure")
        assert "plan_cache_mode=force_generic_plan" in (config or [])


async def test_a_deletion_waiting_for_a_relink_holds_no_row_of_that_channel(database_url: str) -> None:
    # A relink locks its channel, then updates the channel's events. A deletion's settle_write must
    # not have marked those events deleted (row locks) before it waits for that same channel lock:
    # the relink would then wait for it in turn (a deadlock, found after deadlock_timeout, retried).
    async with connection(database_url) as relink, connection(database_url) as other, _writer(database_url) as writer:
        await writer.write([_item(1, SIGNAL, 0), _item(2, TARGET, 60)])
        async with relink.transaction():
            await relink.execute("SELECT pg_advisory_xact_lock(71013, hashtext($1::bigint::text))", CHANNEL)
            delete = validate(_encoder.encode({"kind": "deleted", "channelId": str(CHANNEL), "messageId": 2}))
            deleting = asyncio.ensure_future(writer.write([delete]))
            for _ in range(500):  # until the deletion waits for the channel lock
                if await other.fetchval("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"):
                    break
                await asyncio.sleep(0.01)
            else:
                raise AssertionError("the deletion never waited for the channel lock")
            await other.execute("SET lock_timeout = '2s'")
            # What the relink would do next: update the follow-up's rows. Nothing holds them.
            await other.execute("UPDATE tp_capital.signal_events SET signal_id = signal_id "
                                "WHERE channel_id = $1 AND message_id = 2", CHANNEL)
            await other.execute("UPDATE tp_capital.forwarded_messages SET updated_at = updated_at "
                                "WHERE channel_id = $1 AND message_id = 2", CHANNEL)
        assert [r.status for r in await deleting] == ["stored"]
        event = await other.fetchrow("SELECT signal_id, deleted_at IS NOT NULL AS deleted FROM tp_capital.signal_events "
                                     "WHERE channel_id = $1", CHANNEL)
        assert dict(event) == {"signal_id": None, "deleted": True}
