"""Properties of ingest under any delivery order (Hypothesis), through real HTTP.

The gateway may deliver any event any number of times, concurrently, in any order (retries,
replays, backfill). Whatever the schedule, the database must end up with exactly one row per
message, the text of its newest edit, every revision once, and deletions marked.
"""

from __future__ import annotations

import asyncio
import itertools
from datetime import datetime, timedelta, timezone

import asyncpg
import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.ingest.conftest import Server, auth

T0 = datetime(2025, 10, 7, 17, 25, 59, tzinfo=timezone.utc)
_channels = itertools.count(1)


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

    async def deliver() -> list[dict]:
        results: list[dict] = []
        async with httpx.AsyncClient(base_url=server.url, headers=auth(), timeout=30) as client:
            position = 0
            for wave_number in itertools.count():
                size = waves[wave_number % len(waves)]
                wave = deliveries[position:position + size]
                if not wave:
                    break
                position += size
                if batch_flags[wave_number % len(batch_flags)]:
                    half = len(wave) // 2
                    requests = [client.post("/ingest/batch", json={"messages": wave[:half] or wave})]
                    requests += [client.post("/ingest", json=e) for e in wave[half:]] if half else []
                else:
                    requests = [client.post("/ingest", json=e) for e in wave]
                for response in await asyncio.gather(*requests):
                    assert response.status_code == 200, response.text
                    body = response.json()
                    results.extend(body["results"] if "results" in body else [body])
        return results

    async def scenario_run() -> None:
        results = await deliver()
        assert len(results) == len(deliveries)
        # Each distinct event is "stored" exactly once, every other delivery is a duplicate.
        assert sum(r["status"] == "stored" for r in results) <= len(events)
        assert all(r["status"] in ("stored", "duplicate") for r in results)
        conn = await asyncpg.connect(server.database_url)
        try:
            rows = await conn.fetch(
                "SELECT message_id, message_text, deleted_at IS NOT NULL AS deleted "
                "FROM tp_capital.forwarded_messages WHERE channel_id = $1 ORDER BY message_id", channel_id)
            revisions = await conn.fetch(
                "SELECT message_id, count(*) FROM tp_capital.message_revisions WHERE channel_id = $1 "
                "GROUP BY message_id ORDER BY message_id", channel_id)
            signals = await conn.fetch(
                "SELECT message_id, buy_min, deleted_at IS NOT NULL AS deleted FROM tp_capital.tp_capital_signals "
                "WHERE channel_id = $1 ORDER BY message_id", channel_id)
        finally:
            await conn.close()
        expected_rows = [
            (mid, f"ATIVO: PETR4 COMPRA: {mid},{edits:02d} v{edits}" if edits else f"ATIVO: PETR4 COMPRA: {mid},00 v0", deleted)
            for mid, (edits, deleted) in enumerate(messages, start=1)
        ]
        assert [tuple(r) for r in rows] == expected_rows
        assert [tuple(r) for r in revisions] == [(mid, 1 + edits) for mid, (edits, _) in enumerate(messages, start=1)]
        assert [tuple(s) for s in signals] == [
            (mid, float(f"{mid}.{edits:02d}"), deleted) for mid, (edits, deleted) in enumerate(messages, start=1)]

    asyncio.run(scenario_run())
