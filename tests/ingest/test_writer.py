"""The coalescing writer on its own, against a real PostgreSQL."""

from __future__ import annotations

import asyncio

import asyncpg
import msgspec
import pytest
from prometheus_client import REGISTRY

from ingest_api.db import Database, DatabaseUnavailable
from ingest_api.ingest.validation import validate
from ingest_api.ingest.writer import IngestWriter
from ingest_api.settings import WriterSettings
from ts_runtime.settings import DatabaseSettings
from tests.support.db import connection

_encoder = msgspec.json.Encoder()


def _item(message_id: int, text: str = "hello"):
    return validate(_encoder.encode({"channelId": "-42", "messageId": message_id, "text": text,
                                     "timestamp": "2025-10-07T12:00:00Z"}))


@pytest.fixture
async def writer(database_url: str):
    database = Database(DatabaseSettings(url=database_url))
    await database.open()
    writer = IngestWriter(database, WriterSettings(max_batch=500, max_in_flight=1))
    writer.start()
    yield writer
    await writer.stop()
    await database.close()


async def test_concurrent_submissions_are_coalesced(writer: IngestWriter, database_url: str) -> None:
    statements_before = REGISTRY.get_sample_value("api_ingest_coalesced_batch_size_count") or 0
    results = await asyncio.gather(*(writer.submit(_item(i)) for i in range(1, 201)))
    assert [r.status for r in results] == ["stored"] * 200
    # 200 concurrent submissions went out in a handful of statements, not 200.
    assert (REGISTRY.get_sample_value("api_ingest_coalesced_batch_size_count") or 0) - statements_before <= 3
    async with connection(database_url) as conn:
        assert await conn.fetchval("SELECT count(*) FROM tp_capital.forwarded_messages") == 200


async def test_a_failing_message_does_not_fail_the_others_it_was_coalesced_with(
        writer: IngestWriter, database_url: str) -> None:
    # A message the database refuses for a reason validation cannot see (here a trigger).
    async with connection(database_url) as conn:
        await conn.execute("""
            CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF NEW.message_text = 'poison' THEN RAISE EXCEPTION 'poison refused'; END IF;
                RETURN NEW;
            END $$;
            CREATE TRIGGER refuse_poison BEFORE INSERT ON tp_capital.forwarded_messages
                FOR EACH ROW EXECUTE FUNCTION refuse_poison();
        """)
        outcomes = await asyncio.gather(
            *(writer.submit(_item(i, "poison" if i == 5 else f"m{i}")) for i in range(1, 11)),
            return_exceptions=True,
        )
        assert isinstance(outcomes[4], asyncpg.RaiseError)
        assert [o.status for i, o in enumerate(outcomes) if i != 4] == ["stored"] * 9
        assert await conn.fetchval("SELECT count(*) FROM tp_capital.forwarded_messages") == 9


async def test_stop_answers_waiting_submissions_unavailable(database_url: str) -> None:
    # Submissions still queued at shutdown (the writer's loop no longer running) get "unavailable"
    # (the client retries), not a crash of the shutdown itself.
    database = Database(DatabaseSettings(url=database_url))
    await database.open()
    writer = IngestWriter(database, WriterSettings(max_batch=500, max_in_flight=1))
    try:
        waiting = [asyncio.ensure_future(writer.submit(_item(i))) for i in (9001, 9002)]
        await asyncio.sleep(0)  # both queued; the loop was never started
        await writer.stop()
        for task in waiting:
            with pytest.raises(DatabaseUnavailable):
                await task
    finally:
        await database.close()
