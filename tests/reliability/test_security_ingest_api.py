"""Security properties of the ingest API, checked on the code and on a live process.

- the gateway token is compared in constant time (hmac.compare_digest, never `==` on a token);
- no log line holds more than the first 8 characters of a token, right or wrong;
- CORS headers only for the configured origins;
- a request body size limit (413).
"""

from __future__ import annotations

import ast
import hmac
import re
import secrets
from pathlib import Path

import httpx
import pytest

import ingest_api
from tests.support.live import ALLOWED_ORIGIN, LiveService
from tests.support import processes

SOURCE = Path(ingest_api.__file__).parent
SECRET_NAME = re.compile(r"token|secret|api_?key|password", re.IGNORECASE)


def _names(node: ast.AST) -> list[str]:
    names = []
    for child in ast.walk(node):
        if isinstance(child, ast.Name):
            names.append(child.id)
        elif isinstance(child, ast.Attribute):
            names.append(child.attr)
    return names


def equality_on_secrets(source_dir: Path) -> list[str]:
    """Every `==`/`!=`/`in` comparison whose operands mention a token or secret (early-exit compares)."""
    found = []
    for path in sorted(source_dir.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Compare):
                continue
            if not any(isinstance(op, (ast.Eq, ast.NotEq, ast.In, ast.NotIn)) for op in node.ops):
                continue
            operands = [node.left, *node.comparators]
            # A comparison with a literal (`header == "x-gateway-token"`, `token is None`) leaks nothing.
            if any(isinstance(operand, ast.Constant) for operand in operands):
                continue
            if any(SECRET_NAME.search(name) for operand in operands for name in _names(operand)):
                found.append(f"{path.relative_to(source_dir)}:{node.lineno}: {ast.unparse(node)}")
    return found


def calls_compare_digest(source_dir: Path) -> list[str]:
    hits = []
    for path in sorted(source_dir.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and "compare_digest" in _names(node.func):
                hits.append(f"{path.relative_to(source_dir)}:{node.lineno}")
    return hits


def test_no_early_exit_comparison_of_tokens_in_the_source() -> None:
    assert equality_on_secrets(SOURCE) == []
    assert calls_compare_digest(SOURCE), "the token check must use hmac.compare_digest"


def test_the_detector_catches_an_early_exit_compare(tmp_path: Path) -> None:
    (tmp_path / "auth.py").write_text("def ok(supplied, expected_token):\n    return supplied == expected_token\n")
    assert equality_on_secrets(tmp_path) == ["auth.py:2: supplied == expected_token"]


def test_every_token_check_on_a_live_request_goes_through_compare_digest(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In-process: a spy on hmac.compare_digest sees the supplied and the expected token."""
    from litestar.testing import TestClient

    from ingest_api.app import create_app

    token = secrets.token_urlsafe(32)
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("GATEWAY_SECRET_TOKEN", token)
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    with TestClient(create_app()) as client:
        wrong = client.post("/ingest", json={}, headers={"X-Gateway-Token": "x" * 43})
        right = client.post("/ingest", json={}, headers={"X-Gateway-Token": token})
    assert wrong.status_code == 401
    assert right.status_code == 400  # past the guard, refused by validation
    assert (b"x" * 43, token.encode()) in calls
    assert (token.encode(), token.encode()) in calls


@pytest.fixture(scope="module")
def debug_api(pg_server_url: str, migrated_template: str, tmp_path_factory) -> LiveService:
    """An ingest API logging at DEBUG: the most it will ever write about a request."""
    from tests.support import db

    name = db.create_test_database(pg_server_url, migrated_template)
    database_url = db.with_database(pg_server_url, name)
    port = processes.free_port()
    token = secrets.token_urlsafe(32)
    log_path = tmp_path_factory.mktemp("debug-api") / "ingest-api.log"
    process = processes.ingest_api(port, database_url, token, log_path, LOG_LEVEL="DEBUG",
                                   CORS_ORIGIN=ALLOWED_ORIGIN)
    process.start()
    try:
        yield LiveService(f"http://127.0.0.1:{port}", database_url, token, log_path, process)
    finally:
        process.stop()
        db.drop_database(pg_server_url, name)


def _windows(secret: str) -> set[str]:
    return {secret[i:i + 9] for i in range(len(secret) - 8)}


def test_tokens_never_appear_in_logs_beyond_8_characters(debug_api: LiveService) -> None:
    other_secret = secrets.token_urlsafe(32)  # e.g. another service's token sent by mistake
    url = debug_api.url
    body = {"channelId": "-1001", "messageId": 1, "timestamp": "2026-01-01T00:00:00Z", "text": "hi"}
    with httpx.Client(timeout=10) as client:
        client.post(f"{url}/ingest", json=body, headers={"X-Gateway-Token": debug_api.token})
        client.post(f"{url}/ingest", json=body, headers={"X-Gateway-Token": other_secret})
        client.post(f"{url}/ingest", json=body, headers={"Authorization": f"Bearer {other_secret}"})
        client.post(f"{url}/ingest", json=body, params={"token": other_secret})
        client.post(f"{url}/ingest", content=b"{bad json " + other_secret.encode(),
                    headers={"X-Gateway-Token": debug_api.token})
        client.delete(f"{url}/signals/1", headers={"X-Api-Key": other_secret})
        metrics = client.get(f"{url}/metrics").text
    debug_api.process.stop()  # flush and close the log
    logs = debug_api.log_text()
    assert "refused" in logs  # the wrong-token attempts were logged...
    for secret in (debug_api.token, other_secret):
        leaked = [window for window in _windows(secret) if window in logs or window in metrics]
        assert not leaked, f"more than 8 characters of a token in the logs: {leaked[:3]}"


@pytest.mark.parametrize("path", ["/signals", "/health", "/ingest"])
def test_cors_answers_only_the_configured_origin(ingest_api: LiveService, path: str) -> None:
    preflight = {"Access-Control-Request-Method": "POST" if path == "/ingest" else "GET",
                 "Access-Control-Request-Headers": "content-type,x-gateway-token"}
    with httpx.Client(timeout=10) as client:
        allowed = client.options(ingest_api.url + path, headers={"Origin": ALLOWED_ORIGIN, **preflight})
        denied = client.options(ingest_api.url + path, headers={"Origin": "https://evil.example", **preflight})
        simple_allowed = client.get(ingest_api.url + "/health", headers={"Origin": ALLOWED_ORIGIN})
        simple_denied = client.get(ingest_api.url + "/health", headers={"Origin": "https://evil.example"})
    assert allowed.status_code in (200, 204)
    assert allowed.headers.get("access-control-allow-origin") == ALLOWED_ORIGIN
    assert denied.headers.get("access-control-allow-origin") in (None, "")
    assert denied.status_code >= 400 or "access-control-allow-origin" not in denied.headers
    assert simple_allowed.headers.get("access-control-allow-origin") == ALLOWED_ORIGIN
    assert "access-control-allow-origin" not in simple_denied.headers
    for response in (allowed, simple_allowed):
        assert response.headers.get("access-control-allow-origin") != "*"


def test_no_cors_headers_when_no_origin_is_configured(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from litestar.testing import TestClient

    from ingest_api.app import create_app

    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("GATEWAY_SECRET_TOKEN", secrets.token_urlsafe(32))
    monkeypatch.delenv("CORS_ORIGIN", raising=False)
    with TestClient(create_app()) as client:
        response = client.get("/health", headers={"Origin": ALLOWED_ORIGIN})
    assert "access-control-allow-origin" not in response.headers


def test_request_body_limit_is_enforced(ingest_api: LiveService) -> None:
    headers = {"X-Gateway-Token": ingest_api.token, "Content-Type": "application/json"}

    def post(size: int) -> int:
        # A fresh connection each: after an early 413 the server may close the connection
        # without reading the rest of the body, which a reused keep-alive connection would hit.
        return httpx.post(f"{ingest_api.url}/ingest", content=b"x" * size, headers=headers, timeout=30).status_code

    assert post(2 * 1024 * 1024) == 413
    assert post(1024 * 1024 + 1) == 413  # just over 1 MiB
    assert post(1024 * 1024 - 1) == 400  # just under: read, then refused as bad JSON
