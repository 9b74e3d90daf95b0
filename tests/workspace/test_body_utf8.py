"""A body that is not UTF-8: the core plugin's 400, on every workspace route that reads a body.

validation.decode_object no longer checks UTF-8 itself: every body reaches it through the core
plugin's request (ts_runtime.api_core.CoreRequest), which refuses the first bad byte before any
handler reads it. Through granian, as deployed.
"""

from __future__ import annotations

import httpx

from tests.support.live import Server


def test_a_body_that_is_not_utf8_gets_the_core_plugins_400(live: Server) -> None:
    with httpx.Client(base_url=live.url, timeout=10) as http:
        item = http.post("/api/items", json={"title": "Backtest", "category": "feature"}).json()["data"]
        bodies = {
            ("POST", "/api/items"): b'{"title": "caf\xc3", "category": "feature"}',
            ("PUT", f"/api/items/{item['id']}"): b'{"metadata": {"x": "\xff"}}',
            ("POST", "/api/categories"): b'{"name": "ops-\xff"}',
            ("PUT", "/api/categories/feature"): b'{"description": "\xc3("}',
        }
        for (method, path), body in bodies.items():
            response = http.request(method, path, content=body, headers={"Content-Type": "application/json"})
            assert response.status_code == 400, (method, path, response.text)
            answer = response.json()
            assert answer["error"] == "Validation failed" and answer["success"] is False
            [error] = answer["errors"]
            assert error["field"] == "body" and error["message"].startswith("is not valid UTF-8 (")
            first_bad = next(i for i, byte in enumerate(body) if byte >= 0x80)
            assert error["message"].endswith(f"at offset {first_bad})"), error
