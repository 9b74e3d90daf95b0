"""Database outages: 503 (so the gateway retries) while PostgreSQL is down, recovery when it returns.

Uses its own embedded PostgreSQL, so stopping it disturbs no other test.
"""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

import httpx

from tests.support.ingest import Server, auth, start_server
from tests.support.live import own_postgres  # noqa: F401 (fixture)
from ts_ops.embedded_pg import EmbeddedPostgres
from ts_ops.migrations import migrate_url


def _message(message_id: int) -> dict:
    return {"channelId": "-100777", "messageId": message_id, "text": "ATIVO: PETR4 COMPRA: 25,00",
            "timestamp": "2025-10-07T12:00:00Z"}


def _eventually_ok(server: Server, message_id: int, timeout: float = 15) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while True:
        response = httpx.post(server.url + "/ingest", json=_message(message_id), headers=auth(), timeout=10)
        if response.status_code == 200 or time.monotonic() > deadline:
            return response
        assert response.status_code == 503, response.text
        time.sleep(0.2)


def _assert_down(server: Server, message_id: int) -> None:
    response = httpx.post(server.url + "/ingest", json=_message(message_id), headers=auth(), timeout=10)
    assert response.status_code == 503
    assert response.json() == {"error": "Database connection failed"}
    batch = httpx.post(server.url + "/ingest/batch", json={"messages": [_message(message_id)]}, headers=auth(), timeout=10)
    assert batch.status_code == 503
    assert httpx.get(server.url + "/ready", timeout=10).status_code == 503
    health = httpx.get(server.url + "/health", timeout=10)
    assert health.status_code == 503 and health.json()["database"]["connected"] is False
    assert httpx.get(server.url + "/signals", timeout=10).status_code == 503
    # A client error is still a client error while the database is down: each read route checks
    # its query, path or body before it takes a connection.
    assert httpx.post(server.url + "/ingest", json={}, headers=auth(), timeout=10).status_code == 400
    for path in ("/signals?limit=0", "/signals?from=yesterday", "/signals?format=xml", "/signals?cursor=*",
                 "/signals/0", "/messages?limit=5000", "/forwarded-messages?channelId=abc",
                 "/signal-events?unlinked=maybe", "/signals/stats?group=year", "/report?from=tomorrow"):
        answer = httpx.get(server.url + path, timeout=10)
        assert answer.status_code == 400, (path, answer.status_code, answer.text)
    old_form = httpx.request("DELETE", server.url + "/signals", json={"ingestedAt": "soon"}, headers=auth(), timeout=10)
    assert old_form.status_code == 400, old_form.text


def test_503_while_down_and_recovery(own_postgres: EmbeddedPostgres, tmp_path: Path) -> None:
    url = own_postgres.url
    port = own_postgres.port
    asyncio.run(migrate_url(url, report=lambda line: None))

    # Started while the database is down: the app still starts, and answers 503.
    own_postgres.stop()
    server = start_server(url, tmp_path / "server.log")
    try:
        _assert_down(server, 1)

        own_postgres.start()
        assert own_postgres.port == port
        assert _eventually_ok(server, 1).json()["status"] == "stored"
        assert httpx.get(server.url + "/ready").status_code == 200

        # Down again mid-life (pooled connections are now dead), then back.
        own_postgres.stop()
        _assert_down(server, 2)
        own_postgres.start()
        assert _eventually_ok(server, 2).json()["status"] == "stored"
        # What failed while down was never half-stored: retrying message 1 is a duplicate.
        assert _eventually_ok(server, 1).json()["status"] == "duplicate"
        metrics = httpx.get(server.url + "/metrics").text
        unavailable = re.search(r'^api_ingestion_requests_total\{status="unavailable"\} (\S+)$', metrics, re.MULTILINE)
        assert unavailable and float(unavailable.group(1)) >= 2
        assert re.search(r"^api_timescaledb_errors_total\{error_type=.+\} [1-9]", metrics, re.MULTILINE)
    finally:
        server.stop()
