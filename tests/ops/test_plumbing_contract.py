"""The operations plumbing shared by the three services (ts_runtime.health, ts_runtime.logs and the
APIs' core plugin), checked on the workspace API through real HTTP (granian on loopback), and the
builders themselves. The ingest API's side is in tests/ingest/test_contract_old_clients.py, the
gateway's in tests/gateway/test_http_contract.py.

The old workspace API (backend/api/workspace) served /health (shared format, check `database`),
/healthz, /ready and /metrics without the /api prefix; current clients call /api/health.
"""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import db
from tests.support.live import Server, start_workspace_api
from ts_runtime import health, logs
from ts_ops.embedded_pg import free_port

ISO_MS = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$"
HISTORY = 30
NUMBER = (int, float)


def start_workspace(database_url: str, log_path: Path, **env: str) -> Server:
    return start_workspace_api(database_url, log_path, health_path="/healthz", **env)


@pytest.fixture(scope="module")
def workspace(pg_server_url: str, migrated_template: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    name = db.create_test_database(pg_server_url, migrated_template)
    server = start_workspace(db.with_database(pg_server_url, name), tmp_path_factory.mktemp("ws") / "server.log",
                             LOG_HISTORY_SIZE=str(HISTORY))
    yield server
    server.stop()
    db.drop_database(pg_server_url, name)


@pytest.fixture(scope="module")
def workspace_without_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_workspace(f"postgresql://postgres@127.0.0.1:{free_port()}/none",
                             tmp_path_factory.mktemp("ws-down") / "server.log")
    yield server
    server.stop()


# -- routes, fields, statuses ------------------------------------------------------------------

SHARED_HEALTH = {"status": str, "service": str, "version": str, "timestamp": str, "uptime": NUMBER, "checks": dict,
                 "responseTime": NUMBER}
EARLIER_HEALTH = {"success": bool, "uptimeSeconds": NUMBER, "database": dict}  # what /api/health had before
ROUTES = [
    # (path, status, {field: type}, {field: exact value})
    ("/healthz", 200, {"status": str, "service": str, "uptime": NUMBER}, {"status": "healthy", "service": "workspace-api"}),
    ("/health", 200, SHARED_HEALTH | EARLIER_HEALTH, {"status": "healthy", "service": "workspace-api", "success": True}),
    ("/api/health", 200, SHARED_HEALTH | EARLIER_HEALTH, {"status": "healthy", "service": "workspace-api"}),
    ("/ready", 200, {"ready": bool}, {"ready": True}),
    ("/logs", 200, {"data": list}, {}),
]
DOWN = [
    ("/healthz", 200, {"status": "healthy"}),
    ("/health", 503, {"status": "unhealthy", "success": False}),
    ("/api/health", 503, {"status": "unhealthy", "success": False}),
    ("/ready", 503, {"ready": False}),
]


@pytest.mark.parametrize(("path", "status", "types", "values"), ROUTES, ids=[r[0] for r in ROUTES])
def test_workspace_operations_routes(workspace: Server, path: str, status: int, types: dict, values: dict) -> None:
    response = httpx.get(workspace.url + path)
    assert response.status_code == status
    body = response.json()
    for name, kind in types.items():
        assert isinstance(body.get(name), kind), (name, body)
    assert {name: body[name] for name in values} == values


@pytest.mark.parametrize("path", ["/health", "/api/health"])
def test_workspace_health_checks_timescaledb(workspace: Server, path: str) -> None:
    body = httpx.get(workspace.url + path).json()
    assert list(body["checks"]) == ["timescaledb"]
    check = body["checks"]["timescaledb"]
    assert (check["status"], check["message"]) == ("healthy", "connected") and check["responseTime"] >= 0
    assert body["database"] == {"connected": True, "strategy": "postgresql", "latencyMs": check["responseTime"]}
    assert re.fullmatch(ISO_MS, body["timestamp"])


@pytest.mark.parametrize(("path", "status", "values"), DOWN, ids=[d[0] for d in DOWN])
def test_workspace_statuses_with_the_database_down(workspace_without_database: Server, path: str, status: int,
                                                   values: dict) -> None:
    response = httpx.get(workspace_without_database.url + path, timeout=10)
    assert response.status_code == status
    body = response.json()
    assert {name: body[name] for name in values} == values
    if "checks" in body:
        assert body["checks"]["timescaledb"]["status"] == "unhealthy" and body["checks"]["timescaledb"]["message"]


def test_workspace_logs_entries_and_query(workspace: Server) -> None:
    httpx.get(workspace.url + "/api/items/not-a-uuid")
    entries = httpx.get(workspace.url + "/logs").json()["data"]
    assert entries and all(set(e) == {"timestamp", "level", "message", "context"} for e in entries)
    assert any(e["message"] == "workspace-api started" for e in entries)
    assert [e["timestamp"] for e in entries] == sorted((e["timestamp"] for e in entries), reverse=True)
    assert all(re.fullmatch(ISO_MS, e["timestamp"]) for e in entries)
    assert len(httpx.get(workspace.url + "/logs", params={"limit": 1}).json()["data"]) == 1
    infos = httpx.get(workspace.url + "/logs", params={"level": "info"}).json()["data"]
    assert infos and {e["level"] for e in infos} == {"info"}
    bad = httpx.get(workspace.url + "/logs", params={"level": "loud"})
    assert bad.status_code == 400 and bad.json()["success"] is False and "level" in bad.json()["error"]
    bad = httpx.get(workspace.url + "/logs", params={"limit": "0"})
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "limit"


def test_workspace_openapi_documents_the_operations_routes(workspace: Server) -> None:
    spec = httpx.get(workspace.url + "/schema/openapi.json").json()
    ids = {op["operationId"] for path in spec["paths"].values() for op in path.values()}
    assert {"healthz", "health", "legacyHealth", "ready", "logs", "metrics"} <= ids
    assert spec["paths"]["/api/health"]["get"]["operationId"] == "health"
    assert "503" in spec["paths"]["/api/health"]["get"]["responses"]


# -- the builders ------------------------------------------------------------------------------

async def test_health_builders_old_shared_format() -> None:
    async def ok() -> str:
        return "connected"

    async def slow() -> str:
        import asyncio

        await asyncio.sleep(5)
        return "late"

    async def broken() -> str:
        raise RuntimeError("connection refused")

    async def degraded() -> health.ProbeResult:
        return health.DEGRADED, "2 dead letters"

    cases = [
        ({"a": ok}, "healthy", 200),
        ({"a": ok, "b": degraded}, "degraded", 200),
        ({"a": degraded, "b": broken}, "unhealthy", 503),
        ({"a": ok, "b": slow}, "unhealthy", 503),
        ({}, "healthy", 200),
    ]
    for probes, status, code in cases:
        import time

        began = time.perf_counter()
        checks = await health.run_checks(probes, timeout=0.2)
        body = health.health_body("svc", "1.2.3", time.monotonic() - 10, checks, began, {"extra": 1})
        assert (body["status"], health.http_status(body["status"])) == (status, code), probes
        assert list(body) == ["extra", "status", "service", "version", "timestamp", "uptime", "checks", "responseTime"]
        assert body["uptime"] >= 10 and body["responseTime"] < 1000
        for result in body["checks"].values():
            assert set(result) == {"status", "message", "responseTime"}
    assert (await health.run_checks({"b": broken}))["b"].message == "connection refused"
    assert "0.2 s" in (await health.run_checks({"s": slow}, timeout=0.2))["s"].message
    assert health.healthz_body("svc", 0.0)["status"] == "healthy"


@pytest.mark.parametrize(("levelno", "name"), [
    (logging.CRITICAL, "fatal"), (logging.ERROR, "error"), (logging.WARNING, "warn"), (logging.INFO, "info"),
    (logging.DEBUG, "debug"), (5, "debug"), (35, "warn"),
])
def test_python_levels_map_to_the_old_names(levelno: int, name: str) -> None:
    assert logs.old_level_name(levelno) == name


def test_a_registered_secret_is_masked_in_the_log_line_and_in_the_history() -> None:
    secret = "s3cr3t-" + "k" * 40
    logs.register_secret(secret)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    history = logs.LogHistory(10)
    logger = logging.getLogger("plumbing-test")
    logger.handlers[:] = [handler, history]
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    try:
        logger.warning("token %s slipped into a message", secret, extra={"detail": {"nested": [secret]}})
        try:
            raise ValueError(f"failed with {secret}")
        except ValueError:
            logger.exception("with a traceback")
    finally:
        logger.handlers[:] = []
    line, _ = stream.getvalue().split("\n", 1)
    entries = history.recent()
    assert secret[:9] not in stream.getvalue() and secret[:9] not in json.dumps(entries)
    assert json.loads(line)["msg"] == f"token {secret[:8]}… slipped into a message"
    assert entries[1]["message"] == json.loads(line)["msg"]  # the same text in both
    assert entries[1]["context"]["detail"] == {"nested": [secret[:8] + "…"]}
    assert entries[0]["level"] == "error" and f"failed with {secret[:8]}…" in entries[0]["context"]["exc"]


def test_history_keeps_the_newest_and_filters_exactly() -> None:
    history = logs.LogHistory(3)
    for number, level in enumerate((logging.INFO, logging.WARNING, logging.INFO, logging.ERROR, logging.INFO)):
        history.emit(logging.makeLogRecord({"msg": f"m{number}", "levelno": level, "name": "x"}))
    assert [e["message"] for e in history.recent()] == ["m4", "m3", "m2"]
    assert [e["message"] for e in history.recent(level="info")] == ["m4", "m2"]
    assert [e["message"] for e in history.recent(limit=1)] == ["m4"]
    assert history.recent(level="warn") == []  # m1 has left the buffer


@pytest.mark.parametrize(("limit", "level", "outcome"), [
    (None, None, (None, None)), ("", "", (None, None)), ("5", "ERROR", (5, "error")), (" 7 ", " info ", (7, "info")),
    ("0", None, "limit"), ("1e3", None, "limit"), ("100001", None, "limit"), (None, "warning", "level"),
    (None, "trace", "level"),
])
def test_logs_query_parser(limit: str | None, level: str | None, outcome: object) -> None:
    if isinstance(outcome, tuple):
        assert logs.parse_logs_query(limit, level) == outcome
    else:
        with pytest.raises(logs.LogQueryError) as error:
            logs.parse_logs_query(limit, level)
        assert error.value.field == outcome and str(error.value).startswith(outcome)
