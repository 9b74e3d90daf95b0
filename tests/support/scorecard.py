"""The channel scorecard's story and its HTTP helpers, shared by tests/ingest/test_scorecard*.py.

STORY is one channel's October and November 2025, a signal in each outcome; the expected numbers
in test_scorecard.py were counted by hand from it. The helpers take the in-process app or a
granian server alike (tests/support/ingest.py's `Target`).
"""

from __future__ import annotations

import itertools
import os
from datetime import datetime, timezone

import httpx

from tests.support.ingest import Target, auth

UTC = timezone.utc
SIGNAL = "🟢Swing Trade\nAtivo: {asset}\nCompra: 30,00 a 31,00\nAlvo 1: 33,00\nAlvo final: 36,00\nStop: 28,00"
SHORT = "VENDA: {asset} @ R$ 10.00 - Stop: R$ 11.00 - Alvo: R$ 9.00"


def at(day: int, hour: int, minute: int = 0, month: int = 10) -> datetime:
    return datetime(2025, month, day, hour, minute, tzinfo=UTC)


# (Telegram date in UTC, text), in Telegram order; message ids are the positions from 1.
# São Paulo is UTC-3: 13:00 UTC is 10:00 there.
STORY = [
    (at(6, 13), SIGNAL.format(asset="PETR4")),              # S1  open: a stop move is no outcome
    (at(6, 14), SIGNAL.format(asset="VALE3")),              # S2  target 1 after 2 h, +10
    (at(6, 15), "PETR4: subam o stop para 31,00"),
    (at(6, 16), "VALE3 ALVO 1 ATINGIDO ✅ +10%"),
    (at(7, 13), SIGNAL.format(asset="ITUB4")),              # S3  target 1 after 4 h, then the final: +20
    (at(7, 14), SIGNAL.format(asset="BBAS3")),              # S4  stopped, -8: a loss
    (at(7, 17), "ITUB4 ALVO 1 ATINGIDO ✅ +5%"),
    (at(7, 20), "BBAS3 stop -8%"),
    (at(8, 12), "ITUB4 ALVO FINAL ATINGIDO 🚀 +20%"),
    (at(8, 13), SIGNAL.format(asset="WEGE3")),              # S5  target 1 after 6 h, then stopped at -3: a win
    (at(8, 19), "WEGE3 ALVO 1 ATINGIDO ✅ +6%"),
    (at(9, 13), SIGNAL.format(asset="ABEV3")),              # S6  cancelled: neither win nor loss
    (at(9, 15), "WEGE3 stop -3%"),
    (at(9, 16), "Cancelado ABEV3"),
    (at(13, 13), SIGNAL.format(asset="SUZB3")),             # S7  closed +12: a win
    (at(13, 14), SIGNAL.format(asset="RENT3")),             # S8  closed -6: a loss
    (at(14, 13), SHORT.format(asset="MGLU3")),              # S9  short, target 1 after 2 h, +4: a win
    (at(14, 13, 30), "Encerramos SUZB3 com +12%"),
    (at(14, 14), "Encerramos RENT3 com -6%"),
    (at(14, 15), "MGLU3 ALVO 1 ATINGIDO ✅ +4%"),
    (at(15, 13), SHORT.format(asset="CSNA3")),              # S10 short, stopped, -7: a loss
    (at(15, 14), SIGNAL.format(asset="GGBR4")),             # S11 deleted below: counted nowhere (its +50 neither)
    (at(15, 15), "GGBR4 ALVO 1 ATINGIDO ✅ +50%"),
    (at(15, 18), "CSNA3 stop -7%"),
    (at(16, 13), SIGNAL.format(asset="LREN3")),             # S12 closed with no result: neither
    (at(16, 15), "Zerar LREN3"),
    (at(1, 2, month=11), SIGNAL.format(asset="KLBN11")),    # S16 open; Oct 31, 23:00 in São Paulo: October
    (at(3, 13, month=11), SIGNAL.format(asset="PRIO3")),    # S13 target 1 after 8 h, +8
    (at(3, 21, month=11), "PRIO3 ALVO 1 ATINGIDO ✅ +8%"),
    (at(4, 13, month=11), SIGNAL.format(asset="RADL3")),    # S14 open
    (at(5, 13, month=11), SHORT.format(asset="USIM5")),     # S15 short, closed +3: a win
    (at(5, 16, month=11), "Encerramos USIM5 com +3%"),
]
DELETED_MESSAGE_ID = 22  # GGBR4

_channels = itertools.count(1)


def new_channel_id() -> int:
    # Apart from the ingest conftest's channel_id range; unique per process and call.
    return -2_000_000_000_000 - os.getpid() * 1_000 - next(_channels)


def channel_name(channel_id: int) -> str:
    return f"Canal Placar {channel_id}"


def payload(channel_id: int, message_id: int, when: datetime, text: str, name: str | None = None) -> dict:
    return {"channelId": str(channel_id), "messageId": message_id, "timestamp": when.isoformat(), "text": text,
            "channelName": name or channel_name(channel_id)}


def post(target: Target, body: dict) -> dict:
    response = target.client.post("/ingest", json=body, headers=auth(), timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def post_story(target: Target, channel_id: int, name: str | None = None) -> None:
    """STORY in one batch, then the deletion of S11."""
    messages = [payload(channel_id, i, when, text, name) for i, (when, text) in enumerate(STORY, 1)]
    response = target.client.post("/ingest/batch", json={"messages": messages}, headers=auth(), timeout=60)
    assert response.status_code == 200, response.text
    assert response.json()["stored"] == len(STORY)
    post(target, {"kind": "deleted", "channelId": str(channel_id), "messageId": DELETED_MESSAGE_ID})


def stats(target: Target, **params: object) -> httpx.Response:
    return target.client.get("/signals/stats", params=params, timeout=30)


def rows(target: Target, **params: object) -> list[dict]:
    response = stats(target, **params)
    assert response.status_code == 200, response.text
    return response.json()["data"]
