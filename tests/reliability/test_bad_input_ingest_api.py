"""Bad input against the live ingest API, table-driven.

Each row is one request a careless or hostile client could send. A rejected request must get
the 4xx of the table with a JSON body whose `error` says what is wrong, and must leave every
table of the tp_capital schema exactly as it was. A valid-but-unusual one (SQL metacharacters,
emoji, right-to-left text, the largest ids) must be stored exactly as sent.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from itertools import count

import httpx
import pytest

from tests.support.live import LiveService, snapshot
from tests.support.db import connection

NOW = datetime.now(timezone.utc).replace(microsecond=0)
_ids = count(1)


def payload(**overrides: object) -> dict:
    body = {"channelId": "-1001649127710", "messageId": 1_000_000 + next(_ids),
            "timestamp": (NOW - timedelta(hours=1)).isoformat(), "text": "ATIVO: PETR4 COMPRA: 25.50"}
    body.update(overrides)
    return {key: value for key, value in body.items() if value is not ...}


@dataclass
class Bad:
    """A request that must be refused."""

    id: str
    status: int
    body: bytes | None = None
    json_body: object = None
    headers: dict[str, str] = field(default_factory=dict)
    auth: str | None = "header"  # "header": the right token in X-Gateway-Token; None: no token
    path: str = "/ingest"
    method: str | None = None  # default: from the path
    params: dict[str, str] = field(default_factory=dict)
    # A word the error text or details must contain (the message says what is wrong).
    mentions: str | None = None


TEN_MB = b'{"channelId":"-1001","messageId":1,"timestamp":"2026-01-01T00:00:00Z","text":"' + b"x" * (10 * 1024 * 1024) + b'"}'

BAD_INPUT = [
    # -- authentication
    Bad("missing token", 401, json_body=payload(), auth=None, mentions="Missing X-Gateway-Token"),
    Bad("wrong token", 401, json_body=payload(), auth="wrong", mentions="Invalid gateway token"),
    Bad("empty token", 401, json_body=payload(), auth=None, headers={"X-Gateway-Token": ""}),
    Bad("token plus one character", 401, json_body=payload(), auth="longer", mentions="Invalid"),
    Bad("token prefix only", 401, json_body=payload(), auth="prefix", mentions="Invalid"),
    Bad("token in Authorization header", 401, json_body=payload(), auth="bearer"),
    Bad("token in query string", 401, json_body=payload(), auth="query"),
    Bad("token in the body", 401, json_body=payload(token="<token>"), auth=None),
    # -- the body as a whole
    Bad("body of 10 MB", 413, body=TEN_MB, mentions="too large"),
    Bad("malformed JSON", 400, body=b'{"channelId": "-1001", "messageId": ', mentions="JSON"),
    Bad("empty body", 400, body=b""),
    Bad("JSON array instead of object", 400, json_body=[payload()], mentions="object"),
    Bad("JSON string", 400, json_body="hello"),
    Bad("invalid UTF-8 outside strings", 400, body=b'{"channelId":"-1001","messageId":5,\xff}'),
    # Invalid UTF-8 inside strings used to reach msgspec's lazy string decode (a 500) or, in an
    # unknown field or a batch element, to pass unseen; the whole body is checked now.
    Bad("invalid UTF-8 in text", 400, mentions="UTF-8",
        body=b'{"channelId":"-1001","messageId":5,"timestamp":"2026-01-01T00:00:00Z","text":"\xff\xfe\xc3"}'),
    Bad("invalid UTF-8 in an unknown field", 400, mentions="UTF-8",
        body=b'{"channelId":"-1001","messageId":5,"timestamp":"2026-01-01T00:00:00Z","note":"\xc3\x28"}'),
    Bad("invalid UTF-8 in a key", 400, mentions="UTF-8",
        body=b'{"channelId\xff":"-1001","messageId":5,"timestamp":"2026-01-01T00:00:00Z"}'),
    Bad("truncated UTF-8 sequence", 400, mentions="UTF-8",
        body=b'{"channelId":"-1001","messageId":5,"timestamp":"2026-01-01T00:00:00Z","text":"caf\xc3"}'),
    Bad("UTF-8 encoded surrogate", 400, mentions="UTF-8",
        body=b'{"channelId":"-1001","messageId":5,"timestamp":"2026-01-01T00:00:00Z","text":"\xed\xa0\x80"}'),
    Bad("batch with invalid UTF-8", 400, path="/ingest/batch", mentions="UTF-8",
        body=b'{"messages":[{"channelId":"-1001","messageId":5,"timestamp":"2026-01-01T00:00:00Z","text":"\xff"}]}'),
    Bad("batch with invalid UTF-8 after a valid message", 400, path="/ingest/batch", mentions="UTF-8",
        body=b'{"messages":[{"channelId":"-1001","messageId":7,"timestamp":"2026-01-01T00:00:00Z","text":"ok"},'
             b'{"channelId":"-1001","messageId":8,"timestamp":"2026-01-01T00:00:00Z","text":"\x80"}]}'),
    Bad("NUL byte in text", 400, json_body=payload(text="before\x00after"), mentions="text"),
    Bad("lone surrogate in text", 400, body=b'{"channelId":"-1001","messageId":6,"timestamp":"2026-01-01T00:00:00Z","text":"\\ud800"}'),
    Bad("text over 64 KiB", 400, json_body=payload(text="y" * 70_000), mentions="text"),
    # -- required fields and types
    Bad("missing channelId", 400, json_body=payload(channelId=...), mentions="channelId"),
    Bad("missing messageId", 400, json_body=payload(messageId=...), mentions="messageId"),
    Bad("missing timestamp", 400, json_body=payload(timestamp=...), mentions="timestamp"),
    Bad("messageId as text", 400, json_body=payload(messageId="abc"), mentions="messageId"),
    Bad("messageId as float", 400, json_body=payload(messageId=1.5), mentions="messageId"),
    Bad("channelId as boolean", 400, json_body=payload(channelId=True), mentions="channelId"),
    Bad("channelId not numeric", 400, json_body=payload(channelId="TP Capital"), mentions="channelId"),
    Bad("text as number", 400, json_body=payload(text=12345), mentions="text"),
    Bad("photos as string", 400, json_body=payload(photos="x.jpg"), mentions="photos"),
    Bad("unknown kind", 400, json_body=payload(kind="purged"), mentions="kind"),
    Bad("edit without editDate", 400, json_body=payload(kind="edited"), mentions="editDate"),
    # -- numbers out of range
    Bad("negative messageId", 400, json_body=payload(messageId=-5), mentions="messageId"),
    Bad("zero messageId", 400, json_body=payload(messageId=0), mentions="messageId"),
    Bad("messageId 2^63", 400, json_body=payload(messageId=2**63), mentions="messageId"),
    Bad("messageId 2^64", 400, json_body=payload(messageId=2**64), mentions="messageId"),
    Bad("channelId 2^63", 400, json_body=payload(channelId=2**63), mentions="channelId"),
    Bad("channelId string of 2^63", 400, json_body=payload(channelId=str(2**63)), mentions="channelId"),
    # -- dates
    Bad("timestamp without a zone", 400, json_body=payload(timestamp="2026-01-01T10:00:00"), mentions="timestamp"),
    Bad("timestamp far in the past", 400, json_body=payload(timestamp="1900-01-01T00:00:00Z"), mentions="timestamp"),
    Bad("timestamp far in the future", 400, json_body=payload(timestamp="9999-12-31T23:59:59Z"), mentions="timestamp"),
    Bad("timestamp not a date", 400, json_body=payload(timestamp="yesterday"), mentions="timestamp"),
    Bad("timestamp as epoch number", 400, json_body=payload(timestamp=1_700_000_000), mentions="timestamp"),
    Bad("editDate without a zone", 400,
        json_body=payload(kind="edited", editDate="2026-01-01T10:00:00"), mentions="editDate"),
    # -- batch envelope
    Bad("batch with no messages", 400, json_body={"messages": []}, path="/ingest/batch", mentions="messages"),
    Bad("batch of 1,001", 400, json_body={"messages": [payload() for _ in range(1001)]}, path="/ingest/batch",
        mentions="messages"),
    Bad("batch not a list", 400, json_body={"messages": payload()}, path="/ingest/batch", mentions="messages"),
    Bad("batch malformed JSON", 400, body=b'{"messages": [', path="/ingest/batch"),
    Bad("batch without token", 401, json_body={"messages": [payload()]}, path="/ingest/batch", auth=None),
    # -- query API
    Bad("signals limit 0", 400, path="/signals", params={"limit": "0"}, mentions="limit"),
    Bad("signals limit negative", 400, path="/signals", params={"limit": "-1"}, mentions="limit"),
    Bad("signals limit 2^63", 400, path="/signals", params={"limit": str(2**63)}, mentions="limit"),
    Bad("signals limit not a number", 400, path="/signals", params={"limit": "ten"}, mentions="limit"),
    Bad("signals from garbage", 400, path="/signals", params={"from": "last tuesday"}, mentions="from"),
    # Found by schemathesis: an epoch before 4713 BC reached PostgreSQL's to_timestamp (a 500).
    Bad("messages to before 4713 BC", 400, path="/messages", params={"to": "-2902354034035622"}, mentions="to"),
    Bad("messages from -2^53", 400, path="/messages", params={"from": str(-(2**53))}, mentions="from"),
    Bad("signals from 2^53", 400, path="/signals", params={"from": str(2**53)}, mentions="from"),
    Bad("signals to NUL", 400, path="/signals", params={"to": "2026\x00"}),
    Bad("signal id 2^63", 400, path=f"/signals/{2**63}"),
    Bad("messages bad cursor", 400, path="/messages", params={"cursor": "'; DROP TABLE x; --"}),
    Bad("delete signal without token", 401, path="/signals/1", auth=None),
    Bad("signals from invalid UTF-8", 400, path="/signals?from=%FF%FE", method="GET"),
    Bad("messages cursor invalid UTF-8", 400, path="/messages?cursor=%C3%28", method="GET"),
    Bad("signals search invalid UTF-8", 400, path="/signals?search=PETR%C3", method="GET", mentions="UTF-8"),
    Bad("signals channel invalid UTF-8", 400, path="/signals?channel=%FF", method="GET", mentions="UTF-8"),
    Bad("messages channel invalid UTF-8", 400, path="/messages?channel=%ED%A0%80", method="GET", mentions="UTF-8"),
    Bad("signal id invalid UTF-8", 404, path="/signals/%FF", method="GET"),
]


def _send(api: LiveService, case: Bad, client: httpx.Client) -> httpx.Response:
    headers = dict(case.headers)
    params = dict(case.params)
    if case.auth == "header":
        headers["X-Gateway-Token"] = api.token
    elif case.auth == "wrong":
        headers["X-Gateway-Token"] = "w" * len(api.token)
    elif case.auth == "longer":
        headers["X-Gateway-Token"] = api.token + "x"
    elif case.auth == "prefix":
        headers["X-Gateway-Token"] = api.token[:8]
    elif case.auth == "bearer":
        headers["Authorization"] = f"Bearer {api.token}"
    elif case.auth == "query":
        params["token"] = api.token
    body = case.body
    if case.json_body is not None:
        body = json.dumps(case.json_body).replace("<token>", api.token).encode()
    method = case.method or ("DELETE" if case.path.startswith("/signals/") and case.id.startswith("delete") else (
        "GET" if case.path in ("/signals", "/messages") or case.path.startswith("/signals/") else "POST"))
    if body is not None:
        headers.setdefault("Content-Type", "application/json")
    return client.request(method, api.url + case.path, content=body, headers=headers,
                          params=params or None)  # {} would drop a query written in the path


@pytest.fixture(scope="module")
def client() -> httpx.Client:
    with httpx.Client(timeout=30) as client:
        yield client


@pytest.mark.parametrize("case", BAD_INPUT, ids=[case.id for case in BAD_INPUT])
def test_bad_input_gets_a_clear_4xx_and_changes_nothing(ingest_api: LiveService, client: httpx.Client,
                                                        case: Bad) -> None:
    before = snapshot(ingest_api.database_url, "tp_capital")
    response = _send(ingest_api, case, client)
    assert response.status_code == case.status, response.text[:500]
    body = response.json()
    assert isinstance(body.get("error"), str) and body["error"], body
    if case.mentions:
        said = (body["error"] + " " + " ".join(body.get("details") or [])).lower()
        assert case.mentions.lower() in said, body
    assert snapshot(ingest_api.database_url, "tp_capital") == before


STORED_EXACTLY = [
    ("SQL metacharacters", "'; DROP TABLE tp_capital.forwarded_messages; -- \" \\ % _ $1 $$"),
    ("emoji", "🚀📈 PETR4 ALVO 1 ATINGIDO ✅ 👩‍💻🇧🇷"),
    ("right-to-left", "مرحبا بالعالم — שלום עולם ‮reversed‬"),
    ("control characters", "tab\tnewline\nreturn\r bell\x07 escape\x1b"),
    ("combining marks", "e\u0301 vs é, Å vs A\u030a, ﬁ ligature"),
    ("astral plane", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝟙𝟚𝟛 \U0010fffd"),
]


@pytest.mark.parametrize(("label", "text"), STORED_EXACTLY, ids=[label for label, _ in STORED_EXACTLY])
def test_unusual_valid_text_is_stored_exactly(ingest_api: LiveService, client: httpx.Client, label: str,
                                              text: str) -> None:
    body = payload(text=text)
    response = client.post(f"{ingest_api.url}/ingest", json=body, headers={"X-Gateway-Token": ingest_api.token})
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "stored"
    rows = _rows(ingest_api, body["messageId"])
    assert [row["message_text"] for row in rows] == [text]


@pytest.mark.parametrize(("channel_id", "message_id"), [
    (-(2**63), 2**63 - 1),
    (2**63 - 1, 1),
    ("-9223372036854775808", 2**62),
])
def test_extreme_but_valid_ids_are_stored_exactly(ingest_api: LiveService, client: httpx.Client,
                                                  channel_id: int | str, message_id: int) -> None:
    body = payload(channelId=channel_id, messageId=message_id, text=f"ids {channel_id} {message_id}")
    response = client.post(f"{ingest_api.url}/ingest", json=body, headers={"X-Gateway-Token": ingest_api.token})
    assert response.status_code == 200, response.text
    rows = _rows(ingest_api, message_id, int(channel_id))
    assert len(rows) == 1 and rows[0]["message_text"] == body["text"]


def test_timestamp_with_an_offset_is_stored_as_the_same_instant(ingest_api: LiveService, client: httpx.Client) -> None:
    local = (NOW - timedelta(hours=2)).astimezone(timezone(timedelta(hours=-3)))
    body = payload(timestamp=local.isoformat())
    response = client.post(f"{ingest_api.url}/ingest", json=body, headers={"X-Gateway-Token": ingest_api.token})
    assert response.status_code == 200, response.text
    (row,) = _rows(ingest_api, body["messageId"])
    assert row["original_timestamp"] == local


def _rows(api: LiveService, message_id: int, channel_id: int = -1001649127710) -> list:
    import asyncio


    async def fetch() -> list:
        async with connection(api.database_url) as conn:
            return await conn.fetch(
                "SELECT message_text, original_timestamp FROM tp_capital.forwarded_messages"
                " WHERE channel_id = $1 AND message_id = $2", channel_id, message_id)

    return asyncio.run(fetch())
