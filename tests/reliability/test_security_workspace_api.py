"""Security properties of the workspace API, checked on a live process.

The workspace API has no token (it serves the dashboard on the private network), so the checks
are the rest of the issue's list:
- CORS headers only for the configured origins (never `*`; none when no origin is configured);
- a request body size limit per route (413 before the body is read);
- the one secret it holds, the database password, never in its logs (DEBUG level) or metrics.
"""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from tests.support.live import ALLOWED_ORIGIN, LiveService
from tests.support import processes

PREFLIGHT = {"Access-Control-Request-Headers": "content-type,if-match"}


@pytest.mark.parametrize(("path", "method"), [
    ("/api/items", "POST"), ("/api/items", "GET"), ("/api/categories", "GET"),
    ("/api/categories/feature", "PUT"), ("/api/health", "GET"),
])
def test_cors_answers_only_the_configured_origin(workspace_api: LiveService, path: str, method: str) -> None:
    preflight = {"Access-Control-Request-Method": method, **PREFLIGHT}
    with httpx.Client(timeout=10) as client:
        allowed = client.options(workspace_api.url + path, headers={"Origin": ALLOWED_ORIGIN, **preflight})
        denied = client.options(workspace_api.url + path, headers={"Origin": "https://evil.example", **preflight})
        lookalike = client.options(workspace_api.url + path,
                                   headers={"Origin": ALLOWED_ORIGIN + ".evil.example", **preflight})
        simple_allowed = client.get(workspace_api.url + "/api/categories", headers={"Origin": ALLOWED_ORIGIN})
        simple_denied = client.get(workspace_api.url + "/api/categories", headers={"Origin": "null"})
    assert allowed.status_code in (200, 204)
    assert allowed.headers.get("access-control-allow-origin") == ALLOWED_ORIGIN
    for refused in (denied, lookalike):
        assert refused.headers.get("access-control-allow-origin") in (None, "")
        assert refused.status_code >= 400 or "access-control-allow-origin" not in refused.headers
    assert simple_allowed.headers.get("access-control-allow-origin") == ALLOWED_ORIGIN
    assert "access-control-allow-origin" not in simple_denied.headers
    for response in (allowed, simple_allowed):
        assert response.headers.get("access-control-allow-origin") != "*"
        assert response.headers.get("access-control-allow-credentials") in (None, "false")


def test_no_cors_headers_when_no_origin_is_configured(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from litestar.testing import TestClient

    from workspace_api.app import create_app

    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    monkeypatch.delenv("CORS_ORIGIN", raising=False)
    with TestClient(create_app()) as client:
        simple = client.get("/api/categories", headers={"Origin": ALLOWED_ORIGIN})
        preflight = client.options("/api/items", headers={"Origin": ALLOWED_ORIGIN,
                                                          "Access-Control-Request-Method": "POST"})
    assert simple.status_code == 200
    assert "access-control-allow-origin" not in simple.headers
    assert "access-control-allow-origin" not in preflight.headers


@pytest.mark.parametrize(("method", "path", "limit"), [
    ("POST", "/api/items", 256 * 1024),
    ("PUT", "/api/items/3f1c2a9e-6a8b-4c1d-9e7f-0123456789ab", 256 * 1024),
    ("POST", "/items", 256 * 1024),
    ("POST", "/api/categories", 64 * 1024),
    ("PUT", "/api/categories/feature", 64 * 1024),
])
def test_request_body_limit_is_enforced(workspace_api: LiveService, method: str, path: str, limit: int) -> None:
    def send(size: int) -> httpx.Response:
        # A fresh connection each: after an early 413 the server may close the connection
        # without reading the rest of the body, which a reused keep-alive connection would hit.
        return httpx.request(method, workspace_api.url + path, content=b"x" * size,
                             headers={"Content-Type": "application/json"}, timeout=30)

    assert send(10 * 1024 * 1024).status_code == 413
    over = send(limit + 1)
    assert over.status_code == 413 and over.json()["error"] == "Request body too large"
    assert send(limit - 1).status_code == 400  # just under: read, then refused as bad JSON


@pytest.fixture(scope="module")
def debug_api(pg_server_url: str, migrated_template: str, tmp_path_factory) -> LiveService:
    """A workspace API logging at DEBUG whose database URL carries a password (trust auth ignores it)."""
    from tests.support import db

    name = db.create_test_database(pg_server_url, migrated_template)
    password = secrets.token_urlsafe(24)
    parts = urlsplit(db.with_database(pg_server_url, name))
    netloc = f"{parts.username or 'postgres'}:{password}@{parts.hostname}:{parts.port}"
    database_url = urlunsplit(parts._replace(netloc=netloc))
    port = processes.free_port()
    log_path = tmp_path_factory.mktemp("debug-workspace") / "workspace-api.log"
    process = processes.workspace_api(port, database_url, log_path, LOG_LEVEL="DEBUG", CORS_ORIGIN=ALLOWED_ORIGIN)
    process.start()
    try:
        yield LiveService(f"http://127.0.0.1:{port}", database_url, password, log_path, process)
    finally:
        process.stop()
        db.drop_database(pg_server_url, name)


def test_database_password_never_appears_in_logs_or_metrics(debug_api: LiveService) -> None:
    password = debug_api.token
    url = debug_api.url
    with httpx.Client(timeout=10) as client:
        assert client.get(f"{url}/api/health").status_code == 200
        client.post(f"{url}/api/items", json={"title": "x", "category": "feature"})
        client.post(f"{url}/api/items", content=b"{broken")
        client.get(f"{url}/api/items/not-a-uuid")
        metrics = client.get(f"{url}/metrics").text
    debug_api.process.stop()  # flush and close the log
    logs = debug_api.log_text()
    assert "workspace-api started" in logs  # the startup line (which names the database) was written
    windows = {password[i:i + 9] for i in range(len(password) - 8)}
    leaked = [window for window in windows if window in logs or window in metrics]
    assert not leaked, f"more than 8 characters of the database password in logs/metrics: {leaked[:3]}"
