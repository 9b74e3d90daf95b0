"""A database outage: 503 while PostgreSQL is down, normal answers as soon as it is back.

Uses its own embedded PostgreSQL, so stopping it disturbs no other test.
"""

from __future__ import annotations

import asyncio

from litestar.testing import AsyncTestClient

from tests.support.live import own_postgres  # noqa: F401 (fixture)
from tests.support.workspace import settings_for
from ts_ops.embedded_pg import EmbeddedPostgres
from ts_ops.migrations import migrate_url
from workspace_api.app import create_app


async def _eventually(client: AsyncTestClient, path: str, status: int, timeout: float = 20) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while (await client.get(path)).status_code != status:
        assert asyncio.get_running_loop().time() < deadline, f"{path} never answered {status}"
        await asyncio.sleep(0.2)


async def test_503_while_down_then_recovers(own_postgres: EmbeddedPostgres) -> None:
    url = own_postgres.url_for("postgres")
    await migrate_url(url)
    async with AsyncTestClient(app=create_app(settings_for(url))) as client:
        created = await client.post("/api/items", json={"title": "antes da queda", "category": "bug"})
        assert created.status_code == 201
        item_id = created.json()["data"]["id"]

        await asyncio.to_thread(own_postgres.stop)
        assert (await client.get("/api/health")).status_code == 503
        assert (await client.get("/ready")).status_code == 503
        down = await client.get(f"/api/items/{item_id}")
        assert down.status_code == 503 and down.json()["error"] == "Database connection failed"
        assert (await client.put(f"/api/items/{item_id}", json={"title": "x"})).status_code == 503
        # A client's mistake is still its 400: each route checks its input before taking a connection.
        for refused in (await client.get("/api/items/not-an-id"),
                        await client.post("/api/items", json={"title": "", "category": "bug"}),
                        await client.put(f"/api/items/{item_id}", json={"priority": "urgent"}),
                        await client.put("/api/categories/Bad Name", json={"color": "#3B82F6"}),
                        await client.post("/api/categories", json={"name": "x", "color": "blue"}),
                        await client.patch("/api/categories/x%0A/toggle")):
            assert refused.status_code == 400, refused.text
        assert "workspace_db_connection_status 0.0" in (await client.get("/metrics")).text

        port = own_postgres.port
        await asyncio.to_thread(own_postgres.start)
        assert own_postgres.port == port
        await _eventually(client, "/api/health", 200)
        back = await client.get(f"/api/items/{item_id}")
        assert back.status_code == 200 and back.json()["data"]["title"] == "antes da queda"
        assert (await client.post("/api/items", json={"title": "depois", "category": "bug"})).status_code == 201
        assert "workspace_db_connection_status 1.0" in (await client.get("/metrics")).text
