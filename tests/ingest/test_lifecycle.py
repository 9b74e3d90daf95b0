"""Signal lifecycles (follow-ups → events → status) do not depend on the order deliveries arrive in,
survive a retry after a half-done write, and follow edits that withdraw or restore a signal."""

from __future__ import annotations

import itertools
import os
import string
from datetime import datetime, timedelta, timezone

from hypothesis import HealthCheck, given, settings, strategies as st

from tests.support.db import fetch
from tests.support.ingest import Api, auth

T0 = datetime(2025, 11, 3, 13, 0, tzinfo=timezone.utc)
_tickers = itertools.product(string.ascii_uppercase, repeat=3)
_example_channels = itertools.count(1)  # one channel per Hypothesis example (message ids restart)


def fresh_asset() -> str:
    """A B3-looking ticker no other test uses (the database is shared by the session's API)."""
    return "Q" + "".join(next(_tickers)) + "11"


def signal_text(asset: str) -> str:
    return f"🟢Swing Trade\nAtivo: {asset}\nCompra: 1,04 a 1,06\nAlvo 1: 1,15\nAlvo 2: 2,15\nAlvo final: 3,50\nStop: 0,70"


def payload(channel_id: int, message_id: int, text: str, minutes: int) -> dict:
    return {"channelId": str(channel_id), "messageId": message_id, "text": text,
            "timestamp": (T0 + timedelta(minutes=minutes)).isoformat()}


def post(api: Api, body: dict) -> dict:
    response = api.client.post("/ingest", json=body, headers=auth())
    assert response.status_code == 200, response.text
    return response.json()


def lifecycle(api: Api, asset: str) -> list[tuple[int, str, bool, list[int]]]:
    """Per signal of `asset`, oldest first: (message id, status, deleted, its events' message ids)."""
    rows = fetch(api.database_url, """
        SELECT s.message_id, s.status, s.deleted_at IS NOT NULL AS deleted,
               ARRAY(SELECT e.message_id FROM tp_capital.signal_events e WHERE e.signal_id = s.id
                     ORDER BY e.message_date) AS events
        FROM tp_capital.tp_capital_signals s WHERE s.asset = $1 ORDER BY s.message_date""", asset)
    return [(r["message_id"], r["status"], r["deleted"], list(r["events"])) for r in rows]


def unattached(api: Api, asset: str) -> list[int]:
    rows = fetch(api.database_url, "SELECT message_id FROM tp_capital.signal_events "
                                      "WHERE asset = $1 AND signal_id IS NULL ORDER BY message_date", asset)
    return [r["message_id"] for r in rows]


def test_a_stop_that_arrives_before_its_signal_still_stops_it(api: Api, channel_id: int) -> None:
    asset = fresh_asset()
    post(api, payload(channel_id, 2, f"{asset} stop\n-25%", 60))
    assert unattached(api, asset) == [2]  # nothing to attach to yet
    post(api, payload(channel_id, 1, signal_text(asset), 0))
    assert lifecycle(api, asset) == [(1, "stopped", False, [2])]
    assert unattached(api, asset) == []


def test_a_late_target_1_does_not_move_the_status_back(api: Api, channel_id: int) -> None:
    asset = fresh_asset()
    post(api, payload(channel_id, 1, signal_text(asset), 0))
    post(api, payload(channel_id, 3, f"{asset} ALVO 2 ATINGIDO ✅\n+40%", 120))
    post(api, payload(channel_id, 2, f"{asset} ALVO 1 ATINGIDO ✅\n+17,02%", 60))
    assert lifecycle(api, asset) == [(1, "target_2_hit", False, [2, 3])]


def test_a_retry_records_the_event_that_a_failed_attempt_did_not(api: Api, channel_id: int) -> None:
    # The state a crash leaves between the message insert (committed) and the event: the raw
    # message is stored, the event is not. The gateway's retry is a duplicate and must still
    # record the event.
    asset = fresh_asset()
    post(api, payload(channel_id, 1, signal_text(asset), 0))
    text = f"{asset} ALVO 1 ATINGIDO ✅\n+17,02%"
    fetch(api.database_url, """
        INSERT INTO tp_capital.forwarded_messages (channel_id, message_id, original_timestamp, message_text)
        VALUES ($1, 2, $2, $3)""", channel_id, T0 + timedelta(minutes=60), text)
    assert post(api, payload(channel_id, 2, text, 60))["status"] == "duplicate"
    assert lifecycle(api, asset) == [(1, "target_1_hit", False, [2])]


def test_editing_a_signal_into_a_non_signal_withdraws_it_and_back_restores_it(api: Api, channel_id: int) -> None:
    asset = fresh_asset()
    post(api, payload(channel_id, 1, signal_text(asset), 0))
    edit = {**payload(channel_id, 1, "Sinal cancelado, pessoal. Aguardem o próximo.", 0), "kind": "edited",
            "editDate": (T0 + timedelta(minutes=5)).isoformat()}
    assert post(api, edit)["status"] == "stored"
    # Withdrawn (deleted, kept); "sinal cancelado" is also a cancellation, which stays on the
    # message's own signal instead of cancelling the channel's previous one.
    assert lifecycle(api, asset) == [(1, "cancelled", True, [1])]
    listed = api.client.get("/signals", params={"channel": str(channel_id)}).json()["data"]
    assert listed == []
    restored = {**edit, "text": signal_text(asset), "editDate": (T0 + timedelta(minutes=9)).isoformat()}
    assert post(api, restored)["status"] == "stored"
    assert lifecycle(api, asset) == [(1, "open", False, [])]
    # An older edit arriving late changes nothing (the newest text wins).
    assert post(api, {**edit, "editDate": (T0 + timedelta(minutes=7)).isoformat()})["status"] == "stored"
    assert lifecycle(api, asset) == [(1, "open", False, [])]


def test_a_deleted_signal_hands_its_follow_ups_to_the_signal_before_it(api: Api, channel_id: int) -> None:
    asset = fresh_asset()
    post(api, payload(channel_id, 1, signal_text(asset), 0))
    post(api, payload(channel_id, 2, signal_text(asset), 30))
    post(api, payload(channel_id, 3, f"{asset} ALVO 1 ATINGIDO ✅\n+10%", 60))
    assert lifecycle(api, asset) == [(1, "open", False, []), (2, "target_1_hit", False, [3])]
    post(api, {"kind": "deleted", "channelId": str(channel_id), "messageId": 2})
    assert lifecycle(api, asset) == [(1, "target_1_hit", False, [3]), (2, "open", True, [])]


# Two signals of one asset and their follow-ups, in Telegram order (message id, text, minutes).
def story(asset: str) -> list[tuple[int, str, int]]:
    return [
        (1, signal_text(asset), 0),
        (2, f"{asset} ALVO 1 ATINGIDO ✅\n+17%", 60),
        (3, f"{asset} ALVO 2 ATINGIDO ✅\n+40%", 120),
        (4, f"{asset} stop\n-5%", 180),
        (5, f"{asset} ALVO 1 ATINGIDO ✅\n+3%", 200),  # after the stop, with no new signal yet
        (6, signal_text(asset), 240),
        (7, f"{asset} ALVO FINAL ATINGIDO ✅\n+250%", 300),
    ]


IN_ORDER = [(1, "stopped", False, [2, 3, 4]), (6, "final_target_hit", False, [7])]


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(order=st.permutations(range(7)), repeats=st.lists(st.integers(0, 6), max_size=3))
def test_any_arrival_order_ends_like_telegram_order(api: Api, order: list[int], repeats: list[int]) -> None:
    asset = fresh_asset()
    channel_id = -2_000_000_000_000 - os.getpid() * 10_000 - next(_example_channels)
    messages = story(asset)
    for index in [*order, *repeats]:  # repeats: redeliveries after the fact
        message_id, text, minutes = messages[index]
        post(api, payload(channel_id, message_id, text, minutes))
    assert lifecycle(api, asset) == IN_ORDER
    # The ALVO 1 posted after the stop, before the next signal, belongs to no live lifecycle.
    assert unattached(api, asset) == [5]


# -- the whole lifecycle: every event kind, replies, follow-ups without a ticker ----------------

def full_story(a: str, b: str) -> list[tuple[int, str, int, int | None]]:
    """Two tickers of one channel, in Telegram order: (message id, text, minutes, reply to)."""
    return [
        (1, signal_text(a), 0, None),                                   # S1
        (2, f"{a} ALVO 1 ATINGIDO ✅ +10%", 10, None),                   # → S1 (ticker)
        (3, signal_text(b), 20, None),                                  # S2
        (4, "Subam o stop para 1,10", 30, 1),                           # → S1 (reply to the signal)
        (5, "Parcial realizada", 40, None),                             # → S2 (no ticker: the channel's latest)
        (6, f"{b}: stop no 0x0", 50, None),                             # → S2, stop to the entry price
        (7, "Alvo 2 batido ✅ +41%", 60, 2),                             # → S1 (reply to S1's follow-up)
        (8, f"Encerramos {b} com +3%", 70, None),                       # → S2, closed
        (9, f"{b} ALVO 1 ATINGIDO ✅", 80, None),                        # S2 is closed: unlinked
        (10, signal_text(a), 85, None),                                 # S3
        (11, "Operação CANCELADA - ignore o sinal anterior", 90, None),  # → S3 (the channel's latest)
        (12, f"{a} stopado -5%", 95, None),                             # S3 cancelled: → S1, the open one
        (13, "Novo stop: 2,00", 26 * 60, None),                         # latest signal > 24 h old: unlinked
    ]


def channel_lifecycle(api: Api, channel_id: int) -> tuple[list[tuple], list[int]]:
    rows = fetch(api.database_url, """
        SELECT s.message_id, s.status, s.current_stop, s.deleted_at IS NOT NULL AS deleted,
               ARRAY(SELECT e.message_id FROM tp_capital.signal_events e
                     WHERE e.signal_id = s.id AND e.deleted_at IS NULL ORDER BY e.message_date, e.seq) AS events
        FROM tp_capital.tp_capital_signals s WHERE s.channel_id = $1 ORDER BY s.message_date""", channel_id)
    unlinked = fetch(api.database_url, "SELECT message_id FROM tp_capital.signal_events WHERE channel_id = $1 "
                                          "AND signal_id IS NULL AND deleted_at IS NULL ORDER BY message_date", channel_id)
    return ([(r["message_id"], r["status"], r["current_stop"], r["deleted"], list(r["events"])) for r in rows],
            [r["message_id"] for r in unlinked])


FULL_IN_ORDER = ([(1, "stopped", 1.1, False, [2, 4, 7, 12]),
                  (3, "closed", 1.05, False, [5, 6, 8]),
                  (10, "cancelled", 0.7, False, [11])],
                 [9, 13])


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(order=st.permutations(range(13)), repeats=st.lists(st.integers(0, 12), max_size=4),
       batch_size=st.sampled_from([1, 1, 4, 13]))
def test_the_whole_lifecycle_ends_like_telegram_order_in_any_arrival_order(
        api: Api, order: list[int], repeats: list[int], batch_size: int) -> None:
    a, b = fresh_asset(), fresh_asset()
    channel_id = -3_000_000_000_000 - os.getpid() * 10_000 - next(_example_channels)
    messages = full_story(a, b)
    bodies = []
    for index in [*order, *repeats]:
        message_id, text, minutes, reply_to = messages[index]
        body = payload(channel_id, message_id, text, minutes)
        if reply_to is not None:
            body["replyToMessageId"] = reply_to
        bodies.append(body)
    for start in range(0, len(bodies), batch_size):
        chunk = bodies[start:start + batch_size]
        if len(chunk) == 1:
            post(api, chunk[0])
        else:
            response = api.client.post("/ingest/batch", json={"messages": chunk}, headers=auth())
            assert response.status_code == 200, response.text
    assert channel_lifecycle(api, channel_id) == FULL_IN_ORDER
