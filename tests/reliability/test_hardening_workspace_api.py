"""Regressions from the outside probe (issue 16), on a live workspace API (granian, real HTTP).

- An item written while another request deletes or renames its category used to be a 500
  (the foreign key refused the row after the statement had seen the category): a 400 now.
- `OPTIONS` listed only the first method of a path (`Allow: GET, OPTIONS` on /api/items,
  which serves POST too): every path now lists exactly the methods it serves, and every
  other method is a 405 with the same `Allow`.

(The final-newline names and colours are rows of test_bad_input_workspace_api.py.)
"""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.support.live import LiveService
from tests.support.db import connection

UNKNOWN_ID = "3f1c2a9e-6a8b-4c1d-9e7f-0123456789ab"
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


async def _wait_until_blocked(database_url: str, statement: str, timeout: float = 10.0) -> None:
    """Until a backend of this database waits on a lock while running `statement…`."""
    async with connection(database_url) as conn:
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            waiting = await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND query LIKE '%' || $1 || '%'", statement)
            if waiting:
                return
            await asyncio.sleep(0.02)
        raise AssertionError(f"no request blocked on {statement!r} within {timeout} s")


CONCURRENT_CHANGES = {
    "delete": "DELETE FROM workspace.workspace_categories WHERE name = $1",
    "rename": "UPDATE workspace.workspace_categories SET name = $1 || '-renamed' WHERE name = $1",
}


@pytest.mark.parametrize("change", CONCURRENT_CHANGES)
@pytest.mark.parametrize("write", ["create", "update"])
async def test_item_write_racing_a_category_change_is_a_400(workspace_api: LiveService, write: str,
                                                            change: str) -> None:
    """The category is there when the API's statement looks and gone when the row is written.

    A transaction of the test deletes (or renames) the category and holds it uncommitted; the
    API's INSERT/UPDATE still sees the category, then waits on its row for the foreign-key
    check; the test commits, and the check fails.
    """
    name = f"race-{write}-{change}"
    async with httpx.AsyncClient(base_url=workspace_api.url, timeout=30) as client:
        assert (await client.post("/api/categories", json={"name": name})).status_code == 201
        existing = (await client.post("/api/items", json={"title": "antes", "category": "bug"})).json()["data"]
        async with connection(workspace_api.database_url) as conn:
            transaction = conn.transaction()
            await transaction.start()
            await conn.execute(CONCURRENT_CHANGES[change], name)
            if write == "create":
                request = client.post("/api/items", json={"title": "corrida", "category": name})
                statement = "INSERT INTO workspace.workspace_items"
            else:
                request = client.put(f"/api/items/{existing['id']}", json={"category": name})
                statement = "UPDATE workspace.workspace_items"
            pending = asyncio.ensure_future(request)
            await _wait_until_blocked(workspace_api.database_url, statement)
            await transaction.commit()
            response = await pending
        assert response.status_code == 400, response.text
        body = response.json()
        assert body["error"] == "Validation failed"
        assert body["details"] == [f"category must be an active category ('{name}' is unknown or inactive)"]
        # Nothing was written: no new item, and the existing one kept its category.
        assert not (await client.get("/api/items", params={"category": name})).json()["data"]
        assert (await client.get(f"/api/items/{existing['id']}")).json()["data"]["category"] == "bug"


def _concrete(path: str) -> str:
    return path.replace("{item_id}", UNKNOWN_ID).replace("{name}", "feature")


def test_options_lists_exactly_the_methods_each_path_serves(workspace_api: LiveService) -> None:
    spec = httpx.get(f"{workspace_api.url}/schema/openapi.json").json()
    served_by_path = {path: {method.upper() for method in operations if method.upper() in METHODS}
                      for path, operations in spec["paths"].items()}
    # Both spellings of every resource path, and the system endpoints.
    assert {"/api/items", "/items", "/api/items/{item_id}", "/items/{item_id}", "/api/categories", "/categories",
            "/api/categories/{name}", "/categories/{name}", "/api/categories/{name}/toggle",
            "/categories/{name}/toggle", "/api/health", "/ready", "/metrics"} <= set(served_by_path)
    assert served_by_path["/api/items"] == served_by_path["/items"] == {"GET", "POST"}
    assert served_by_path["/api/categories/{name}"] == {"GET", "PUT", "DELETE"}
    with httpx.Client(base_url=workspace_api.url, timeout=10) as client:
        for path, served in served_by_path.items():
            allowed = served | {"OPTIONS"}
            options = client.options(_concrete(path))
            assert options.status_code == 204, path
            assert set(options.headers["allow"].split(", ")) == allowed, (path, options.headers["allow"])
            for method in set(METHODS) - served:
                refused = client.request(method, _concrete(path))
                assert refused.status_code == 405, (method, path, refused.status_code)
                assert set(refused.headers["allow"].split(", ")) == allowed, (method, path)
