"""Properties of ingest under any delivery order (Hypothesis), through real HTTP.

The gateway may deliver any event any number of times, concurrently, in any order (retries,
replays, backfill). Whatever the schedule, the database must end up with exactly one row per
message, the text of its newest edit, every revision once, and deletions marked.

The client here behaves like the gateway on a 503 (`{"error": "Database connection failed"}`, with
Retry-After): it sends the same request again after a wait. The API answers 503 for what is
transient and safe to retry: a connection it could not open or a statement that timed out on a
loaded machine, and a deadlock between the writes of one message's new text and its edit that
recurred through the API's own three attempts (seen here: 3 deadlocks in ~750 examples, all
settled by those attempts). The waits are bounded (about 16 s in all, then the test fails), and
the 503s are counted (Hypothesis statistics: `--hypothesis-show-statistics`), so an API that
answered 503 for everything, or for a client's request, would still fail it.
"""

from __future__ import annotations

import asyncio
import itertools
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st

from tests.support.db import connection
from tests.support.ingest import Server, auth, start_server
from tests.support.live import own_postgres  # noqa: F401 (fixture)
from ts_ops.embedded_pg import EmbeddedPostgres
from ts_ops.migrations import migrate_url

T0 = datetime(2025, 10, 7, 17, 25, 59, tzinfo=timezone.utc)
_channels = itertools.count(1)
# Waits before sending a request the API answered 503 again (the gateway's schedule is 5 s, 10 s,
# 20 s and then a capped backoff, for ever; shorter here, and bounded).
RETRY_WAITS = (0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 4.0, 8.0)


async def post_like_the_gateway(client: httpx.AsyncClient, path: str, body: dict,
                                unavailable: list[str]) -> httpx.Response:
    """POST, and on a 503 the same request again after a wait; each 503's error is kept in `unavailable`."""
    for wait in (*RETRY_WAITS, None):
        response = await client.post(path, json=body)
        if response.status_code != 503 or wait is None:
            return response
        assert response.headers.get("Retry-After"), "a 503 from the API says when to retry"
        unavailable.append(response.json()["error"])
        await asyncio.sleep(wait)
    raise AssertionError("unreachable")


def _events(message_id: int, edits: int, deleted: bool, channel: str) -> list[dict]:
    base = {"channelId": channel, "messageId": message_id, "timestamp": T0.isoformat()}
    events = [{**base, "text": f"ATIVO: PETR4 COMPRA: {message_id},00 v0"}]
    for n in range(1, edits + 1):
        events.append({**base, "kind": "edited", "text": f"ATIVO: PETR4 COMPRA: {message_id},{n:02d} v{n}",
                       "editDate": (T0 + timedelta(minutes=n)).isoformat()})
    if deleted:
        events.append({"kind": "deleted", "channelId": channel, "messageId": message_id})
    return events


# A scenario: messages (edits per message, deleted?), then a delivery schedule over all their
# events: every event at least once, some repeated, shuffled, cut into waves sent concurrently,
# each wave's requests spread over /ingest and /ingest/batch.
scenarios = st.lists(st.tuples(st.integers(0, 2), st.booleans()), min_size=1, max_size=4).flatmap(
    lambda messages: st.tuples(
        st.just(messages),
        st.lists(st.integers(0, 50), max_size=12),  # extra deliveries (indices mod event count)
        st.randoms(use_true_random=False),
        st.lists(st.integers(1, 6), min_size=1, max_size=8),  # wave sizes
        st.lists(st.booleans(), min_size=1, max_size=8),  # batch or single, per wave
    )
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(scenario=scenarios)
def test_any_delivery_schedule_converges(server: Server, scenario) -> None:
    messages, extra, rnd, waves, batch_flags = scenario
    channel_id = -2_000_000_000_000 - next(_channels)  # a fresh channel per example
    channel = str(channel_id)
    events: list[dict] = []
    for message_id, (edits, deleted) in enumerate(messages, start=1):
        events.extend(_events(message_id, edits, deleted, channel))
    deliveries = list(events) + [events[i % len(events)] for i in extra]
    rnd.shuffle(deliveries)

    unavailable: list[str] = []

    async def deliver() -> list[dict]:
        results: list[dict] = []
        async with httpx.AsyncClient(base_url=server.url, headers=auth(), timeout=30) as client:
            def post(path: str, body: dict):
                return post_like_the_gateway(client, path, body, unavailable)

            position = 0
            for wave_number in itertools.count():
                size = waves[wave_number % len(waves)]
                wave = deliveries[position:position + size]
                if not wave:
                    break
                position += size
                if batch_flags[wave_number % len(batch_flags)]:
                    half = len(wave) // 2
                    requests = [post("/ingest/batch", {"messages": wave[:half] or wave})]
                    requests += [post("/ingest", e) for e in wave[half:]] if half else []
                else:
                    requests = [post("/ingest", e) for e in wave]
                for response in await asyncio.gather(*requests):
                    assert response.status_code == 200, response.text
                    body = response.json()
                    results.extend(body["results"] if "results" in body else [body])
        return results

    async def scenario_run() -> None:
        results = await deliver()
        event(f"503 answers retried: {len(unavailable)}")
        if unavailable:
            note(f"the API answered 503 {len(unavailable)} time(s): {sorted(set(unavailable))}")
        assert set(unavailable) <= {"Database connection failed"}
        assert len(results) == len(deliveries)
        # Each distinct event is "stored" exactly once, every other delivery is a duplicate.
        assert sum(r["status"] == "stored" for r in results) <= len(events)
        assert all(r["status"] in ("stored", "duplicate") for r in results)
        async with connection(server.database_url) as conn:
            rows = await conn.fetch(
                "SELECT message_id, message_text, deleted_at IS NOT NULL AS deleted "
                "FROM tp_capital.forwarded_messages WHERE channel_id = $1 ORDER BY message_id", channel_id)
            revisions = await conn.fetch(
                "SELECT message_id, count(*) FROM tp_capital.message_revisions WHERE channel_id = $1 "
                "GROUP BY message_id ORDER BY message_id", channel_id)
            signals = await conn.fetch(
                "SELECT message_id, buy_min, deleted_at IS NOT NULL AS deleted FROM tp_capital.tp_capital_signals "
                "WHERE channel_id = $1 ORDER BY message_id", channel_id)
        expected_rows = [
            (mid, f"ATIVO: PETR4 COMPRA: {mid},{edits:02d} v{edits}" if edits else f"ATIVO: PETR4 COMPRA: {mid},00 v0", deleted)
            for mid, (edits, deleted) in enumerate(messages, start=1)
        ]
        assert [tuple(r) for r in rows] == expected_rows
        assert [tuple(r) for r in revisions] == [(mid, 1 + edits) for mid, (edits, _) in enumerate(messages, start=1)]
        assert [tuple(s) for s in signals] == [
            (mid, float(f"{mid}.{edits:02d}"), deleted) for mid, (edits, deleted) in enumerate(messages, start=1)]

    asyncio.run(scenario_run())


async def _retry_through_an_outage(server: Server, database: EmbeddedPostgres) -> tuple[httpx.Response, list[str]]:
    unavailable: list[str] = []
    message = {"channelId": "-100778", "messageId": 1, "text": "ATIVO: PETR4 COMPRA: 25,00",
               "timestamp": T0.isoformat()}
    async with httpx.AsyncClient(base_url=server.url, headers=auth(), timeout=30) as client:
        sending = asyncio.create_task(post_like_the_gateway(client, "/ingest", message, unavailable))
        while not unavailable:  # the API answers 503 while the database is down
            assert not sending.done(), sending.result().text
            await asyncio.sleep(0.02)
        await asyncio.to_thread(database.start)
        return await asyncio.wait_for(sending, 60), unavailable


def test_the_client_retries_a_503_like_the_gateway(own_postgres: EmbeddedPostgres, tmp_path: Path) -> None:
    """The retry the property relies on, against the real API and a database that is down for a while."""
    asyncio.run(migrate_url(own_postgres.url, report=lambda line: None))
    own_postgres.stop()
    server = start_server(own_postgres.url, tmp_path / "server.log")
    try:
        response, unavailable = asyncio.run(_retry_through_an_outage(server, own_postgres))
    finally:
        server.stop()
    assert response.status_code == 200 and response.json()["status"] == "stored"
    assert unavailable and set(unavailable) == {"Database connection failed"}
