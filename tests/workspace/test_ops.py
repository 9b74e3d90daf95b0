"""Health, readiness, metrics, OpenAPI, tracing, CORS, configuration; the granian launcher."""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from litestar.testing import AsyncTestClient

from tests.support.live import console_spans, wait_for_request_span
from tests.support.processes import service_env
from tests.support.workspace import BIN, Server, settings_for, start_server
from ts_ops.embedded_pg import free_port
from workspace_api.app import create_app
from workspace_api.settings import HttpSettings


def test_health_and_ready_under_granian(live: Server) -> None:
    response = httpx.get(live.url + "/api/health")
    assert response.status_code == 200
    body = response.json()
    assert (body["success"], body["status"], body["service"]) == (True, "healthy", "workspace-api")
    assert body["database"]["connected"] is True and body["database"]["strategy"] == "postgresql"
    assert body["database"]["latencyMs"] >= 0 and body["uptimeSeconds"] >= 0
    assert httpx.get(live.url + "/ready").json() == {"ready": True}


def test_metrics_have_the_reference_names(live: Server) -> None:
    created = httpx.post(live.url + "/api/items", json={"title": "métrica", "category": "other"})
    assert created.status_code == 201
    httpx.get(live.url + "/api/items/not-a-uuid")
    text = httpx.get(live.url + "/metrics").text
    count = int(httpx.get(live.url + "/api/items").json()["total"])
    assert re.search(r'^tradingsystem_http_requests_total\{[^}]*method="POST",path="/api/items",status_code="201"\} ',
                     text, re.MULTILINE)
    assert 'path="/api/items/{item_id}",status_code="400"' in text
    assert "tradingsystem_http_request_duration_seconds_bucket" in text
    assert f"workspace_items_count {float(count)}" in text
    assert "workspace_db_connection_status 1.0" in text


def test_openapi_has_every_operation_with_its_errors(live: Server) -> None:
    spec = httpx.get(live.url + "/schema/openapi.json").json()
    operations = {op["operationId"]: op for path in spec["paths"].values() for op in path.values()}
    assert {"listItems", "createItem", "getItem", "updateItem", "deleteItem", "listCategories", "getCategory",
            "createCategory", "updateCategory", "toggleCategory", "deleteCategory", "health", "ready", "metrics",
            "legacyListItems", "legacyGetItem"} <= set(operations)
    assert {"200", "400", "404", "412", "503"} <= set(operations["updateItem"]["responses"])
    assert "If-Match" in [p["name"] for p in operations["updateItem"]["parameters"]]
    assert operations["createItem"]["requestBody"]["content"]["application/json"]["schema"]["required"] == [
        "title", "category"]
    assert "409" in operations["deleteCategory"]["responses"]
    assert len(operations) == sum(len(p) for p in spec["paths"].values())  # ids are unique


async def test_database_down_is_503() -> None:
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/none"
    async with AsyncTestClient(app=create_app(settings_for(url))) as client:
        health = await client.get("/api/health")
        assert health.status_code == 503
        body = health.json()
        assert body["status"] == "unhealthy" and body["database"]["connected"] is False and body["database"]["error"]
        assert (await client.get("/ready")).status_code == 503
        items = await client.get("/api/items")
        assert items.status_code == 503
        assert items.json() == {"success": False, "error": "Database connection failed",
                                "message": "Database connection failed"}
        assert items.headers["retry-after"] == "5"
        assert (await client.post("/api/items", json={"title": "x", "category": "bug"})).status_code == 503
        assert "workspace_db_connection_status 0.0" in (await client.get("/metrics")).text


async def test_cors_only_for_configured_origins(database_url: str) -> None:
    settings = settings_for(database_url, http=HttpSettings(cors_origins=("http://localhost:3103",)))
    async with AsyncTestClient(app=create_app(settings)) as client:
        allowed = await client.get("/api/items", headers={"Origin": "http://localhost:3103"})
        assert allowed.headers.get("access-control-allow-origin") == "http://localhost:3103"
        assert "etag" in allowed.headers.get("access-control-expose-headers", "").lower()
        preflight = await client.options("/api/items/x", headers={
            "Origin": "http://localhost:3103", "Access-Control-Request-Method": "PUT",
            "Access-Control-Request-Headers": "if-match, content-type"})
        assert preflight.status_code in (200, 204) and "PUT" in preflight.headers["access-control-allow-methods"]
        refused = await client.get("/api/items", headers={"Origin": "http://evil.example"})
        assert "access-control-allow-origin" not in refused.headers


async def test_unknown_route_and_method_use_the_error_envelope(client: AsyncTestClient) -> None:
    missing = await client.get("/api/nothing")
    assert missing.status_code == 404 and missing.json()["success"] is False
    wrong = await client.patch("/api/items")
    assert wrong.status_code == 405 and wrong.json()["success"] is False
    large = await client.post("/api/items", content=b"{" + b" " * (300 * 1024) + b"}",
                              headers={"content-type": "application/json"})
    assert large.status_code == 413 and large.json()["error"] == "Request body too large"


def test_lowdb_strategy_warns_once_and_uses_postgres(live_database_url: str, tmp_path: Path) -> None:
    # PORT from the environment (no --port), DB_STRATEGY=lowdb, two granian workers: one warning
    # (from the launcher, not one per worker), PostgreSQL anyway.
    port = free_port()
    log_path = tmp_path / "lowdb.log"
    env = service_env(drop=("PROMETHEUS_",), DATABASE_URL=live_database_url, PORT=str(port), HOST="127.0.0.1",
                      DB_STRATEGY="lowdb")
    with log_path.open("wb") as log_file:
        process = subprocess.Popen([str(BIN / "workspace-api"), "--workers", "2"], env=env, stdout=log_file,
                                   stderr=subprocess.STDOUT)
    server = Server(f"http://127.0.0.1:{port}", live_database_url, process, log_path)

    def workers_started() -> int:  # each worker logs this once its app is created and started
        return server.log().count('"msg":"workspace-api started"')

    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(server.url + "/api/health").status_code == 200 and workers_started() == 2:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline and process.poll() is None, server.log()
            time.sleep(0.1)
        created = httpx.post(server.url + "/api/items", json={"title": "no postgres", "category": "bug"})
        assert created.status_code == 201
    finally:
        server.stop()
    warnings = [json.loads(line) for line in server.log().splitlines()
                if line.startswith("{") and "DB_STRATEGY" in line]
    assert len(warnings) == 1
    assert warnings[0]["level"] == "warning" and "using PostgreSQL" in warnings[0]["msg"]


def test_refuses_to_start_without_a_database_url() -> None:
    env = service_env()
    result = subprocess.run([str(BIN / "workspace-api"), "--port", "1"], env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2 and "DATABASE_URL is not set" in result.stderr
    usage = subprocess.run([str(BIN / "workspace-api"), "--help"], env=env, capture_output=True, text=True, timeout=60)
    assert "default 3200" in usage.stdout and "--reload" in usage.stdout


def test_traceparent_is_continued_and_sql_is_traced(live_database_url: str, tmp_path: Path) -> None:
    server = start_server(live_database_url, tmp_path / "trace.log", OTEL_TRACES_EXPORTER="console",
                          OTEL_BSP_SCHEDULE_DELAY="50")
    trace_id, parent_id = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    try:
        response = httpx.post(server.url + "/api/items", json={"title": "traced", "category": "bug"},
                              headers={"traceparent": f"00-{trace_id}-{parent_id}-01"})
        assert response.status_code == 201
        wait_for_request_span(server, trace_id)
    finally:
        server.stop()
    spans = console_spans(server.log(), trace_id)
    request_spans = [s for s in spans if s["kind"] == "SpanKind.SERVER"]
    sql_spans = [s for s in spans if s["attributes"].get("db.system") == "postgresql"]
    assert [s["parent_id"] for s in request_spans] == [f"0x{parent_id}"]
    assert any("INSERT INTO workspace.workspace_items" in s["attributes"].get("db.statement", "") for s in sql_spans)


@pytest.mark.parametrize("path", ["/api/items", "/items"])
def test_crud_through_granian(live: Server, path: str) -> None:
    created = httpx.post(live.url + path, json={"title": "via granian", "category": "feature", "tags": ["é"]})
    assert created.status_code == 201
    item = created.json()["data"]
    got = httpx.get(f"{live.url}{path}/{item['id']}")
    assert got.json()["data"] == item and got.headers["etag"] == created.headers["etag"]
    stale = created.headers["etag"]
    assert httpx.put(f"{live.url}{path}/{item['id']}", json={"status": "review"},
                     headers={"If-Match": stale}).status_code == 200
    assert httpx.put(f"{live.url}{path}/{item['id']}", json={"status": "completed"},
                     headers={"If-Match": stale}).status_code == 412
    assert httpx.delete(f"{live.url}{path}/{item['id']}").status_code == 200
    assert httpx.get(f"{live.url}{path}/{item['id']}").status_code == 404
