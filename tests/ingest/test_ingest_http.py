"""POST /ingest and /ingest/batch through real HTTP (granian) against a real PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import asyncpg
import httpx
import pytest

from tests.support.db import connection
from tests.support.ingest import TOKEN, Api, Server, Target, auth

SIGNAL_TEXT = "🟢Swing Trade\nAtivo: BOVAW32\nCompra: 1,04 a 1,06\nAlvo 1: 1,15\nAlvo 2: 2,15\nAlvo final: 3,50\nStop: 0,70"
T0 = "2025-10-07T17:25:59+00:00"


def message(channel_id: int, message_id: int, text: str = "hello", **extra: object) -> dict:
    return {"channelId": str(channel_id), "messageId": message_id, "text": text, "timestamp": T0, **extra}


async def fetch(database_url: str, query: str, *args: object) -> list[asyncpg.Record]:
    async with connection(database_url) as conn:
        return await conn.fetch(query, *args)


def post(api: Target, body: object, headers: dict[str, str] | None = None, path: str = "/ingest") -> httpx.Response:
    return api.client.post(path, json=body, headers=auth() if headers is None else headers, timeout=10)


# -- auth ------------------------------------------------------------------------------------

def test_missing_token_is_401(api: Api, channel_id: int) -> None:
    response = post(api, message(channel_id, 1), headers={})
    assert response.status_code == 401
    assert response.json() == {"error": "Missing X-Gateway-Token header"}


def test_wrong_token_is_401_and_counted(server: Server, channel_id: int) -> None:
    before = _metric(server, 'api_auth_failures_total{reason="invalid"}')
    response = post(server, message(channel_id, 1), headers=auth("wrong-" + TOKEN))
    assert response.status_code == 401
    assert response.json() == {"error": "Invalid gateway token"}
    assert _metric(server, 'api_auth_failures_total{reason="invalid"}') == before + 1
    # A prefix of the right token is still wrong (no length or prefix leak).
    assert post(server, message(channel_id, 1), headers=auth(TOKEN[:-1])).status_code == 401
    # The supplied value is never logged; the expected one only by its first 8 characters.
    assert "wrong-" + TOKEN not in server.log()
    assert TOKEN not in server.log()


@pytest.mark.parametrize("path", ["/ingest", "/ingest/batch"])
async def test_api_key_header_is_not_accepted_for_ingest(api: Api, channel_id: int, path: str) -> None:
    # X-API-Key is the old dashboard's header for the DELETE endpoints only.
    body = message(channel_id, 1) if path == "/ingest" else {"messages": [message(channel_id, 1)]}
    response = post(api, body, headers={"X-API-Key": TOKEN}, path=path)
    assert response.status_code == 401
    assert response.json() == {"error": "Missing X-Gateway-Token header"}
    rows = await fetch(api.database_url, "SELECT count(*) FROM tp_capital.forwarded_messages WHERE channel_id = $1", channel_id)
    assert rows[0][0] == 0


async def test_right_token_stores(server: Server, channel_id: int) -> None:
    response = post(server, message(channel_id, 7, "olá 👋 ‏שלום‎ '; DROP TABLE x; --"))
    assert response.status_code == 200
    assert response.json() == {"success": True, "status": "stored", "stored": True, "messageId": 7}
    rows = await fetch(server.database_url, "SELECT message_text FROM tp_capital.forwarded_messages WHERE channel_id = $1", channel_id)
    # Emoji, RTL text and SQL metacharacters are stored exactly as sent.
    assert [r["message_text"] for r in rows] == ["olá 👋 ‏שלום‎ '; DROP TABLE x; --"]


# -- validation ------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"channelId": None}, "channelId"),
        ({"channelId": "abc"}, "channelId"),
        ({"channelId": 2**63}, "channelId"),
        ({"channelId": "99999999999999999999"}, "channelId"),
        ({"messageId": None}, "messageId"),
        ({"messageId": "12"}, "messageId"),
        ({"messageId": -1}, "messageId"),
        ({"messageId": 0}, "messageId"),
        ({"messageId": 2**63}, "messageId"),
        ({"messageId": 1.5}, "messageId"),
        ({"timestamp": None}, "timestamp"),
        ({"timestamp": "yesterday"}, "timestamp"),
        ({"timestamp": "2025-10-07T17:25:59"}, "timestamp"),  # no zone
        ({"timestamp": "2013-07-31T23:59:59Z"}, "timestamp"),  # before Telegram
        ({"timestamp": (datetime.now(timezone.utc) + timedelta(days=2)).isoformat()}, "timestamp"),
        ({"text": 42}, "text"),
        ({"text": "a\u0000b"}, "text"),
        ({"photos": "x"}, "photos"),
        ({"photos": ["a\u0000"]}, "photos"),
        ({"channelName": "bad\u0000"}, "channelName"),
        ({"kind": "exploded"}, "kind"),
        ({"kind": []}, "kind"),  # unhashable: was a 500
        ({"kind": "edited"}, "editDate"),
        ({"kind": "edited", "editDate": "2020-01-01T00:00:00Z"}, "editDate"),  # before the message
    ],
)
def test_each_bad_field_is_named(api: Api, channel_id: int, change: dict, field: str) -> None:
    body = message(channel_id, 1)
    for key, value in change.items():
        if value is None:
            body.pop(key)
        else:
            body[key] = value
    response = post(api, body)
    assert response.status_code == 400, response.text
    payload = response.json()
    assert payload["error"] == "Validation failed"
    assert any(field in detail for detail in payload["details"]), payload


def test_every_missing_field_is_listed(api: Api) -> None:
    response = post(api, {"text": "x"})
    assert response.status_code == 400
    assert response.json()["details"] == ["channelId is required", "messageId is required", "timestamp is required"]


SEVERAL_BAD_FIELDS = {"channelId": "abc", "messageId": "12", "timestamp": "yesterday", "text": 5}


def _named(details: list[str]) -> list[str]:
    return [detail.split(":")[0].split(" ")[0] for detail in details]


def test_several_bad_fields_are_each_named(api: Api) -> None:
    # msgspec stops at the first bad field; every one must be reported.
    response = post(api, SEVERAL_BAD_FIELDS)
    assert response.status_code == 400
    details = response.json()["details"]
    assert _named(details) == ["channelId", "messageId", "timestamp", "text"]
    assert "messageId must be an integer" in details
    assert "timestamp must be valid ISO 8601 datetime with a time zone" in details
    assert "text must be a string" in details
    # Missing and wrong fields together, and a problem inside a nested value, by its path.
    response = post(api, {"kind": "edited", "messageId": 0, "timestamp": T0, "sender": {"id": "x"}, "photos": {}})
    assert response.json()["details"] == [
        "channelId is required", "messageId must be an integer between 1 and 9223372036854775807",
        "photos must be an array", "sender.id must be an integer", "editDate is required"]


def test_several_bad_fields_in_a_batch_element(api: Api, channel_id: int) -> None:
    response = post(api, {"messages": [message(channel_id, 1), SEVERAL_BAD_FIELDS]}, path="/ingest/batch")
    assert response.status_code == 200
    rejected = response.json()["results"][1]
    assert rejected["status"] == "rejected"
    assert _named(rejected["details"]) == [f"messages[1].{name}" for name in ("channelId", "messageId", "timestamp", "text")]


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"\xff\xfe{}", b'"a string"', b"[1,2]", b"", b'{"channelId": "1", "messageId": 1, "timestamp": "' + T0.encode() + b'", "text": "\\ud800"}'],
)
def test_malformed_bodies_are_400(api: Api, body: bytes) -> None:
    response = api.client.post("/ingest", content=body, headers={**auth(), "content-type": "application/json"})
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "Validation failed"


def test_deeply_nested_json_is_400(api: Api, channel_id: int) -> None:
    deep = b"[" * 50_000 + b"]" * 50_000
    body = b'{"channelId": "%d", "messageId": 1, "timestamp": "%s", "photos": %s}' % (channel_id, T0.encode(), deep)
    response = api.client.post("/ingest", content=body, headers={**auth(), "content-type": "application/json"})
    assert response.status_code == 400
    assert "nested too deeply" in response.json()["details"][0]


def test_body_too_large_is_413(api: Api, channel_id: int) -> None:
    body = message(channel_id, 1, "x" * (1024 * 1024 + 10))
    response = post(api, body)
    assert response.status_code == 413
    assert "too large" in response.json()["error"].lower()


def test_old_payload_with_numeric_channel_and_photos(api: Api, channel_id: int) -> None:
    body = {"channelId": channel_id, "messageId": 3, "text": "x", "timestamp": "2025-10-07T14:25:59-03:00", "photos": [{"id": 1}]}
    assert post(api, body).json()["status"] == "stored"
    # Same message, channel id as a string and the date in another zone: the same key.
    body = {**body, "channelId": str(channel_id), "timestamp": T0}
    assert post(api, body).json() == {"success": True, "status": "duplicate", "stored": False, "messageId": 3, "reason": "duplicate"}


# -- idempotency -----------------------------------------------------------------------------

async def test_duplicate_is_stored_once(api: Api, channel_id: int) -> None:
    first = post(api, message(channel_id, 10, SIGNAL_TEXT))
    second = post(api, message(channel_id, 10, SIGNAL_TEXT))
    assert (first.json()["stored"], second.json()["stored"]) == (True, False)
    assert second.json()["reason"] == "duplicate"
    rows = await fetch(api.database_url, "SELECT count(*) FROM tp_capital.forwarded_messages WHERE channel_id = $1", channel_id)
    signals = await fetch(api.database_url, "SELECT asset, buy_min, target_final FROM tp_capital.tp_capital_signals WHERE channel_id = $1", channel_id)
    assert rows[0][0] == 1
    assert [tuple(s) for s in signals] == [("BOVAW32", 1.04, 3.5)]


async def test_concurrent_duplicates_store_one_row(server: Server, channel_id: int) -> None:
    async with httpx.AsyncClient(base_url=server.url, headers=auth(), timeout=20) as client:
        responses = await asyncio.gather(*(client.post("/ingest", json=message(channel_id, 11)) for _ in range(24)))
    statuses = sorted(r.json()["status"] for r in responses)
    assert statuses == ["duplicate"] * 23 + ["stored"]
    rows = await fetch(server.database_url, "SELECT count(*) FROM tp_capital.forwarded_messages WHERE channel_id = $1", channel_id)
    assert rows[0][0] == 1


# -- edits and deletes -----------------------------------------------------------------------

def edit(channel_id: int, message_id: int, text: str, minutes: int) -> dict:
    edited_at = (datetime.fromisoformat(T0) + timedelta(minutes=minutes)).isoformat()
    return {**message(channel_id, message_id, text), "kind": "edited", "editDate": edited_at}


def delete(channel_id: int, message_id: int) -> dict:
    return {"kind": "deleted", "channelId": str(channel_id), "messageId": message_id}


async def _state(api: Target, channel_id: int, message_id: int) -> tuple[str, bool, list[str]]:
    row = (await fetch(api.database_url,
                       "SELECT message_text, deleted_at IS NOT NULL AS deleted FROM tp_capital.forwarded_messages "
                       "WHERE channel_id = $1 AND message_id = $2", channel_id, message_id))[0]
    revisions = await fetch(api.database_url,
                            "SELECT message_text FROM tp_capital.message_revisions WHERE channel_id = $1 AND message_id = $2 "
                            "ORDER BY revision_date", channel_id, message_id)
    return row["message_text"], row["deleted"], [r[0] for r in revisions]


async def test_edit_updates_text_and_keeps_revisions(api: Api, channel_id: int) -> None:
    assert post(api, message(channel_id, 20, "ATIVO: PETR4 COMPRA: 25,00")).json()["status"] == "stored"
    assert post(api, edit(channel_id, 20, "ATIVO: PETR4 COMPRA: 26,00", 5)).json()["status"] == "stored"
    assert post(api, edit(channel_id, 20, "ATIVO: PETR4 COMPRA: 26,00", 5)).json()["status"] == "duplicate"
    text, deleted, revisions = await _state(api, channel_id, 20)
    assert (text, deleted) == ("ATIVO: PETR4 COMPRA: 26,00", False)
    assert revisions == ["ATIVO: PETR4 COMPRA: 25,00", "ATIVO: PETR4 COMPRA: 26,00"]
    signal = await fetch(api.database_url, "SELECT buy_min FROM tp_capital.tp_capital_signals WHERE channel_id = $1", channel_id)
    assert [s[0] for s in signal] == [26.0]  # the signal follows the latest text


async def test_out_of_order_edits_converge(api: Api, channel_id: int) -> None:
    # The newer edit, then the original, then an older edit: the newest text wins, all are kept.
    assert post(api, edit(channel_id, 21, "v3", 10)).json()["status"] == "stored"
    assert post(api, message(channel_id, 21, "v1")).json()["status"] == "duplicate"
    assert post(api, edit(channel_id, 21, "v2", 5)).json()["status"] == "stored"
    text, _, revisions = await _state(api, channel_id, 21)
    assert text == "v3"
    assert revisions == ["v1", "v2", "v3"]


async def test_delete_marks_message_and_signal(api: Api, channel_id: int) -> None:
    post(api, message(channel_id, 22, SIGNAL_TEXT))
    assert post(api, delete(channel_id, 22)).json()["status"] == "stored"
    assert post(api, delete(channel_id, 22)).json()["status"] == "duplicate"
    text, deleted, _ = await _state(api, channel_id, 22)
    assert (text, deleted) == (SIGNAL_TEXT, True)  # marked, not erased
    signal = await fetch(api.database_url, "SELECT deleted_at IS NOT NULL FROM tp_capital.tp_capital_signals WHERE channel_id = $1", channel_id)
    assert [s[0] for s in signal] == [True]
    listed = api.client.get("/signals", params={"channel": str(channel_id)}).json()["data"]
    assert listed == []


async def test_delete_before_message_still_ends_deleted(api: Api, channel_id: int) -> None:
    assert post(api, delete(channel_id, 23)).json()["status"] == "stored"
    assert post(api, message(channel_id, 23, SIGNAL_TEXT)).json()["status"] == "stored"
    _, deleted, _ = await _state(api, channel_id, 23)
    assert deleted


# -- batch -----------------------------------------------------------------------------------

async def test_batch_mixed_new_duplicate_invalid(api: Api, channel_id: int) -> None:
    post(api, message(channel_id, 30))
    batch = {"messages": [
        message(channel_id, 31, SIGNAL_TEXT),  # new
        message(channel_id, 30),  # duplicate of an earlier request
        {"channelId": "x", "messageId": 32},  # invalid
        message(channel_id, 33),  # new
        message(channel_id, 33),  # duplicate within the batch
        edit(channel_id, 31, "edited", 1),  # edit of a message in the same batch
        delete(channel_id, 33),
        42,  # not even an object
    ]}
    response = post(api, batch, path="/ingest/batch")
    assert response.status_code == 200, response.text
    body = response.json()
    assert [r["status"] for r in body["results"]] == [
        "stored", "duplicate", "rejected", "stored", "duplicate", "stored", "stored", "rejected"]
    assert body["results"][2]["details"] and "messages[2]" in body["results"][2]["details"][0]
    assert (body["stored"], body["duplicates"], body["rejected"]) == (4, 2, 2)
    assert (await _state(api, channel_id, 31))[0] == "edited"
    assert (await _state(api, channel_id, 33))[1] is True


@pytest.mark.parametrize(
    "body", [[], {}, {"messages": []}, {"messages": "x"}, {"messages": [{}] * 1001}],
)
def test_batch_envelope_errors_are_400(api: Api, body: object) -> None:
    response = post(api, body, path="/ingest/batch")
    assert response.status_code == 400
    assert response.json()["error"] == "Validation failed"


async def test_batch_of_1000(api: Api, channel_id: int) -> None:
    batch = {"messages": [message(channel_id, 1000 + i, f"m{i}") for i in range(1000)]}
    response = post(api, batch, path="/ingest/batch")
    assert response.json()["stored"] == 1000
    assert post(api, batch, path="/ingest/batch").json()["duplicates"] == 1000
    rows = await fetch(api.database_url, "SELECT count(*) FROM tp_capital.forwarded_messages WHERE channel_id = $1", channel_id)
    assert rows[0][0] == 1000


def test_batch_requires_token(api: Api, channel_id: int) -> None:
    assert post(api, {"messages": [message(channel_id, 1)]}, headers={}, path="/ingest/batch").status_code == 401


def _metric(api: Target, sample: str) -> float:
    for line in api.client.get("/metrics").text.splitlines():
        if line.startswith(sample + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0
