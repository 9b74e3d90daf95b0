"""Health, readiness, metrics, OpenAPI, tracing, CORS and configuration checks."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.ingest import TOKEN, Api, Server, auth, in_process, settings_for, start_server
from tests.support.live import console_spans, wait_for_request_span
from tests.support.processes import service_env
from ts_runtime.settings import HttpSettings


def test_health_and_ready(server: Server) -> None:
    health = server.client.get("/health")
    assert health.status_code == 200
    body = health.json()
    # The old system's name for this service (its shared /health format); the earlier fields stay.
    assert body["status"] == "healthy" and body["service"] == "tp-capital"
    assert body["checks"]["timescaledb"]["status"] == "healthy"
    assert body["database"]["connected"] is True and body["database"]["latency_ms"] >= 0
    assert server.client.get("/ready").json() == {"ready": True}


def test_metrics_have_the_reference_names(server: Server, channel_id: int) -> None:
    server.client.post("/ingest", headers=auth(), json={
        "channelId": str(channel_id), "messageId": 1, "timestamp": "2025-10-07T12:00:00Z",
        "text": "Ativo: PETR4\nCompra: 25,00"})
    server.client.post("/ingest", json={})
    text = server.client.get("/metrics").text
    for name in ('api_ingestion_requests_total{status="stored"}', 'api_signals_inserted_total{signal_type="Swing Trade"}',
                 "api_http_request_duration_seconds_bucket", 'api_auth_failures_total{reason="missing"}'):
        assert name in text, name
    assert "# TYPE api_timescaledb_errors_total counter" in text


def test_openapi_documents_operations_and_errors(api: Api) -> None:
    spec = api.client.get("/schema/openapi.json").json()
    operations = {op["operationId"]: op for path in spec["paths"].values() for op in path.values()}
    assert {"ingestMessage", "ingestBatch", "listSignals", "getSignal", "deleteSignal",
            "deleteSignalByIngestedAt", "listMessages", "health", "ready", "metrics"} <= set(operations)
    ingest = operations["ingestMessage"]
    assert {"200", "400", "401", "413", "503"} <= set(ingest["responses"])
    # Generated from the contracts (ingest_api/openapi.py): one schema per kind.
    kinds = ingest["requestBody"]["content"]["application/json"]["schema"]["anyOf"]
    assert [k["title"] for k in kinds] == ["NewMessage", "EditedMessage", "DeletedMessage"]
    assert all("messageId" in k["required"] for k in kinds)
    assert "text/csv" in operations["listSignals"]["responses"]["200"]["content"]


def test_cors_only_for_configured_origins(api_database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORS_ORIGIN", "http://dash.local, http://other.local")  # as the deployment writes it
    with in_process(settings_for(api_database_url, http=HttpSettings.from_env())) as api:
        allowed = api.client.get("/signals", headers={"Origin": "http://dash.local"})
        assert allowed.headers.get("access-control-allow-origin") == "http://dash.local"
        refused = api.client.get("/signals", headers={"Origin": "http://evil.example"})
        assert "access-control-allow-origin" not in refused.headers


def test_traceparent_is_continued_and_sql_is_traced(api_database_url: str, tmp_path: Path) -> None:
    log = tmp_path / "trace.log"
    server = start_server(api_database_url, log, OTEL_TRACES_EXPORTER="console", OTEL_BSP_SCHEDULE_DELAY="50")
    trace_id, parent_id = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    try:
        response = server.client.post("/ingest", json={
            "channelId": "-100555", "messageId": 1, "timestamp": "2025-10-07T12:00:00Z", "text": "x"},
            headers={**auth(), "traceparent": f"00-{trace_id}-{parent_id}-01"})
        assert response.status_code == 200
        wait_for_request_span(server, trace_id)
    finally:
        server.stop()
    spans = console_spans(server.log(), trace_id)
    request_spans = [s for s in spans if s["kind"] == "SpanKind.SERVER"]
    sql_spans = [s for s in spans if s["attributes"].get("db.system") == "postgresql"]
    # The request span continues the caller's trace: its parent is the caller's span.
    assert [s["parent_id"] for s in request_spans] == [f"0x{parent_id}"]
    # The INSERT ran inside that trace too.
    assert any("INSERT" in s["attributes"].get("db.statement", "") for s in sql_spans)


def test_unsampled_requests_make_no_spans_and_sampled_ones_nest_sql(api_database_url: str, tmp_path: Path) -> None:
    """A sampled traceparent yields request → SQL spans in the caller's trace; an unsampled one
    (flags 00) yields none at all, neither for the request nor for its statements; a request
    without a parent is sampled by the default sampler (parentbased_always_on)."""
    server = start_server(api_database_url, tmp_path / "trace.log", OTEL_TRACES_EXPORTER="console",
                          OTEL_BSP_SCHEDULE_DELAY="50")
    unsampled, sampled = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1", "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb2"
    parent = "00f067aa0ba902b7"
    payload = {"channelId": "-100556", "timestamp": "2025-10-07T12:00:00Z", "text": "x"}
    try:
        for message_id, (trace_id, flags) in enumerate([(unsampled, "00"), (sampled, "01")], start=1):
            response = server.client.post("/ingest", json={**payload, "messageId": message_id},
                                          headers={**auth(), "traceparent": f"00-{trace_id}-{parent}-{flags}"})
            assert response.status_code == 200
        rootless = server.client.post("/ingest", json={**payload, "messageId": 3}, headers=auth())
        assert rootless.status_code == 200
        wait_for_request_span(server, sampled)
        deadline = time.monotonic() + 10
        while not _rootless_ingest_spans(server.log()) and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        server.stop()
    log = server.log()
    assert console_spans(log, unsampled) == []
    spans = console_spans(log, sampled)
    (request,) = [s for s in spans if s["kind"] == "SpanKind.SERVER"]
    assert request["name"] == "POST /ingest" and request["attributes"]["http.response.status_code"] == 200
    sql_spans = [s for s in spans if s["attributes"].get("db.system") == "postgresql"]
    assert sql_spans and all(s["parent_id"] == request["context"]["span_id"] for s in sql_spans)
    assert len(_rootless_ingest_spans(log)) == 1, "the request without a traceparent starts one sampled trace"


def _rootless_ingest_spans(log: str) -> list[dict]:
    decoder = json.JSONDecoder()
    spans = []
    for match in re.finditer(r'^\{\n    "name": "POST /ingest"', log, re.MULTILINE):
        try:
            span, _ = decoder.raw_decode(log, match.start())
        except ValueError:
            continue  # still being written
        if span["parent_id"] is None:
            spans.append(span)
    return spans


@pytest.mark.parametrize(("sampler", "arg", "message"), [
    ("sometimes", "", "OTEL_TRACES_SAMPLER='sometimes' is not supported"),
    ("parentbased_traceidratio", "lots", "OTEL_TRACES_SAMPLER_ARG='lots' must be a ratio between 0 and 1"),
    ("traceidratio", "1.5", "must be a ratio between 0 and 1"),
])
def test_refuses_to_start_with_a_bad_sampler(sampler: str, arg: str, message: str) -> None:
    env = service_env(tracing=True, DATABASE_URL="postgresql://postgres@127.0.0.1:1/none", GATEWAY_SECRET_TOKEN=TOKEN,
                      OTEL_TRACES_SAMPLER=sampler, OTEL_TRACES_SAMPLER_ARG=arg)
    result = subprocess.run([sys.executable, "-m", "ingest_api.cli", "--port", "1"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(("token", "message"), [(None, "not set"), ("short", "at least 32")])
def test_refuses_to_start_without_a_strong_token(token: str | None, message: str) -> None:
    env = service_env(DATABASE_URL="postgresql://postgres@127.0.0.1:1/none",
                      **({} if token is None else {"GATEWAY_SECRET_TOKEN": token}))
    result = subprocess.run([sys.executable, "-m", "ingest_api.cli", "--port", "1"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "GATEWAY_SECRET_TOKEN" in result.stderr and message in result.stderr


def test_token_is_logged_by_its_first_8_characters_only(server: Server) -> None:
    server.client.post("/ingest", json={}, headers=auth("x" * 40))
    output = server.log()
    assert f'"gateway_token":"{TOKEN[:8]}…"' in output
    assert TOKEN[:9] not in output
    # Auth failures are logged with the client address (and never the token sent).
    assert re.search(r'"msg":"request with a wrong token refused".*"client":"127.0.0.1"', output)
    assert "x" * 40 not in output
