"""Every class of message a trader reads, through real HTTP: signals of every ticker kind and both
sides, and follow-up sequences checked on GET /signals/{id} (status, current_stop, events)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from tests.support.ingest import TOKEN, Api, auth

T0 = datetime(2025, 11, 10, 13, 0, tzinfo=timezone.utc)
SIGNAL = "🟢Swing Trade\nAtivo: {asset}\nCompra: 1,04 a 1,06\nAlvo 1: 1,15\nAlvo 2: 2,15\nAlvo final: 3,50\nStop: 0,70"


class Channel:
    """One test channel: post messages by id and minute, read its signals back."""

    def __init__(self, api: Api, channel_id: int) -> None:
        self.api, self.channel_id = api, channel_id

    def post(self, message_id: int, text: str, minutes: float = 0, reply_to: int | None = None, **extra: object) -> dict:
        body = {"channelId": str(self.channel_id), "messageId": message_id, "text": text,
                "timestamp": (T0 + timedelta(minutes=minutes)).isoformat(), **extra}
        if reply_to is not None:
            body["replyToMessageId"] = reply_to
        response = self.api.client.post("/ingest", json=body, headers=auth(), timeout=10)
        assert response.status_code == 200, response.text
        return response.json()

    def signals(self) -> list[dict]:
        response = self.api.client.get("/signals", params={"channel": str(self.channel_id)})
        assert response.status_code == 200, response.text
        return response.json()["data"]

    def signal_of(self, message_id: int) -> dict:
        row = next(r for r in self.signals() if r["message_id"] == message_id)
        detail = self.api.client.get(f"/signals/{row['id']}")
        assert detail.status_code == 200, detail.text
        return detail.json()

    def unlinked(self) -> list[dict]:
        response = self.api.client.get("/signal-events", params={"channel": self.channel_id, "unlinked": "true"})
        assert response.status_code == 200, response.text
        return response.json()["data"]


@pytest.fixture
def channel(api: Api, channel_id: int) -> Channel:
    return Channel(api, channel_id)


def events(detail: dict) -> list[tuple]:
    return [(e["event_type"], e["target_number"], e["percentage"], e["price"]) for e in detail["events"]]


# -- signals ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("code", "kind"), [
    ("B3SA3", "share with a digit in its issuer code"), ("PETR4F", "odd lot"), ("AAPL34", "BDR"),
    ("TAEE11", "unit"), ("BOVA11", "ETF"), ("BOVAW32", "option"), ("KLBNK177", "option, 3-digit strike"),
    ("WINZ25", "future"), ("DI1F27", "interest-rate future"),
])
def test_every_ticker_kind_is_a_signal(channel: Channel, code: str, kind: str) -> None:
    channel.post(1, SIGNAL.format(asset=code))
    [row] = channel.signals()
    assert (row["asset"], row["side"], row["buy_min"], row["stop"], row["current_stop"]) == (code, "long", 1.04, 0.7, 0.7)


def test_a_short_keeps_its_sell_range_in_the_old_columns(channel: Channel, api: Api) -> None:
    # The old corpus's VENDA line, which the old system dropped.
    channel.post(1, "VENDA: VALE3 @ R$ 65.30 - Stop: R$ 66.00 - Alvo: R$ 63.50")
    [row] = channel.signals()
    assert (row["asset"], row["side"], row["buy_min"], row["buy_max"], row["target_final"], row["stop"]) == (
        "VALE3", "short", 65.3, 65.3, 63.5, 66.0)
    # The CSV export keeps the old columns, a short's sell range under COMPRA_MIN/COMPRA_MAX.
    csv = api.client.get("/signals", params={"channel": str(channel.channel_id), "format": "csv"}).text
    assert csv.splitlines() == ["DATA;ATIVO;COMPRA_MIN;COMPRA_MAX;ALVO_1;ALVO_2;ALVO_FINAL;STOP",
                                "10/11/2025, 10:00:00;VALE3;65,30;65,30;63,50;;63,50;66,00"]


def test_every_old_field_is_kept_and_the_new_ones_added(channel: Channel) -> None:
    channel.post(1, SIGNAL.format(asset="PETR4"))
    [row] = channel.signals()
    old = ["id", "ts", "channel", "signal_type", "asset", "buy_min", "buy_max", "target_1", "target_2", "target_final",
           "stop", "raw_message", "source", "status", "channel_id", "message_id", "ingested_at", "created_at",
           "updated_at", "deleted_at"]
    assert list(row)[:len(old)] == old
    assert list(row)[len(old):] == ["side", "current_stop"]


@pytest.mark.parametrize(("text", "buy_min", "buy_max"), [
    ("Ativo: BOVAW32\nCompra até 0,88\nAlvo 1: 1,15\nStop: 0,70", None, 0.88),
    ("Ativo: PETR4\ncomprar abaixo de R$ 21,00\nStop: 19,50", None, 21.0),
])
def test_open_ended_entries(channel: Channel, text: str, buy_min: float | None, buy_max: float) -> None:
    channel.post(1, text)
    [row] = channel.signals()
    assert (row["buy_min"], row["buy_max"]) == (buy_min, buy_max)


# -- lifecycles, step by step ----------------------------------------------------------------

def test_targets_a_stop_move_and_the_final_target(channel: Channel) -> None:
    channel.post(1, SIGNAL.format(asset="BOVAW32"))
    detail = channel.signal_of(1)
    assert (detail["status"], detail["current_stop"], detail["events"]) == ("open", 0.7, [])
    channel.post(2, "BOVAW32 ALVO 1 ATINGIDO ✅\n+10,58%", 60)
    assert (channel.signal_of(1)["status"], channel.signal_of(1)["current_stop"]) == ("target_1_hit", 0.7)
    channel.post(3, "BOVAW32: subam o stop para 1,10", 70)
    detail = channel.signal_of(1)
    assert (detail["status"], detail["current_stop"], detail["stop"]) == ("target_1_hit", 1.1, 0.7)
    channel.post(4, "BOVAW32 ALVO 2 ATINGIDO ✅ +103%", 120)
    channel.post(5, "BOVAW32 ALVO FINAL ATINGIDO 🚀 +230%", 180)
    detail = channel.signal_of(1)
    assert (detail["status"], detail["current_stop"]) == ("final_target_hit", 1.1)
    assert events(detail) == [("target_hit", 1, 10.58, None), ("stop_moved", None, None, 1.1),
                              ("target_hit", 2, 103.0, None), ("final_target_hit", None, 230.0, None)]
    assert [e["raw_message"] for e in detail["events"]][0] == "BOVAW32 ALVO 1 ATINGIDO ✅\n+10,58%"
    # Over: a later target hit of the ticker belongs to no signal, and is kept, visible.
    channel.post(6, "BOVAW32 ALVO 1 ATINGIDO ✅", 240)
    assert len(channel.signal_of(1)["events"]) == 4
    assert [e["message_id"] for e in channel.unlinked()] == [6]


def test_breakeven_moves_the_stop_to_the_entry_price(channel: Channel) -> None:
    channel.post(1, SIGNAL.format(asset="VALE3"))
    channel.post(2, "Stop loss movido para breakeven em VALE3", 30)
    detail = channel.signal_of(1)
    assert detail["current_stop"] == 1.05  # the middle of the entry range 1,04 a 1,06
    assert [(e["event_type"], e["breakeven"], e["price"]) for e in detail["events"]] == [("stop_moved", True, 1.05)]
    channel.post(3, "VALE3 stop\n-0%", 90)
    assert (channel.signal_of(1)["status"], channel.signal_of(1)["current_stop"]) == ("stopped", 1.05)


@pytest.mark.parametrize(("text", "status", "percentage"), [
    ("CYREW296 stop\n-25%", "stopped", -25.0),
    ("Operação CANCELADA - ignore o sinal de CYREW296 acima.", "cancelled", None),
    ("Encerramos CYREW296 com +12%", "closed", 12.0),
    ("Zerar CYREW296", "closed", None),
])
def test_a_signal_ends_stopped_cancelled_or_closed(channel: Channel, text: str, status: str,
                                                   percentage: float | None) -> None:
    channel.post(1, SIGNAL.format(asset="CYREW296"))
    channel.post(2, text, 30)
    detail = channel.signal_of(1)
    assert detail["status"] == status
    assert [e["percentage"] for e in detail["events"]] == [percentage]


def test_a_partial_exit_is_an_event_that_keeps_the_status(channel: Channel) -> None:
    channel.post(1, SIGNAL.format(asset="ITUB4"))
    channel.post(2, "Alvo 1 atingido em ITUB4! Parcial realizada.", 30)
    channel.post(3, "Realizar parcial em ITUB4 +15%", 40)
    detail = channel.signal_of(1)
    assert detail["status"] == "target_1_hit"
    assert events(detail) == [("target_hit", 1, None, None), ("partial_exit", None, None, None),
                              ("partial_exit", None, 15.0, None)]
    assert [e["seq"] for e in detail["events"]] == [0, 1, 0]


def test_a_reply_links_to_the_signal_it_answers(channel: Channel) -> None:
    channel.post(1, SIGNAL.format(asset="PETR4"))
    channel.post(2, SIGNAL.format(asset="VALE3"), 10)
    # No ticker, posted as a reply to message 1 (not the channel's latest signal).
    channel.post(3, "Alvo 2 batido ✅ +41%", 20, reply_to=1)
    assert (channel.signal_of(1)["status"], channel.signal_of(2)["status"]) == ("target_2_hit", "open")
    # A reply to a follow-up goes to that follow-up's signal.
    channel.post(4, "Alvo final atingido 🚀", 30, reply_to=3)
    assert channel.signal_of(1)["status"] == "final_target_hit"
    assert [e["reply_to_message_id"] for e in channel.signal_of(1)["events"]] == [1, 3]


def test_without_a_ticker_the_channels_latest_signal_under_24_hours(channel: Channel) -> None:
    channel.post(1, SIGNAL.format(asset="PETR4"))
    channel.post(2, SIGNAL.format(asset="VALE3"), 10)
    channel.post(3, "Operação CANCELADA - ignore o sinal anterior", 20)
    assert (channel.signal_of(1)["status"], channel.signal_of(2)["status"]) == ("open", "cancelled")
    # More than 24 hours after the latest signal: kept, unlinked, visible.
    channel.post(4, "Novo stop: 2,00", 25 * 60)
    unlinked = channel.unlinked()
    assert [(e["message_id"], e["event_type"], e["price"], e["asset"]) for e in unlinked] == [(4, "stop_moved", 2.0, None)]


def test_a_follow_up_links_within_its_channel(api: Api, channel: Channel, channel_id: int) -> None:
    other = Channel(api, channel_id - 500_000)
    channel.post(1, SIGNAL.format(asset="WEGE3"))
    other.post(1, SIGNAL.format(asset="WEGE3"), 10)  # newer, same ticker, another channel
    channel.post(2, "WEGE3 ALVO 1 ATINGIDO ✅", 20)
    assert (channel.signal_of(1)["status"], other.signal_of(1)["status"]) == ("target_1_hit", "open")


def test_a_signal_deleted_through_the_api_hands_its_follow_ups_back_and_stays_deleted(channel: Channel,
                                                                                      api: Api) -> None:
    channel.post(1, SIGNAL.format(asset="MGLU3"))
    channel.post(2, SIGNAL.format(asset="MGLU3"), 10)
    channel.post(3, "MGLU3 ALVO 1 ATINGIDO ✅", 20)
    newer = channel.signal_of(2)
    assert newer["status"] == "target_1_hit"
    assert api.client.delete(f"/signals/{newer['id']}", headers={"X-API-Key": TOKEN}).status_code == 200
    assert [(r["message_id"], r["status"]) for r in channel.signals()] == [(1, "target_1_hit")]
    # An edit of the deleted signal's message does not bring it back.
    channel.post(2, SIGNAL.format(asset="MGLU3").replace("0,70", "0,75"), 10, kind="edited",
                 editDate=(T0 + timedelta(minutes=40)).isoformat())
    assert [r["message_id"] for r in channel.signals()] == [1]
