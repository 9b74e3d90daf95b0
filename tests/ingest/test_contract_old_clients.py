"""What the old TP Capital clients read, route by route, field by field, status by status.

The old React dashboard, the old ops scripts and anything written against the Node.js API must
keep working without a line changed on their side (issue 12). Every row below is one fact of the
old API checked through real HTTP against the ingest API under granian. The old API had no `/api`
prefix (the dashboard's proxy strips `/api/tp-capital`), so neither does this one.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

from tests.support.db import connection
from tests.support.ingest import TOKEN, Api, Server, Target, auth, start_server
from ts_ops.embedded_pg import free_port

T0 = datetime(2025, 10, 7, 12, 0, tzinfo=timezone.utc)
SWING = "🟢Swing Trade\nAtivo: {asset}\nCompra: 1,04 a 1,06\nAlvo 1: 1,15\nAlvo final: 3,50\nStop: 0,70"
def share(n: int) -> str:
    """A distinct valid B3 share code per n (PAAA3, PAAB3, …): four letters and class 3."""
    return "P" + "".join(chr(65 + (n // 26**k) % 26) for k in (2, 1, 0)) + "3"


ISO_MS = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$"  # JavaScript's toISOString()
NUMBER = (int, float)


def js_iso(moment: datetime) -> str:
    """What the dashboard sends back: JavaScript's toISOString() of the value it was served."""
    moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def ingest_batch(api: Target, channel_id: int, texts: list[str], first_id: int = 1,
                 name: str | None = None) -> None:
    messages = [{"channelId": str(channel_id), "messageId": first_id + i, "text": text,
                 "timestamp": (T0 + timedelta(minutes=first_id + i)).isoformat(),
                 **({"channelName": name} if name else {})} for i, text in enumerate(texts)]
    response = api.client.post("/ingest/batch", json={"messages": messages}, headers=auth(), timeout=30)
    assert response.status_code == 200 and response.json()["stored"] == len(texts), response.text


# -- operations routes: /healthz, /health, /ready -------------------------------------------

@dataclass
class Field:
    name: str
    kind: type | tuple[type, ...]
    value: Any = None  # when set, the exact value


HEALTHZ = [Field("status", str, "healthy"), Field("service", str, "tp-capital"), Field("uptime", NUMBER)]
HEALTH = [
    # The old shared format (backend/shared/middleware/health.js)...
    Field("status", str, "healthy"), Field("service", str, "tp-capital"), Field("version", str),
    Field("timestamp", str), Field("uptime", NUMBER), Field("checks", dict), Field("responseTime", NUMBER),
    # ...beside the fields this API had before it.
    Field("uptime_seconds", NUMBER), Field("database", dict),
]
CHECK = [Field("status", str, "healthy"), Field("message", str, "connected"), Field("responseTime", NUMBER)]
READY = [Field("ready", bool, True)]


def assert_fields(body: dict, fields: list[Field]) -> None:
    for field in fields:
        assert field.name in body, f"{field.name} missing from {body}"
        assert isinstance(body[field.name], field.kind), (field.name, body[field.name])
        if field.value is not None:
            assert body[field.name] == field.value, (field.name, body[field.name])


@pytest.mark.parametrize(("path", "fields"), [("/healthz", HEALTHZ), ("/health", HEALTH), ("/ready", READY)],
                         ids=["healthz", "health", "ready"])
def test_operations_routes_answer_the_old_fields(api: Api, path: str, fields: list[Field]) -> None:
    response = api.client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert_fields(response.json(), fields)


def test_health_checks_timescaledb_in_the_old_format(api: Api) -> None:
    body = api.client.get("/health").json()
    assert list(body["checks"]) == ["timescaledb"]
    assert_fields(body["checks"]["timescaledb"], CHECK)
    assert parse(body["timestamp"]).tzinfo is not None
    # What the old ops scripts test.
    assert api.client.get("/healthz").json()["status"] == "healthy"


@pytest.fixture(scope="module")
def server_without_database(tmp_path_factory: pytest.TempPathFactory) -> Server:
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/none"  # nothing listens there
    running = start_server(url, tmp_path_factory.mktemp("no-db") / "server.log")
    yield running
    running.stop()


@pytest.mark.parametrize(("path", "status"), [("/healthz", 200), ("/health", 503), ("/ready", 503)])
def test_database_down_statuses(server_without_database: Server, path: str, status: int) -> None:
    response = httpx.get(server_without_database.url + path, timeout=10)
    assert response.status_code == status
    body = response.json()
    if path == "/health":
        assert body["status"] == "unhealthy" and body["checks"]["timescaledb"]["status"] == "unhealthy"
        assert body["checks"]["timescaledb"]["message"]  # the reason
        assert body["database"]["connected"] is False
    if path == "/healthz":  # liveness never depends on the database
        assert body["status"] == "healthy"


# -- GET /logs (the dashboard's "Logs de Ingestão" card) ------------------------------------

HISTORY = 40


@pytest.fixture(scope="module")
def log_server(api_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Server:
    """A server of this module's own, so that its log history holds only what these tests did."""
    running = start_server(api_database_url, tmp_path_factory.mktemp("logs") / "server.log",
                           LOG_HISTORY_SIZE=str(HISTORY))
    yield running
    running.stop()


def test_logs_redact_secrets_as_the_log_file_does(log_server: Server) -> None:
    started = [e for e in log_server.client.get("/logs", params={"level": "info"}).json()["data"]
               if e["message"] == "ingest-api started"]
    assert started, "the start line is in the history"
    assert started[-1]["context"]["gateway_token"] == TOKEN[:8] + "…"
    assert started[-1]["context"]["logger"] == "ingest_api"
    assert TOKEN[:9] not in log_server.client.get("/logs").text
    assert TOKEN[:9] not in log_server.log()


def test_logs_newest_first_with_the_old_entry_fields(log_server: Server) -> None:
    for _ in range(2):  # two warnings the service logs itself
        log_server.client.post("/ingest", json={}, headers={"X-Gateway-Token": "wrong" * 8})
    response = log_server.client.get("/logs", params={"limit": 2, "level": "warn"})
    assert response.status_code == 200
    entries = response.json()["data"]
    assert len(entries) == 2
    for entry in entries:
        assert set(entry) == {"timestamp", "level", "message", "context"}
        assert re.fullmatch(ISO_MS, entry["timestamp"])
        assert entry["level"] == "warn" and entry["message"] == "request with a wrong token refused"
        assert entry["context"]["client"] == "127.0.0.1" and entry["context"]["path"] == "/ingest"
    assert entries[0]["timestamp"] >= entries[1]["timestamp"]
    everything = log_server.client.get("/logs").json()["data"]
    stamps = [e["timestamp"] for e in everything]
    assert stamps == sorted(stamps, reverse=True) and len(everything) >= 3
    assert {e["level"] for e in everything} <= {"fatal", "error", "warn", "info", "debug"}


def test_logs_keep_the_last_log_history_size_records(log_server: Server) -> None:
    for n in range(HISTORY + 5):
        log_server.client.post("/ingest", json={}, headers={"X-Gateway-Token": f"wrong-{n}" * 6})
    entries = log_server.client.get("/logs").json()["data"]
    assert len(entries) == HISTORY  # the oldest went, the start line among them
    assert all(e["message"] == "request with a wrong token refused" for e in entries)


@pytest.mark.parametrize(("params", "status", "names"), [
    ({"level": "error"}, 200, None),
    ({"level": "WARN"}, 200, None),  # the old API lower-cased it too
    ({"limit": "1"}, 200, None),
    ({"limit": "0"}, 400, "limit"),  # the old API answered everything; 0 is not a count
    ({"limit": "ten"}, 400, "limit"),
    ({"limit": "-3"}, 400, "limit"),
    ({"level": "warning"}, 400, "level"),  # Python's name: the old names are the contract
    ({"level": "verbose"}, 400, "level"),
])
def test_logs_query_values(log_server: Server, params: dict, status: int, names: str | None) -> None:
    response = log_server.client.get("/logs", params=params)
    assert response.status_code == status, response.text
    body = response.json()
    if names:
        assert names in body["error"] and any(d.startswith(names) for d in body["details"])
    else:
        data = body["data"]
        assert len(data) <= int(params.get("limit", 10_000))
        if "level" in params:
            assert {e["level"] for e in data} <= {params["level"].lower()}


# -- GET /forwarded-messages ------------------------------------------------------------------

OLD_MESSAGE_FIELDS = {"id", "channel_id", "message_id", "message_text", "original_timestamp", "photos", "received_at",
                      "ts", "source_channel_id", "source_channel_name", "forwarded_at"}


@pytest.fixture
def two_channels(api: Target, channel_id: int) -> tuple[int, int]:
    other = channel_id - 5_000
    ingest_batch(api, channel_id, ["Bom dia", SWING.format(asset="PETR4"), "Até amanhã"], name="TP Capital")
    ingest_batch(api, other, ["Outro canal"], name="Outro")
    return channel_id, other


def test_forwarded_messages_rows_carry_the_old_aliases(api: Api, two_channels: tuple[int, int]) -> None:
    channel, _ = two_channels
    response = api.client.get("/forwarded-messages", params={"channelId": str(channel)})
    assert response.status_code == 200
    rows = response.json()["data"]
    assert [r["message_id"] for r in rows] == [3, 2, 1]  # newest first
    for row in rows:
        assert OLD_MESSAGE_FIELDS <= set(row)
        assert row["ts"] == int(parse(row["original_timestamp"]).timestamp() * 1000)
        assert row["source_channel_id"] == row["channel_id"] == channel
        assert row["source_channel_name"] == "TP Capital"
        assert row["forwarded_at"] == js_iso(parse(row["received_at"]))
        assert re.fullmatch(ISO_MS, row["forwarded_at"])


@pytest.mark.parametrize(("params", "expected"), [
    ({}, [3, 2, 1]),
    ({"limit": "2"}, [3, 2]),
    ({"from": js_iso(T0 + timedelta(minutes=2))}, [3, 2]),
    ({"to": str(int((T0 + timedelta(minutes=2)).timestamp() * 1000))}, [2, 1]),
    ({"from": js_iso(T0 + timedelta(minutes=2)), "to": js_iso(T0 + timedelta(minutes=2)), "limit": "5"}, [2]),
])
def test_forwarded_messages_channel_id_limit_from_to(api: Api, two_channels: tuple[int, int],
                                                    params: dict, expected: list[int]) -> None:
    channel, other = two_channels
    response = api.client.get("/forwarded-messages", params={"channelId": str(channel), **params})
    assert response.status_code == 200, response.text
    assert [r["message_id"] for r in response.json()["data"]] == expected
    # The other channel's message is never among them, and is found by its own id.
    others = api.client.get("/forwarded-messages", params={"channelId": str(other)}).json()["data"]
    assert [(r["channel_id"], r["message_text"]) for r in others] == [(other, "Outro canal")]


@pytest.mark.parametrize("value", ["abc", "1.5", "-", "1" * 20, str(2**63), str(-(2**63) - 1)])
def test_forwarded_messages_bad_channel_id_is_400_naming_it(api: Api, value: str) -> None:
    response = api.client.get("/forwarded-messages", params={"channelId": value})
    assert response.status_code == 400, response.text
    body = response.json()
    assert "channelId" in body["error"] + " ".join(body.get("details") or [])


@pytest.mark.parametrize(("path", "params"), [
    # Old bugs kept fixed: the old API answered these with 200 (limit=invalid read as "no limit").
    ("/forwarded-messages", {"limit": "invalid"}), ("/signals", {"limit": "invalid"}),
    ("/forwarded-messages", {"limit": "0"}), ("/signals", {"limit": "1001"}),
])
def test_old_bugs_stay_fixed(api: Api, path: str, params: dict) -> None:
    response = api.client.get(path, params=params)
    assert response.status_code == 400
    assert "limit" in response.json()["details"][0]


# -- GET /signals rows, DELETE /signals {ingestedAt} ------------------------------------------

OLD_SIGNAL_FIELDS = {"id", "ts", "channel", "signal_type", "asset", "buy_min", "buy_max", "target_1", "target_2",
                     "target_final", "stop", "raw_message", "source", "ingested_at", "created_at", "updated_at"}


def test_signal_rows_have_the_old_columns(api: Api, channel_id: int) -> None:
    ingest_batch(api, channel_id, [SWING.format(asset="BOVAW32")])
    (row,) = api.client.get("/signals", params={"channel": str(channel_id)}).json()["data"]
    assert OLD_SIGNAL_FIELDS <= set(row)
    assert isinstance(row["ts"], int) and row["asset"] == "BOVAW32"
    assert parse(row["ingested_at"]).microsecond % 1000 == 0  # a whole millisecond: what the dashboard sends back


def test_delete_by_ingested_at_removes_exactly_that_signal_of_a_large_batch(api: Api, channel_id: int) -> None:
    assets = [share(n) for n in range(300)]
    ingest_batch(api, channel_id, [SWING.format(asset=a) for a in assets])  # one INSERT statement
    rows = api.client.get("/signals", params={"channel": str(channel_id), "limit": 1000}).json()["data"]
    served = {js_iso(parse(r["ingested_at"])): r for r in rows}
    assert len(served) == len(rows) == 300  # 300 signals, 300 milliseconds
    for value in list(served)[::60]:
        response = api.client.request("DELETE", "/signals", json={"ingestedAt": value}, headers=auth())
        assert response.status_code == 200, response.text
        assert response.json() == {"status": "ok", "success": True, "deleted": 1}
        remaining = api.client.get("/signals", params={"channel": str(channel_id), "limit": 1000}).json()["data"]
        assert served[value]["id"] not in {r["id"] for r in remaining}
        assert len(remaining) == len(rows) - 1
        rows = remaining
        # A second time: that signal is gone, and no other one answers to its value.
        again = api.client.request("DELETE", "/signals", json={"ingestedAt": value}, headers=auth())
        assert again.status_code == 404


async def test_concurrent_batches_never_share_a_millisecond(server: Server, channel_id: int) -> None:
    async with httpx.AsyncClient(timeout=30) as client:
        async def batch(offset: int) -> None:
            messages = [{"channelId": str(channel_id), "messageId": offset + i, "text": SWING.format(asset=share(offset + i)),
                         "timestamp": (T0 + timedelta(seconds=offset + i)).isoformat()} for i in range(100)]
            response = await client.post(server.url + "/ingest/batch", json={"messages": messages}, headers=auth())
            assert response.status_code == 200 and response.json()["stored"] == 100

        await asyncio.gather(*(batch(1000 * n) for n in range(1, 5)))
    async with connection(server.database_url) as conn:
        values = [r["v"] for r in await conn.fetch(
            "SELECT date_trunc('milliseconds', ingested_at) AS v FROM tp_capital.tp_capital_signals WHERE channel_id = $1",
            channel_id)]
    assert len(values) == 400 and len(set(values)) == 400


@pytest.mark.parametrize(("headers", "status"), [
    ({}, 401),
    ({"X-Gateway-Token": "nope" * 10}, 401),
    ({"X-API-Key": TOKEN}, 200),  # the old dashboard's header
    ({"X-Gateway-Token": TOKEN}, 200),
])
def test_delete_by_ingested_at_auth(api: Api, channel_id: int, headers: dict, status: int) -> None:
    ingest_batch(api, channel_id, [SWING.format(asset="ITUB4")])
    (row,) = api.client.get("/signals", params={"channel": str(channel_id)}).json()["data"]
    response = api.client.request("DELETE", "/signals", json={"ingestedAt": js_iso(parse(row["ingested_at"]))},
                             headers=headers)
    assert response.status_code == status, response.text
    if status == 200:
        assert response.json()["status"] == "ok"


@pytest.mark.parametrize(("body", "status", "mentions"), [
    ({}, 400, "ingestedAt is required"),
    ({"ingestedAt": "yesterday"}, 400, "ingestedAt must be"),
    ({"ingestedAt": "2025-10-07T12:00:00.123"}, 400, "time zone"),  # without a zone: which moment?
    ({"ingestedAt": "9999-12-31T23:59:59.999999-14:00"}, 400, "out of range"),  # asyncpg "date value out of range"
    ({"ingestedAt": "0001-01-01T00:00:00+14:00"}, 400, "out of range"),
    ({"ingestedAt": "2001-01-01T00:00:00.000Z"}, 404, "No signal"),
])
def test_delete_by_ingested_at_bad_values(api: Api, body: dict, status: int, mentions: str) -> None:
    response = api.client.request("DELETE", "/signals", json=body, headers=auth())
    assert response.status_code == status, response.text
    answer = response.json()
    assert mentions in answer["error"] + " ".join(answer.get("details") or [])


def test_delete_by_ingested_at_nested_too_deeply_is_400(api: Api) -> None:
    for body in (b'{"x":' + b"[" * 20_000 + b"]" * 20_000 + b"}", b'{"ingestedAt":' + b"{\"a\":" * 10_000 + b"1" + b"}" * 10_001):
        response = api.client.request("DELETE", "/signals", content=body,
                                 headers={**auth(), "Content-Type": "application/json"})
        assert response.status_code == 400, response.text[:300]
