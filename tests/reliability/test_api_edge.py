"""The API edge of issue 16, one regression test per finding, through real HTTP against the
services under granian (and the gateway's `run`) on loopback ports.

- open by default: the APIs and the gateway listened on every interface; the workspace API took
  `text/plain` bodies (a cross-site form could write without a CORS preflight); nothing guarded
  the read endpoints;
- error details named `from_` and `signal_type` for the query parameters `from` and `type`;
- the OpenAPI `channelId` pattern (hand-written) said 1-18 digits where the contract takes 19;
- OPTIONS `Allow` left out methods of paths served by two handlers (`DELETE /signals`);
- a request body trickled in a byte at a time was waited for for ever.

(The DELETE /signals values that were 500s are in tests/ingest/test_contract_old_clients.py.)
"""

from __future__ import annotations

import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import msgspec
import psutil
import pytest

from contracts import IngestBatch, MessagePayload
from tests.support import db, processes
from tests.support.live import INGEST_TOKEN as TOKEN, Server, start_workspace_api
from tests.support.live import start_ingest_api as start_ingest
from ts_ops.embedded_pg import free_port

BIN = Path(sys.executable).parent
READ_TOKEN = "read-token-" + "r" * 40
UUID = "3f1c2a9e-6a8b-4c1d-9e7f-0123456789ab"


@pytest.fixture(scope="module")
def database_urls(pg_server_url: str, migrated_template: str) -> Iterator[dict[str, str]]:
    names = {kind: db.create_test_database(pg_server_url, migrated_template) for kind in ("ingest", "workspace")}
    yield {kind: db.with_database(pg_server_url, name) for kind, name in names.items()}
    for name in names.values():
        db.drop_database(pg_server_url, name)


def start_workspace(database_url: str, log_path: Path, **env: str) -> Server:
    return start_workspace_api(database_url, log_path, health_path="/healthz", **env)


@pytest.fixture(scope="module")
def apis(database_urls: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Server]]:
    """Both APIs with the defaults (no read token), a short body deadline for the 408 tests."""
    tmp = tmp_path_factory.mktemp("edge")
    servers = {
        "ingest": start_ingest(database_urls["ingest"], tmp / "ingest.log", BODY_TIMEOUT_SECONDS="1.5"),
        "workspace": start_workspace(database_urls["workspace"], tmp / "workspace.log", BODY_TIMEOUT_SECONDS="1.5"),
    }
    yield servers
    for server in servers.values():
        server.stop()


@pytest.fixture(scope="module")
def guarded(database_urls: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Server]]:
    """Both APIs with API_READ_TOKEN set."""
    tmp = tmp_path_factory.mktemp("guarded")
    servers = {
        "ingest": start_ingest(database_urls["ingest"], tmp / "ingest.log", API_READ_TOKEN=READ_TOKEN),
        "workspace": start_workspace(database_urls["workspace"], tmp / "workspace.log", API_READ_TOKEN=READ_TOKEN),
    }
    yield servers
    for server in servers.values():
        server.stop()


# -- 1. bind address ---------------------------------------------------------------------------

def listening_addresses(port: int) -> set[str]:
    return {c.laddr.ip for c in psutil.net_connections(kind="tcp") if c.status == "LISTEN" and c.laddr.port == port}


def wait_listening(port: int, process: "psutil.Popen | None" = None, timeout: float = 30) -> set[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if addresses := listening_addresses(port):
            return addresses
        assert process is None or process.poll() is None, "the service exited"
        time.sleep(0.1)
    raise AssertionError(f"nothing listens on {port}")


@pytest.mark.parametrize("service", ["ingest-api", "workspace-api"])
@pytest.mark.parametrize(("host", "expected"), [(None, {"127.0.0.1"}), ("0.0.0.0", {"0.0.0.0"})],
                         ids=["default", "HOST=0.0.0.0"])
def test_apis_bind_loopback_unless_host_is_set(database_urls: dict[str, str], tmp_path: Path, service: str,
                                               host: str | None, expected: set[str]) -> None:
    port = free_port()
    env = processes.service_env(drop=("HOST", "PORT"), DATABASE_URL=database_urls["ingest"],
                                GATEWAY_SECRET_TOKEN=TOKEN, PORT=str(port), **({"HOST": host} if host else {}))
    with (tmp_path / "server.log").open("wb") as log:
        process = psutil.Popen([str(BIN / service)], env=env, stdout=log, stderr=log)  # no --host: the default
    try:
        assert wait_listening(port, process) == expected
    finally:
        process.terminate()
        process.wait(15)


@pytest.mark.parametrize(("host", "expected"), [(None, {"127.0.0.1"}), ("0.0.0.0", {"0.0.0.0"})],
                         ids=["default", "GATEWAY_HOST=0.0.0.0"])
def test_gateway_binds_loopback_unless_host_is_set(tmp_path: Path, host: str | None, expected: set[str]) -> None:
    port = free_port()
    events = tmp_path / "events.jsonl"
    events.touch()
    workdir = tmp_path / "gateway"
    workdir.mkdir()
    gateway = processes.gateway(port, events, f"http://127.0.0.1:{free_port()}/ingest", TOKEN, workdir,
                                tmp_path / "gateway.log")
    gateway.env.pop("GATEWAY_HOST", None)
    gateway.env.pop("HOST", None)
    if host:
        gateway.env["GATEWAY_HOST"] = host
    gateway.start()
    try:
        assert listening_addresses(port) == expected
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").json()["status"] == "healthy"
    finally:
        gateway.stop()


# -- 2. writes are application/json -----------------------------------------------------------

WRITES = [
    # (api, method, path, extra headers)
    ("ingest", "POST", "/ingest", {"X-Gateway-Token": TOKEN}),
    ("ingest", "POST", "/ingest/batch", {"X-Gateway-Token": TOKEN}),
    ("ingest", "DELETE", "/signals", {"X-Gateway-Token": TOKEN}),
    ("workspace", "POST", "/api/items", {}),
    ("workspace", "POST", "/items", {}),
    ("workspace", "PUT", f"/api/items/{UUID}", {}),
    ("workspace", "POST", "/api/categories", {}),
]
NOT_JSON = ["text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
            None]


@pytest.mark.parametrize("content_type", NOT_JSON, ids=lambda c: c or "none")
@pytest.mark.parametrize(("api", "method", "path", "headers"), WRITES, ids=[f"{w[0]}-{w[1]}-{w[2]}" for w in WRITES])
def test_writes_without_a_json_body_are_415(apis: dict[str, Server], api: str, method: str, path: str,
                                            headers: dict, content_type: str | None) -> None:
    body = b'{"title": "from a form", "category": "feature", "name": "from-a-form"}'
    sent = {**headers, **({"Content-Type": content_type} if content_type else {})}
    response = httpx.request(method, apis[api].url + path, content=body, headers=sent)
    assert response.status_code == 415, response.text
    answer = response.json()
    assert "application/json" in answer["error"] and "Content-Type" in answer["details"][0]
    assert answer.get("success", False) is False


def test_text_plain_creates_no_item(apis: dict[str, Server], database_urls: dict[str, str]) -> None:
    url = apis["workspace"].url
    before = db.fetch(database_urls["workspace"], "SELECT count(*) AS n FROM workspace.workspace_items")[0]["n"]
    refused = httpx.post(url + "/api/items", content=b'{"title": "csrf", "category": "feature"}',
                         headers={"Content-Type": "text/plain"})
    assert refused.status_code == 415
    assert db.fetch(database_urls["workspace"], "SELECT count(*) AS n FROM workspace.workspace_items")[0]["n"] == before
    for content_type in ("application/json", "application/json; charset=utf-8", "Application/JSON"):
        accepted = httpx.post(url + "/api/items", content=b'{"title": "json", "category": "feature"}',
                              headers={"Content-Type": content_type})
        assert accepted.status_code == 201, (content_type, accepted.text)


def test_bodiless_deletes_need_no_content_type(apis: dict[str, Server]) -> None:
    assert httpx.delete(apis["ingest"].url + "/signals/999999", headers={"X-Gateway-Token": TOKEN}).status_code == 404
    assert httpx.delete(apis["workspace"].url + f"/api/items/{UUID}").status_code == 404


# -- 3. the optional read token ---------------------------------------------------------------

READS = [("ingest", "/signals"), ("ingest", "/signals/1"), ("ingest", "/messages"), ("ingest", "/forwarded-messages"),
         ("ingest", "/logs"), ("workspace", "/api/items"), ("workspace", "/items"), ("workspace", "/api/categories"),
         ("workspace", "/logs")]
OPEN = [("ingest", p) for p in ("/health", "/healthz", "/ready", "/metrics", "/schema/openapi.json")] + \
       [("workspace", p) for p in ("/health", "/api/health", "/healthz", "/ready", "/metrics", "/schema/openapi.json")]


@pytest.mark.parametrize(("api", "path"), READS, ids=[f"{a}{p}" for a, p in READS])
def test_reads_need_the_read_token_when_it_is_set(guarded: dict[str, Server], apis: dict[str, Server], api: str,
                                                  path: str) -> None:
    url = guarded[api].url + path
    missing = httpx.get(url)
    assert missing.status_code == 401 and "X-API-Key" in missing.json()["error"]
    assert httpx.get(url, headers={"X-API-Key": "r" * 51}).status_code == 401
    assert httpx.get(url, headers={"X-Gateway-Token": READ_TOKEN}).status_code == 401  # only X-API-Key carries it
    allowed = httpx.get(url, headers={"X-API-Key": READ_TOKEN})
    assert allowed.status_code in (200, 404), allowed.text  # /signals/1 may not exist: past the guard
    # Unset (the default), the same read is open, as in the old system.
    assert httpx.get(apis[api].url + path).status_code == allowed.status_code


def test_the_gateway_token_reads_too(guarded: dict[str, Server]) -> None:
    # It can already delete signals; the dashboard may hold it in VITE_TP_CAPITAL_API_KEY.
    assert httpx.get(guarded["ingest"].url + "/signals", headers={"X-API-Key": TOKEN}).status_code == 200


@pytest.mark.parametrize(("api", "path"), OPEN, ids=[f"{a}{p}" for a, p in OPEN])
def test_operations_routes_stay_open(guarded: dict[str, Server], api: str, path: str) -> None:
    assert httpx.get(guarded[api].url + path).status_code == 200


def test_writes_are_not_read_guarded(guarded: dict[str, Server]) -> None:
    payload = {"channelId": "-1009", "messageId": 1, "timestamp": "2025-10-07T12:00:00Z", "text": "hi"}
    assert httpx.post(guarded["ingest"].url + "/ingest", json=payload, headers={"X-Gateway-Token": TOKEN}).status_code == 200
    assert httpx.post(guarded["workspace"].url + "/api/items", json={"title": "t", "category": "bug"}).status_code == 201


def test_openapi_documents_the_read_token(guarded: dict[str, Server]) -> None:
    spec = httpx.get(guarded["ingest"].url + "/schema/openapi.json").json()
    assert "401" in spec["paths"]["/signals"]["get"]["responses"]
    assert "401" not in spec["paths"]["/health"]["get"]["responses"]


# -- 4. wire names in error details ------------------------------------------------------------

@pytest.mark.parametrize(("params", "wire", "python"), [
    ({"from": "last tuesday"}, "from", "from_"),
    ({"type": "x" * 51}, "type", "signal_type"),
])
def test_errors_name_the_query_parameters_as_sent(apis: dict[str, Server], params: dict, wire: str,
                                                  python: str) -> None:
    response = httpx.get(apis["ingest"].url + "/signals", params=params)
    assert response.status_code == 400
    body = response.json()
    assert body["details"][0].startswith(f"{wire} ") and body["errors"][0]["field"] == wire
    assert python not in response.text


# -- 5. the OpenAPI request schemas come from the contracts -----------------------------------

def test_ingest_request_schemas_are_the_contracts(apis: dict[str, Server]) -> None:
    spec = httpx.get(apis["ingest"].url + "/schema/openapi.json").json()
    payload = spec["paths"]["/ingest"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    batch = spec["paths"]["/ingest/batch"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    (_, _), components = msgspec.json.schema_components([MessagePayload, IngestBatch])
    for kind in payload["anyOf"]:
        contract = components[kind["title"]]
        assert kind["properties"]["channelId"] == contract["properties"]["channelId"]
        assert set(kind["properties"]) == set(contract["properties"])
    channel_id = payload["anyOf"][0]["properties"]["channelId"]["anyOf"][1]
    assert channel_id["pattern"] == "^-?[0-9]{1,19}$"
    assert "kind" not in payload["anyOf"][0]["required"]  # old payloads carry no kind
    assert batch["properties"]["messages"]["maxItems"] == components["IngestBatch"]["properties"]["messages"]["maxItems"]
    # What the schema now says is what the API takes: a 19-digit channel id string.
    response = httpx.post(apis["ingest"].url + "/ingest", headers={"X-Gateway-Token": TOKEN},
                          json={"channelId": "-1000000000000000001", "messageId": 1,
                                "timestamp": "2025-10-07T12:00:00Z", "text": "19 digits"})
    assert response.status_code == 200 and response.json()["status"] in ("stored", "duplicate")


# -- 6. OPTIONS Allow lists every method of the path -------------------------------------------

def _sample_path(path: str, parameters: list[dict]) -> str:
    for parameter in parameters:
        if parameter.get("in") == "path":
            schema = parameter.get("schema", {})
            value = "1" if schema.get("type") == "integer" else (UUID if "item" in parameter["name"] else "feature")
            path = path.replace("{" + parameter["name"] + "}", value)
    return path


@pytest.mark.parametrize("api", ["ingest", "workspace"])
def test_options_allow_lists_every_method(apis: dict[str, Server], api: str) -> None:
    spec = httpx.get(apis[api].url + "/schema/openapi.json").json()
    checked = 0
    for path, operations in spec["paths"].items():
        parameters = [p for op in operations.values() for p in op.get("parameters", [])]
        response = httpx.options(apis[api].url + _sample_path(path, parameters))
        assert response.status_code == 204, (path, response.text)
        allowed = {m.strip() for m in response.headers["allow"].split(",")}
        assert allowed == {m.upper() for m in operations} | {"OPTIONS"}, path
        checked += 1
    assert checked >= 6
    if api == "ingest":
        assert "DELETE" in httpx.options(apis[api].url + "/signals").headers["allow"]


# -- 7. slow request bodies ----------------------------------------------------------------------

TRICKLED = [
    ("ingest", "POST", "/ingest", f"X-Gateway-Token: {TOKEN}\r\n"),
    ("ingest", "DELETE", "/signals", f"X-Gateway-Token: {TOKEN}\r\n"),
    ("workspace", "POST", "/api/items", ""),
]


@pytest.mark.parametrize(("api", "method", "path", "headers"), TRICKLED, ids=[f"{t[0]}-{t[2]}" for t in TRICKLED])
def test_a_trickled_body_is_cut_off_with_408(apis: dict[str, Server], api: str, method: str, path: str,
                                             headers: str) -> None:
    port = int(apis[api].url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall((f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n{headers}"
                      "Content-Length: 10000\r\n\r\n{").encode())
        started = time.monotonic()
        sock.settimeout(0.2)
        answer = b""
        while time.monotonic() - started < 15:
            try:
                sock.sendall(b" ")  # one byte every 0.2 s: the body would take half an hour
                chunk = sock.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                break  # the server closed the connection
            if not chunk:
                break
            answer += chunk
        elapsed = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b"BODY_TIMEOUT_SECONDS" in answer and b"connection: close" in answer.lower()
    assert 1.4 <= elapsed < 5, elapsed  # BODY_TIMEOUT_SECONDS=1.5 for these servers
    # The server goes on answering.
    assert httpx.get(apis[api].url + "/healthz").status_code == 200


def test_a_body_sent_at_once_is_not_cut_off(apis: dict[str, Server]) -> None:
    messages = [{"channelId": "-1008", "messageId": n, "timestamp": "2025-10-07T12:00:00Z", "text": "x" * 1000}
                for n in range(1, 1001)]
    response = httpx.post(apis["ingest"].url + "/ingest/batch", json={"messages": messages},
                          headers={"X-Gateway-Token": TOKEN}, timeout=30)
    assert response.status_code == 200 and response.json()["stored"] == 1000
