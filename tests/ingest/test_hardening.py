"""Regression tests for the outside probe's findings on the ingest core (issue 16), through real HTTP.

Item 1 (a message of digits stalled the API) is in test_adversarial.py; here: item 2's
deeply nested batch (a 500 the gateway would retry forever), item 5 (one Telegram message sent
with two dates stored twice) and item 7's absurd prices (stored as Infinity, exported as "inf").
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from tests.support.db import fetch
from tests.support.ingest import Api, Server, Target, auth

T1 = datetime(2025, 10, 7, 14, 25, 59, tzinfo=timezone.utc)  # an export read as UTC...
T2 = T1 + timedelta(hours=3)  # ...and the same post with its real date (UTC-3 local time)
SIGNAL = "🟢Swing Trade\nAtivo: BOVAW32\nCompra: 1,04 a 1,06\nAlvo 1: 1,15\nStop: 0,70"


def message(channel_id: int, message_id: int, text: str, when: datetime, **extra: object) -> dict:
    return {"channelId": str(channel_id), "messageId": message_id, "text": text, "timestamp": when.isoformat(), **extra}


def post(api: Target, body: object, path: str = "/ingest") -> httpx.Response:
    return api.client.post(path, json=body, headers=auth(), timeout=30)


def rows(api: Target, channel_id: int) -> dict[str, list[tuple]]:
    return {
        "messages": [tuple(r) for r in fetch(api.database_url, """
            SELECT message_id, original_timestamp, message_text, edit_date IS NOT NULL FROM tp_capital.forwarded_messages
            WHERE channel_id = $1 ORDER BY message_id, original_timestamp""", channel_id)],
        "revisions": [tuple(r) for r in fetch(api.database_url, """
            SELECT message_id, original_timestamp, message_text FROM tp_capital.message_revisions
            WHERE channel_id = $1 ORDER BY message_id, revision_date""", channel_id)],
        "signals": [tuple(r) for r in fetch(api.database_url, """
            SELECT id, message_id, message_date, ts, deleted_at IS NOT NULL FROM tp_capital.tp_capital_signals
            WHERE channel_id = $1 ORDER BY message_id, message_date""", channel_id)],
        "events": [tuple(r) for r in fetch(api.database_url, """
            SELECT message_id, message_date, event_type, signal_id IS NOT NULL, deleted_at IS NOT NULL
            FROM tp_capital.signal_events WHERE channel_id = $1 ORDER BY message_id, seq""", channel_id)],
    }


# -- item 2: nesting -------------------------------------------------------------------------

@pytest.mark.parametrize("depth", [1_000, 1_100, 100_000])
@pytest.mark.parametrize("where", ["element", "inside an element"])
def test_a_deeply_nested_batch_is_a_400_not_a_500(api: Api, channel_id: int, depth: int, where: str) -> None:
    nested = b"[" * depth + b"]" * depth
    if where == "element":
        body = b'{"messages": [' + nested + b"]}"
    else:
        body = (b'{"messages": [{"channelId": "%d", "messageId": 1, "timestamp": "2025-10-07T12:00:00Z", "photos": %s}]}'
                % (channel_id, nested))
    response = api.client.post("/ingest/batch", content=body,
                          headers={**auth(), "content-type": "application/json"}, timeout=30)
    assert response.status_code == 400, response.text
    assert response.json() == {"error": "Validation failed", "details": ["body is nested too deeply"]}
    # The API is still fine.
    assert post(api, {"messages": [message(channel_id, 2, "x", T1)]}, "/ingest/batch").json()["stored"] == 1


# -- item 5: one message, two dates ----------------------------------------------------------

def test_the_same_message_with_another_date_moves_it_and_says_so(api: Api, channel_id: int) -> None:
    assert post(api, message(channel_id, 1, SIGNAL, T1)).json()["status"] == "stored"
    signal_id = rows(api, channel_id)["signals"][0][0]
    answer = post(api, message(channel_id, 1, SIGNAL, T2)).json()
    assert (answer["success"], answer["status"], answer["stored"]) == (True, "stored", True)
    assert answer["reason"].startswith(f"message date changed from {T1.isoformat()} to {T2.isoformat()}")
    stored = rows(api, channel_id)
    assert stored["messages"] == [(1, T2, SIGNAL, False)]
    assert stored["revisions"] == [(1, T2, SIGNAL)]
    # Still one signal, the same id clients know, at the new date.
    assert stored["signals"] == [(signal_id, 1, T2, int(T2.timestamp() * 1000), False)]
    assert [r["id"] for r in api.client.get("/signals", params={"channel": str(channel_id)}).json()["data"]] == [
        signal_id]
    # The same again is a plain duplicate; the old date again moves it back (the latest delivery wins).
    assert post(api, message(channel_id, 1, SIGNAL, T2)).json()["status"] == "duplicate"
    assert "reason" in post(api, message(channel_id, 1, SIGNAL, T1)).json()
    assert rows(api, channel_id)["messages"] == [(1, T1, SIGNAL, False)]


def test_an_edited_message_keeps_its_edit_when_moved(api: Api, channel_id: int) -> None:
    edited = SIGNAL.replace("0,70", "0,80")
    post(api, message(channel_id, 1, SIGNAL, T1))
    post(api, message(channel_id, 1, edited, T1, kind="edited", editDate=(T2 + timedelta(minutes=5)).isoformat()))
    assert "reason" in post(api, message(channel_id, 1, SIGNAL, T2)).json()
    stored = rows(api, channel_id)
    assert stored["messages"] == [(1, T2, edited, True)]
    assert stored["revisions"] == [(1, T2, SIGNAL), (1, T2, edited)]
    stop = fetch(api.database_url, "SELECT stop FROM tp_capital.tp_capital_signals WHERE channel_id = $1", channel_id)
    assert [r["stop"] for r in stop] == [0.8]


def test_an_edit_carrying_another_date_moves_the_message(api: Api, channel_id: int) -> None:
    post(api, message(channel_id, 1, SIGNAL, T1))
    edited = SIGNAL.replace("0,70", "0,80")
    answer = post(api, message(channel_id, 1, edited, T2, kind="edited",
                                  editDate=(T2 + timedelta(minutes=5)).isoformat())).json()
    assert answer["status"] == "stored" and "date changed" in answer["reason"]
    assert rows(api, channel_id)["messages"] == [(1, T2, edited, True)]


def test_two_dates_in_one_batch_store_one_row(api: Api, channel_id: int) -> None:
    response = post(api, {"messages": [message(channel_id, 1, SIGNAL, T1), message(channel_id, 1, SIGNAL, T2),
                                          message(channel_id, 2, "BOVAW32 ALVO 1 ATINGIDO ✅", T1 + timedelta(hours=4))]},
                    "/ingest/batch")
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["stored", "stored", "stored"]
    assert "date changed" in results[1]["reason"]
    stored = rows(api, channel_id)
    assert [(m[0], m[1]) for m in stored["messages"]] == [(1, T2), (2, T1 + timedelta(hours=4))]
    assert [(s[1], s[2]) for s in stored["signals"]] == [(1, T2)]
    assert stored["events"] == [(2, T1 + timedelta(hours=4), "target_hit", True, False)]


def test_a_follow_up_moved_to_another_date_is_relinked(api: Api, channel_id: int) -> None:
    post(api, message(channel_id, 1, SIGNAL, T1))
    post(api, message(channel_id, 2, "BOVAW32 ALVO 1 ATINGIDO ✅", T1 - timedelta(hours=1)))  # before it: unlinked
    assert rows(api, channel_id)["events"] == [(2, T1 - timedelta(hours=1), "target_hit", False, False)]
    post(api, message(channel_id, 2, "BOVAW32 ALVO 1 ATINGIDO ✅", T2))  # its real date, after the signal
    assert rows(api, channel_id)["events"] == [(2, T2, "target_hit", True, False)]
    status = api.client.get("/signals", params={"channel": str(channel_id)}).json()["data"][0]["status"]
    assert status == "target_1_hit"


async def test_concurrent_deliveries_with_two_dates_end_as_one_row(server: Server, channel_id: int) -> None:
    async with httpx.AsyncClient(base_url=server.url, headers=auth(), timeout=30) as client:
        for message_id in range(1, 11):
            bodies = [message(channel_id, message_id, SIGNAL, when) for when in (T1, T2) * 4]
            requests = [client.post("/ingest", json=b) for b in bodies]
            requests.append(client.post("/ingest/batch", json={"messages": bodies[:3]}))
            answers = await asyncio.gather(*requests)
            assert all(a.status_code == 200 for a in answers), [(a.status_code, a.text[:300]) for a in answers]
    stored = await asyncio.to_thread(rows, server, channel_id)
    assert sorted(m[0] for m in stored["messages"]) == list(range(1, 11))  # one row each, whichever date won
    assert sorted(s[1] for s in stored["signals"]) == list(range(1, 11))
    dates = {m[0]: m[1] for m in stored["messages"]}
    assert all(dates[s[1]] == s[2] for s in stored["signals"])


# -- item 7: absurd prices -------------------------------------------------------------------

def test_absurd_prices_are_not_stored_as_infinity(api: Api, channel_id: int) -> None:
    started = time.perf_counter()
    assert post(api, message(channel_id, 1, "Ativo: PETR4\nCompra: 1" + "0" * 400, T1)).json()["status"] == "stored"
    assert post(api, message(channel_id, 2, "Ativo: VALE3\nCompra: 10,00\nAlvo 1: 1" + "0" * 400 + "\nStop: 9,00",
                                T1 + timedelta(minutes=1))).json()["status"] == "stored"
    assert time.perf_counter() - started < 5
    data = api.client.get("/signals", params={"channel": str(channel_id)}).json()["data"]
    # The first is no signal (its only price is absurd); the second has no target 1 instead of Infinity.
    assert [(r["asset"], r["buy_min"], r["target_1"], r["stop"]) for r in data] == [("VALE3", 10.0, None, 9.0)]
    csv = api.client.get("/signals", params={"channel": str(channel_id), "format": "csv"}).text
    assert "inf" not in csv.lower() and "nan" not in csv.lower()
    assert csv.splitlines()[1].endswith(";VALE3;10,00;10,00;;;;9,00")
    infinite = fetch(api.database_url, "SELECT count(*) FROM tp_capital.tp_capital_signals WHERE channel_id = $1 AND "
                     "'Infinity'::float8 IN (buy_min, buy_max, target_1, target_2, target_final, stop)", channel_id)
    assert infinite[0][0] == 0
