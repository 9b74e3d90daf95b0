"""`uv run ingest-api reparse`: derived state is a pure function of the stored messages.

A channel's story is ingested through real HTTP (every message class, replies, edits, deletions,
out-of-order arrival, a signal deleted through the API, a message sent with two dates); then the
real CLI (`python -m ingest_api.cli reparse`, what `uv run ingest-api reparse` runs) must find
nothing to change, rebuild derived rows deleted by hand identically, and repair rows an older
parser got wrong, while leaving deleted messages deleted.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest_api.ingest.reparse import reparse as run_reparse
from tests.support.db import connection, fetch
from tests.support.ingest import TOKEN, Api, Server, Target, auth

T0 = datetime(2025, 11, 20, 13, 0, tzinfo=timezone.utc)
_property_channels = itertools.count(1)
SIGNAL = "🟢Swing Trade\nAtivo: {asset}\nCompra: 1,04 a 1,06\nAlvo 1: 1,15\nAlvo 2: 2,15\nStop: 0,70"


def body(channel_id: int, message_id: int, text: str, minutes: float, **extra: object) -> dict:
    return {"channelId": str(channel_id), "messageId": message_id, "text": text,
            "timestamp": (T0 + timedelta(minutes=minutes)).isoformat(), **extra}


def edit(channel_id: int, message_id: int, text: str, minutes: float, edited_at: float) -> dict:
    return body(channel_id, message_id, text, minutes, kind="edited",
                editDate=(T0 + timedelta(minutes=edited_at)).isoformat())


def story(channel_id: int) -> list[dict]:
    """In arrival order (not Telegram order)."""
    c = channel_id
    return [
        body(c, 2, "PETR4 ALVO 1 ATINGIDO ✅ +8%", 10),                      # before its signal
        body(c, 1, SIGNAL.format(asset="PETR4"), 0),
        body(c, 3, "VENDA: VALE3 @ R$ 65.30 - Stop: R$ 66.00 - Alvo: R$ 63.50", 20),
        body(c, 4, "Stop movido para 65,00", 30, replyToMessageId=3),
        body(c, 5, SIGNAL.format(asset="BOVAW32"), 40),
        body(c, 6, "Parcial realizada", 50),                                 # no ticker: BOVAW32
        body(c, 7, "BOVAW32 ALVO 1 ATINGIDO ✅ +10%. Stop na entrada.", 60),
        edit(c, 5, SIGNAL.format(asset="BOVAW32").replace("0,70", "0,72"), 40, 65),
        body(c, 8, "Bom dia pessoal!", 70),
        edit(c, 8, SIGNAL.format(asset="ITUB4"), 70, 75),                   # chatter edited into a signal
        body(c, 9, SIGNAL.format(asset="WEGE3"), 80),
        edit(c, 9, "Mensagem errada, desconsiderem.", 80, 85),               # a signal edited into a cancel
        body(c, 10, "ITUB4 stop\n-3%", 90),
        edit(c, 10, "ITUB4 ALVO 1 ATINGIDO ✅ +4%", 90, 95),                 # a follow-up corrected
        body(c, 11, SIGNAL.format(asset="MGLU3"), 100),
        {"kind": "deleted", "channelId": str(c), "messageId": 11},
        body(c, 12, "Encerramos VALE3 com +1%", 110),
        body(c, 13, "B3SA3 ALVO 2 ATINGIDO ✅", 120),                        # no such signal: unlinked
        body(c, 14, SIGNAL.format(asset="TAEE11"), 29 * 60),                  # stored with a wrong date first...
        body(c, 14, SIGNAL.format(asset="TAEE11"), 130),                    # ...then its real one
        body(c, 15, "Alvo 2 batido ✅ +40%", 140, replyToMessageId=1),
    ]


def ingest(api: Target, channel_id: int) -> None:
    for payload in story(channel_id):
        response = api.client.post("/ingest", json=payload, headers=auth(), timeout=10)
        assert response.status_code == 200, response.text
    # A signal the trader deleted on the dashboard.
    dismissed = fetch(api.database_url, "SELECT id FROM tp_capital.tp_capital_signals WHERE channel_id = $1 "
                                           "AND message_id = 3", channel_id)[0]["id"]
    assert api.client.delete(f"/signals/{dismissed}", headers={"X-API-Key": TOKEN}).status_code == 200


def snapshot(api: Target, channel_id: int) -> dict[str, list[tuple]]:
    """Derived rows without their ids and bookkeeping timestamps; an event's signal by its message."""
    signals = fetch(api.database_url, """
        SELECT message_id, message_date, ts, channel, signal_type, asset, side, buy_min, buy_max, target_1, target_2,
               target_final, stop, current_stop, raw_message, status, revision_date, deleted_at IS NOT NULL AS deleted
        FROM tp_capital.tp_capital_signals WHERE channel_id = $1 ORDER BY message_id""", channel_id)
    events = fetch(api.database_url, """
        SELECT e.message_id, e.seq, e.message_date, e.asset, e.event_type, e.target_number, e.percentage, e.price,
               e.breakeven, e.raw_message, e.reply_to_message_id, e.revision_date, e.deleted_at,
               s.message_id AS signal_message_id
        FROM tp_capital.signal_events e
        LEFT JOIN tp_capital.tp_capital_signals s ON s.id = e.signal_id
        WHERE e.channel_id = $1 ORDER BY e.message_id, e.seq""", channel_id)
    return {"signals": [tuple(r) for r in signals], "events": [tuple(r) for r in events]}


def reparse(api: Target, *args: str) -> tuple[dict[str, int], str]:
    result = subprocess.run([sys.executable, "-m", "ingest_api.cli", "reparse", "--database-url", api.database_url,
                             *args], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return figures(result.stdout), result.stdout


def figures(report: str) -> dict[str, int]:
    found = {}
    for kind in ("signals", "events"):
        line = re.search(rf"{kind}:\s+(\d+) added, (\d+) changed, (\d+) withdrawn", report)
        assert line, report
        found |= {f"{kind}_added": int(line[1]), f"{kind}_changed": int(line[2]), f"{kind}_withdrawn": int(line[3])}
    links = re.search(r"links:\s+(\d+) event\(s\) relinked, (\d+) signal", report)
    merged = re.search(r"merged: (\d+)", report)
    assert links and merged, report
    found |= {"relinked": int(links[1]), "states": int(links[2]), "merged": int(merged[1])}
    found["total"] = int(re.search(r"(?:would change|changed) (\d+) row", report)[1])
    return found


ZERO = {"signals_added": 0, "signals_changed": 0, "signals_withdrawn": 0, "events_added": 0, "events_changed": 0,
        "events_withdrawn": 0, "relinked": 0, "states": 0, "merged": 0, "total": 0}


@pytest.fixture
def ingested(api: Target, channel_id: int) -> int:
    ingest(api, channel_id)
    return channel_id


def test_the_story_is_what_a_trader_reads(api: Api, ingested: int) -> None:
    signals = {r[0]: r for r in snapshot(api, ingested)["signals"]}
    # (message id) → status, current stop, deleted
    assert {m: (r[15], r[13], r[17]) for m, r in signals.items()} == {
        1: ("target_2_hit", 0.7, False),
        3: ("open", 66.0, True),           # dismissed on the dashboard: its follow-ups are unlinked
        5: ("target_1_hit", 1.05, False),  # stop moved to the entry price after target 1
        8: ("target_1_hit", 0.7, False),   # chatter edited into a signal; its follow-up corrected
        9: ("cancelled", 0.7, True),       # withdrawn by the edit that cancelled it
        11: ("open", 0.7, True),           # the message was deleted
        14: ("open", 0.7, False),
    }
    assert signals[3][6] == "short"
    assert signals[14][1] == T0 + timedelta(minutes=130)


def test_reparse_with_no_parser_change_changes_nothing(api: Api, ingested: int) -> None:
    before = snapshot(api, ingested)
    assert reparse(api, "--channel", str(ingested), "--dry-run")[0] == ZERO
    counts, report = reparse(api, "--channel", str(ingested))
    assert counts == ZERO, report
    assert "reparse: 15 messages in 1 channel(s); changed 0 row(s)" in report
    assert snapshot(api, ingested) == before


def test_derived_rows_deleted_by_hand_come_back_identical(api: Api, ingested: int) -> None:
    before = snapshot(api, ingested)
    fetch(api.database_url, "DELETE FROM tp_capital.signal_events WHERE channel_id = $1", ingested)
    fetch(api.database_url, "DELETE FROM tp_capital.tp_capital_signals WHERE channel_id = $1 AND dismissed_at IS NULL",
          ingested)
    counts, report = reparse(api, "--channel", str(ingested))
    # Live, withdrawn (9: edited into a cancellation) and deleted (11: its message was deleted)
    # signals come back; the dismissed one (3) was not deleted by hand (that is the user's act).
    assert (counts["signals_added"], counts["events_added"]) == (6, len(before["events"])), report
    assert snapshot(api, ingested) == before
    assert reparse(api, "--channel", str(ingested))[0] == ZERO


def test_reparse_repairs_what_an_older_parser_derived(api: Api, ingested: int) -> None:
    before = snapshot(api, ingested)
    # What the previous parser left: a short read as a long, a wrong target, a follow-up it did
    # not read, one it read where there is none, a stale status and link.
    fetch(api.database_url, "UPDATE tp_capital.tp_capital_signals SET side = 'long' WHERE channel_id = $1 "
                               "AND message_id = 3", ingested)
    fetch(api.database_url, "UPDATE tp_capital.tp_capital_signals SET target_1 = 9.99, status = 'open' "
                               "WHERE channel_id = $1 AND message_id = 1", ingested)
    fetch(api.database_url, "DELETE FROM tp_capital.signal_events WHERE channel_id = $1 AND message_id = 12", ingested)
    fetch(api.database_url, """
        INSERT INTO tp_capital.signal_events (channel_id, message_id, message_date, seq, asset, event_type, raw_message,
                                              revision_date)
        SELECT channel_id, message_id, original_timestamp, 0, 'PETR4', 'stop_hit', message_text, original_timestamp
        FROM tp_capital.forwarded_messages WHERE channel_id = $1 AND message_id = 8""", ingested)
    fetch(api.database_url, "UPDATE tp_capital.signal_events SET signal_id = NULL WHERE channel_id = $1 "
                               "AND message_id = 15", ingested)
    dry, _ = reparse(api, "--channel", str(ingested), "--dry-run")
    assert (dry["signals_changed"], dry["events_added"], dry["events_withdrawn"]) == (2, 1, 1)
    assert dry["relinked"] >= 1 and dry["states"] >= 1
    assert snapshot(api, ingested) != before  # the dry run changed nothing
    counts, report = reparse(api, "--channel", str(ingested))
    assert counts == dry, report
    after = snapshot(api, ingested)
    # Message 8's invented event stays, withdrawn (kept as history, like a withdrawn signal).
    invented = [e for e in after["events"] if e[0] == 8]
    assert len(invented) == 1 and invented[0][12] is not None
    assert after["signals"] == before["signals"]
    assert [e for e in after["events"] if e[0] != 8] == before["events"]
    assert reparse(api, "--channel", str(ingested))[0] == ZERO


def test_deleted_messages_stay_deleted(api: Api, ingested: int) -> None:
    fetch(api.database_url, "DELETE FROM tp_capital.tp_capital_signals WHERE channel_id = $1 AND message_id = 11",
          ingested)
    reparse(api, "--channel", str(ingested))
    row = fetch(api.database_url, "SELECT deleted_at FROM tp_capital.tp_capital_signals WHERE channel_id = $1 "
                                     "AND message_id = 11", ingested)
    assert row and row[0]["deleted_at"] is not None
    listed = api.client.get("/signals", params={"channel": str(ingested)}).json()["data"]
    assert 11 not in [r["message_id"] for r in listed]
    assert 3 not in [r["message_id"] for r in listed]  # dismissed on the dashboard: stays dismissed


def test_since_limits_the_messages_reparsed(api: Api, ingested: int) -> None:
    fetch(api.database_url, "UPDATE tp_capital.tp_capital_signals SET target_1 = 9.99 WHERE channel_id = $1 "
                               "AND message_id IN (1, 14)", ingested)
    since = (T0 + timedelta(minutes=125)).isoformat()
    counts, report = reparse(api, "--channel", str(ingested), "--since", since)
    assert counts["signals_changed"] == 1, report  # message 14 (130 min), not message 1 (0 min)
    targets = fetch(api.database_url, "SELECT message_id, target_1 FROM tp_capital.tp_capital_signals "
                                         "WHERE channel_id = $1 AND message_id IN (1, 14) ORDER BY 1", ingested)
    assert [tuple(r) for r in targets] == [(1, 9.99), (14, 1.15)]


def test_messages_stored_under_two_dates_are_merged(api: Api, ingested: int) -> None:
    # As stored before the one-date rule: a second row of message 1 at another date.
    fetch(api.database_url, """
        INSERT INTO tp_capital.forwarded_messages (channel_id, message_id, original_timestamp, message_text, received_at)
        SELECT channel_id, message_id, original_timestamp - interval '3 hours', message_text, received_at - interval '1 day'
        FROM tp_capital.forwarded_messages WHERE channel_id = $1 AND message_id = 1""", ingested)
    counts, report = reparse(api, "--channel", str(ingested))
    assert counts["merged"] == 1, report
    rows = fetch(api.database_url, "SELECT original_timestamp FROM tp_capital.forwarded_messages "
                                      "WHERE channel_id = $1 AND message_id = 1", ingested)
    assert [r[0] for r in rows] == [T0]
    assert reparse(api, "--channel", str(ingested))[0] == ZERO


async def test_reparse_while_the_api_ingests(server: Server, channel_id: int) -> None:
    await asyncio.to_thread(ingest, server, channel_id)
    more = [body(channel_id, 100 + i, SIGNAL.format(asset="PETR4") if i % 3 == 0 else f"PETR4 ALVO 1 ATINGIDO ✅ +{i}%",
                 200 + i) for i in range(60)]
    edits = [edit(channel_id, 100 + i, SIGNAL.format(asset="VALE3"), 200 + i, 300 + i) for i in range(0, 60, 6)]

    async def traffic() -> None:
        async with httpx.AsyncClient(base_url=server.url, headers=auth(), timeout=30) as client:
            for payload in more + edits:
                response = await client.post("/ingest", json=payload)
                assert response.status_code == 200, response.text

    async def reparse_runs() -> list[dict[str, int]]:
        runs = []
        for _ in range(3):
            runs.append((await asyncio.to_thread(reparse, server, "--channel", str(channel_id), "--batch-size", "7"))[0])
        return runs

    await asyncio.gather(traffic(), reparse_runs())
    # Whatever interleaving happened, what is stored is what the messages derive.
    assert (await asyncio.to_thread(reparse, server, "--channel", str(channel_id)))[0] == ZERO


def test_reparse_command_line_errors(api: Api) -> None:
    bad = subprocess.run([sys.executable, "-m", "ingest_api.cli", "reparse", "--database-url", api.database_url,
                          "--since", "yesterday"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "--since" in bad.stderr and "ISO 8601" in bad.stderr
    down = subprocess.run([sys.executable, "-m", "ingest_api.cli", "reparse", "--database-url",
                           "postgresql://postgres@127.0.0.1:1/none"], capture_output=True, text=True, timeout=60)
    assert down.returncode == 1 and "cannot reach the database" in down.stderr
    assert "Traceback" not in down.stderr
    # The server's own --help names the subcommand, so a user finds it without the docs.
    usage = subprocess.run([sys.executable, "-m", "ingest_api.cli", "--help"], capture_output=True, text=True, timeout=60)
    assert usage.returncode == 0 and "ingest-api reparse" in usage.stdout


# -- property: what the API derives online is what reparse derives ------------------------------

TEXTS = [
    SIGNAL.format(asset="PETR4"),
    SIGNAL.format(asset="PETR4").replace("0,70", "0,75"),
    "VENDA: VALE3 @ R$ 65.30 - Stop: R$ 66.00 - Alvo: R$ 63.50",
    "PETR4 ALVO 1 ATINGIDO ✅ +8%",
    "Alvo 1 atingido ✅ +10%. Parcial realizada, stop na entrada.",
    "Operação CANCELADA - ignore o sinal anterior",
    "Encerramos VALE3 com +1%",
    "Bom dia pessoal!",
]


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(messages=st.lists(st.tuples(st.lists(st.integers(0, len(TEXTS) - 1), min_size=1, max_size=3), st.booleans(),
                                   st.one_of(st.none(), st.integers(1, 4))), min_size=1, max_size=4),
       extra=st.lists(st.integers(0, 40), max_size=6), rnd=st.randoms(use_true_random=False),
       batched=st.booleans())
def test_any_delivery_schedule_derives_what_reparse_derives(api: Api, messages, extra, rnd, batched) -> None:
    """Each message: a text and up to two edits (indices into TEXTS), deleted or not, maybe a
    reply; every delivery at least once, some again, shuffled, one by one or in batches. Whatever
    the schedule, a reparse finds nothing to change."""
    channel_id = -4_000_000_000_000 - os.getpid() * 10_000 - next(_property_channels)
    events: list[dict] = []
    for message_id, (texts, deleted, reply_to) in enumerate(messages, start=1):
        extra_fields = {"replyToMessageId": reply_to} if reply_to and reply_to < message_id else {}
        events.append(body(channel_id, message_id, TEXTS[texts[0]], message_id * 10, **extra_fields))
        for n, text in enumerate(texts[1:], start=1):
            events.append({**edit(channel_id, message_id, TEXTS[text], message_id * 10, message_id * 10 + n),
                           **extra_fields})
        if deleted:
            events.append({"kind": "deleted", "channelId": str(channel_id), "messageId": message_id})
    deliveries = events + [events[i % len(events)] for i in extra]
    rnd.shuffle(deliveries)
    if batched:
        for start in range(0, len(deliveries), 3):
            response = api.client.post("/ingest/batch", json={"messages": deliveries[start:start + 3]},
                                  headers=auth(), timeout=30)
            assert response.status_code == 200, response.text
    else:
        for payload in deliveries:
            response = api.client.post("/ingest", json=payload, headers=auth(), timeout=30)
            assert response.status_code == 200, response.text

    async def dry_run() -> int:
        async with connection(api.database_url) as conn:
            return (await run_reparse(conn, channel_id=channel_id, dry_run=True)).total_changes

    assert asyncio.run(dry_run()) == 0
