"""The query API (old-compatible GET /signals, CSV, cursors, /signals/{id}, DELETEs, /messages)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import httpx
import pytest

from tests.support.db import connection
from tests.support.ingest import TOKEN, Api, auth

T0 = datetime(2025, 10, 7, 12, 0, tzinfo=timezone.utc)
SWING = "🟢Swing Trade\nAtivo: {asset}\nCompra: 1,04 a 1,06\nAlvo 1: 1,15\nAlvo 2: 2,15\nAlvo final: 3,50\nStop: 0,70"
DAY = "Day Trade 🔵\nPapel: {asset}\nEntrada: 38,50\nTP: 39,00\nSL: 38,00"


def ingest(api: Api, channel_id: int, message_id: int, text: str, minutes: int = 0, name: str | None = None) -> dict:
    body = {"channelId": str(channel_id), "messageId": message_id, "text": text,
            "timestamp": (T0 + timedelta(minutes=minutes)).isoformat()}
    if name:
        body["channelName"] = name
    response = api.client.post("/ingest", json=body, headers=auth())
    assert response.status_code == 200, response.text
    return response.json()


def signals(api: Api, **params: object) -> httpx.Response:
    return api.client.get("/signals", params=params)


@pytest.fixture
def seeded(api: Api, channel_id: int) -> int:
    """Five messages in one channel: 3 swing signals, 1 day trade, 1 chit-chat (no signal)."""
    ingest(api, channel_id, 1, SWING.format(asset="PETR4"), 0)
    ingest(api, channel_id, 2, SWING.format(asset="VALE3"), 10)
    ingest(api, channel_id, 3, "Bom dia pessoal!", 20)
    ingest(api, channel_id, 4, DAY.format(asset="PETR4"), 30)
    ingest(api, channel_id, 5, SWING.format(asset="BOVAW32"), 40)
    return channel_id


def test_rows_have_old_columns_newest_first(api: Api, seeded: int) -> None:
    response = signals(api, channel=str(seeded))
    assert response.status_code == 200
    data = response.json()["data"]
    assert [row["asset"] for row in data] == ["BOVAW32", "PETR4", "VALE3", "PETR4"]
    row = data[-1]
    for column in ("id", "ts", "channel", "signal_type", "asset", "buy_min", "buy_max", "target_1", "target_2",
                   "target_final", "stop", "raw_message", "source", "ingested_at", "created_at", "updated_at"):
        assert column in row
    assert row["ts"] == int(T0.timestamp() * 1000)  # epoch ms
    assert datetime.fromisoformat(row["ingested_at"].replace("Z", "+00:00")).tzinfo is not None
    assert (row["buy_min"], row["buy_max"], row["target_final"], row["stop"]) == (1.04, 1.06, 3.5, 0.7)
    assert row["status"] == "open"


def test_channel_name_filter(api: Api, channel_id: int) -> None:
    ingest(api, channel_id, 1, SWING.format(asset="PETR4"), name=f"TP Capital {channel_id}")
    data = signals(api, channel=f"TP Capital {channel_id}").json()["data"]
    assert [row["channel"] for row in data] == [f"TP Capital {channel_id}"]


def test_type_filter(api: Api, seeded: int) -> None:
    data = signals(api, channel=str(seeded), type="Day Trade").json()["data"]
    assert [(r["asset"], r["signal_type"]) for r in data] == [("PETR4", "Day Trade")]


def test_search_matches_asset_or_text_case_insensitively(api: Api, seeded: int) -> None:
    assert [r["asset"] for r in signals(api, channel=str(seeded), search="petr").json()["data"]] == ["PETR4", "PETR4"]
    assert [r["asset"] for r in signals(api, channel=str(seeded), search="ENTRADA").json()["data"]] == ["PETR4"]
    assert signals(api, channel=str(seeded), search="%").json()["data"] == []  # no LIKE wildcards


@pytest.mark.parametrize("as_iso", [False, True])
def test_from_to(api: Api, seeded: int, as_iso: bool) -> None:
    def moment(minutes: int) -> str:
        value = T0 + timedelta(minutes=minutes)
        return value.isoformat() if as_iso else str(int(value.timestamp() * 1000))

    data = signals(api, channel=str(seeded), **{"from": moment(10), "to": moment(30)}).json()["data"]
    assert [r["asset"] for r in data] == ["PETR4", "VALE3"]


def test_to_as_a_date(api: Api, seeded: int) -> None:
    # The old api turned a date string into a year number and returned nothing; a date is a day.
    assert len(signals(api, channel=str(seeded), to="2025-10-07").json()["data"]) == 4  # the whole day
    assert signals(api, channel=str(seeded), to="2025-10-06").json()["data"] == []


def test_limit_and_cursor_pagination(api: Api, seeded: int) -> None:
    first = signals(api, channel=str(seeded), limit=3).json()
    assert len(first["data"]) == 3 and first["next_cursor"]
    second = signals(api, channel=str(seeded), limit=3, cursor=first["next_cursor"]).json()
    assert [r["asset"] for r in second["data"]] == ["PETR4"]
    assert "next_cursor" not in second
    assert {r["id"] for r in first["data"]}.isdisjoint({r["id"] for r in second["data"]})


@pytest.mark.parametrize(
    ("params", "mentions"),
    [({"limit": 0}, "limit"), ({"limit": 1001}, "limit"), ({"limit": "ten"}, "limit"),
     ({"from": "yesterday"}, "from"), ({"to": "2025-13-45"}, "to"), ({"cursor": "!!!"}, "cursor"),
     ({"format": "xml"}, "format")],
)
def test_bad_query_values_are_400_with_reason(api: Api, params: dict, mentions: str) -> None:
    response = signals(api, **params)
    assert response.status_code == 400
    body = response.json()
    assert mentions in body["error"] + " ".join(body.get("details") or [])


def test_csv_export(api: Api, seeded: int) -> None:
    response = signals(api, channel=str(seeded), format="csv", limit=2)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    lines = response.text.splitlines()
    assert lines[0] == "DATA;ATIVO;COMPRA_MIN;COMPRA_MAX;ALVO_1;ALVO_2;ALVO_FINAL;STOP"
    # 12:40 UTC is 09:40 in São Paulo; numbers pt-BR with two decimals.
    assert lines[1] == "07/10/2025, 09:40:00;BOVAW32;1,04;1,06;1,15;2,15;3,50;0,70"
    assert lines[2] == "07/10/2025, 09:30:00;PETR4;38,50;38,50;39,00;;39,00;38,00"
    assert response.headers["x-next-cursor"]


def test_get_signal_with_lifecycle_events(api: Api, channel_id: int) -> None:
    ingest(api, channel_id, 1, SWING.format(asset="BOVAW22"), 0)
    ingest(api, channel_id, 2, "BOVAW22 ALVO 1 ATINGIDO ✅\n+17,02%", 60)
    ingest(api, channel_id, 3, "BOVAW22 ALVO 2 ATINGIDO ✅\n+40%", 120)
    row = signals(api, channel=str(channel_id)).json()["data"][0]
    assert row["status"] == "target_2_hit"
    detail = api.client.get(f"/signals/{row['id']}").json()
    assert [(e["event_type"], e["target_number"], e["percentage"]) for e in detail["events"]] == [
        ("target_hit", 1, 17.02), ("target_hit", 2, 40.0)]
    ingest(api, channel_id, 4, "BOVAW22 stop\n-25%", 180)
    assert api.client.get(f"/signals/{row['id']}").json()["status"] == "stopped"
    # A follow-up is a raw message, not a signal.
    assert len(signals(api, channel=str(channel_id)).json()["data"]) == 1


def test_follow_up_attaches_to_most_recent_open_signal(api: Api, channel_id: int) -> None:
    ingest(api, channel_id, 1, SWING.format(asset="CYREW296"), 0)
    ingest(api, channel_id, 2, SWING.format(asset="CYREW296"), 30)
    ingest(api, channel_id, 3, "CYREW296 stop\n-25%", 60)
    rows = signals(api, channel=str(channel_id)).json()["data"]
    assert [r["status"] for r in rows] == ["stopped", "open"]  # newest first


def test_get_unknown_signal_is_404(api: Api) -> None:
    response = api.client.get(f"/signals/999999999")
    assert response.status_code == 404
    assert "not found" in response.json()["error"]


def test_delete_signal_requires_token(api: Api, channel_id: int) -> None:
    ingest(api, channel_id, 1, SWING.format(asset="PETR4"))
    signal_id = signals(api, channel=str(channel_id)).json()["data"][0]["id"]
    assert api.client.delete(f"/signals/{signal_id}").status_code == 401
    assert api.client.delete(f"/signals/{signal_id}", headers=auth("nope" * 10)).status_code == 401
    response = api.client.delete(f"/signals/{signal_id}", headers={"X-API-Key": TOKEN})
    assert response.status_code == 200 and response.json() == {"success": True, "deleted": 1}
    assert signals(api, channel=str(channel_id)).json()["data"] == []
    # Kept, marked deleted.
    assert api.client.get(f"/signals/{signal_id}").json()["deleted_at"] is not None
    assert api.client.delete(f"/signals/{signal_id}", headers=auth()).status_code == 404


def test_old_delete_by_ingested_at(api: Api, channel_id: int) -> None:
    ingest(api, channel_id, 1, SWING.format(asset="PETR4"))
    ingested_at = signals(api, channel=str(channel_id)).json()["data"][0]["ingested_at"]
    # The old dashboard sent JavaScript's toISOString(): millisecond precision.
    moment = datetime.fromisoformat(ingested_at.replace("Z", "+00:00"))
    js_iso = moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    assert api.client.request("DELETE", "/signals", json={"ingestedAt": js_iso}).status_code == 401
    response = api.client.request("DELETE", "/signals", json={"ingestedAt": js_iso}, headers=auth())
    assert response.status_code == 200, response.text
    assert signals(api, channel=str(channel_id)).json()["data"] == []
    bad = api.client.request("DELETE", "/signals", json={"when": "x"}, headers=auth())
    assert bad.status_code == 400 and "ingestedAt" in bad.text


def ingest_batch(api: Api, channel_id: int, assets: list[str]) -> None:
    """One POST /ingest/batch: every signal is stored by the same INSERT statement."""
    body = {"messages": [{"channelId": str(channel_id), "messageId": i + 1, "text": SWING.format(asset=asset),
                          "timestamp": (T0 + timedelta(minutes=i)).isoformat()} for i, asset in enumerate(assets)]}
    response = api.client.post("/ingest/batch", json=body, headers=auth())
    assert response.status_code == 200 and response.json()["stored"] == len(assets), response.text


def delete_by_ingested_at(api: Api, ingested_at: str) -> httpx.Response:
    return api.client.request("DELETE", "/signals", json={"ingestedAt": ingested_at}, headers=auth())


def test_old_delete_removes_one_signal_of_a_batch(api: Api, channel_id: int) -> None:
    ingest_batch(api, channel_id, ["PETR4", "VALE3", "ITUB4"])
    rows = signals(api, channel=str(channel_id)).json()["data"]
    # Every signal has its own millisecond (migration 010), also within one INSERT statement.
    moments = [datetime.fromisoformat(row["ingested_at"].replace("Z", "+00:00")) for row in rows]
    assert len({m.replace(microsecond=m.microsecond // 1000 * 1000) for m in moments}) == 3
    target, moment = rows[1], moments[1]
    js_iso = moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    # With the old dashboard's header and its millisecond value.
    response = api.client.request("DELETE", "/signals", json={"ingestedAt": js_iso},
                             headers={"X-API-Key": TOKEN})
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ok", "success": True, "deleted": 1}
    remaining = signals(api, channel=str(channel_id)).json()["data"]
    assert sorted(row["asset"] for row in remaining) == sorted(row["asset"] for row in rows if row is not target)


async def test_old_delete_matching_several_signals_deletes_none(api: Api, channel_id: int) -> None:
    ingest_batch(api, channel_id, ["PETR4", "VALE3"])
    # Signals given one ingested_at by hand (migration 010 spreads those it finds; new ones never share).
    async with connection(api.database_url) as conn:
        await conn.execute("UPDATE tp_capital.tp_capital_signals SET ingested_at = '2025-10-07T12:00:00.123456Z' "
                           "WHERE channel_id = $1", channel_id)
    for sent in ("2025-10-07T12:00:00.123456Z", "2025-10-07T12:00:00.123Z"):
        response = delete_by_ingested_at(api, sent)
        assert response.status_code == 409, response.text
        assert "DELETE /signals/{id}" in response.json()["error"]
    rows = signals(api, channel=str(channel_id)).json()["data"]
    assert len(rows) == 2  # both still live
    assert all(str(row["id"]) in response.json()["details"][0] for row in rows)


def test_messages_lists_raw_messages(api: Api, seeded: int) -> None:
    response = api.client.get("/messages", params={"channel": str(seeded), "limit": 2})
    assert response.status_code == 200
    page = response.json()
    assert [m["message_id"] for m in page["data"]] == [5, 4]
    older = api.client.get("/messages", params={"channel": str(seeded), "cursor": page["next_cursor"]}).json()
    assert [m["message_id"] for m in older["data"]] == [3, 2, 1]
    assert older["data"][0]["message_text"] == "Bom dia pessoal!"  # non-signals are stored too
    found = api.client.get("/messages", params={"channel": str(seeded), "search": "BOM DIA"}).json()["data"]
    assert [m["message_id"] for m in found] == [3]


def test_forwarded_messages_is_the_old_path_of_messages(api: Api, seeded: int) -> None:
    params = {"channel": str(seeded), "limit": 2, "search": "a"}
    old = api.client.get("/forwarded-messages", params=params)
    assert old.status_code == 200
    assert old.json() == api.client.get("/messages", params=params).json()
    assert old.json()["data"]  # not two empty answers
    assert api.client.get("/forwarded-messages", params={"limit": 0}).status_code == 400
    spec = api.client.get("/schema/openapi.json").json()
    operation = spec["paths"]["/forwarded-messages"]["get"]
    assert operation["operationId"] == "listForwardedMessages" and "old API" in operation["summary"]
    # The same parameters, plus the old channelId filter.
    old_parameters = [p for p in operation["parameters"] if p["name"] != "channelId"]
    assert old_parameters == spec["paths"]["/messages"]["get"]["parameters"]
    assert len(operation["parameters"]) == len(old_parameters) + 1


# -- cursors: pages by message date (migration 021); cursors written before it still work -----

def _b64(text: str) -> str:
    import base64
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def test_a_cursor_from_before_021_continues_where_it_stopped(api: Api, seeded: int) -> None:
    everything = signals(api, channel=str(seeded)).json()["data"]
    first = everything[1]
    old_cursor = _b64(f"{first['ts']}:{first['id']}")  # the form encode_cursor wrote before 021
    page = signals(api, channel=str(seeded), cursor=old_cursor).json()
    assert [r["id"] for r in page["data"]] == [r["id"] for r in everything[2:]]
    # The new cursors page the same rows.
    by_two = signals(api, channel=str(seeded), limit=2).json()
    rest = signals(api, channel=str(seeded), cursor=by_two["next_cursor"]).json()
    assert [r["id"] for r in by_two["data"] + rest["data"]] == [r["id"] for r in everything]


@pytest.mark.parametrize("raw", ["d99999999999999999999:1", "d12:x", "253402300800000:1", "1:2:3", "d:1"])
def test_a_cursor_out_of_range_or_malformed_is_400(api: Api, seeded: int, raw: str) -> None:
    for path in ("/signals", "/messages"):
        response = api.client.get(path, params={"cursor": _b64(raw)})
        assert response.status_code == 400, (path, raw, response.text)
        assert "cursor" in response.text


def test_messages_pages_by_date_with_either_cursor_form(api: Api, seeded: int) -> None:
    everything = api.client.get("/messages", params={"channel": str(seeded)}).json()["data"]
    assert len(everything) == 5
    first = everything[0]
    for cursor in (_b64(f"{first['ts']}:{first['id']}"),
                   api.client.get("/messages", params={"channel": str(seeded), "limit": 1}).json()["next_cursor"]):
        page = api.client.get("/messages", params={"channel": str(seeded), "cursor": cursor}).json()
        assert [r["id"] for r in page["data"]] == [r["id"] for r in everything[1:]]
