"""The workspace API in tests: its settings for a test database, the granian launcher, and the
helpers the item and category tests share (tests/workspace/conftest.py keeps only fixtures)."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

from litestar.testing import AsyncTestClient

from tests.support.live import Server
from tests.support.live import start_workspace_api as start_server
from ts_runtime.settings import DatabaseSettings
from workspace_api.settings import HttpSettings, LogSettings, Settings

__all__ = ["BIN", "ITEM", "Server", "create", "moment", "problems", "settings_for", "start_server"]

BIN = Path(sys.executable).parent


def settings_for(database_url: str, **overrides) -> Settings:
    return Settings(
        database=DatabaseSettings(url=database_url, pool_max_size=4, connect_timeout=2.0),
        http=overrides.pop("http", HttpSettings()),
        log=LogSettings(level="WARNING"),
        trace_sql=False,
        **overrides,
    )


ITEM = {"title": "Exportar sinais em CSV", "description": "Cabeçalho DATA;ATIVO", "category": "feature",
        "priority": "high", "status": "review", "tags": ["csv", "dashboard"]}


async def create(client: AsyncTestClient, **fields) -> dict:
    response = await client.post("/api/items", json={**ITEM, **fields})
    assert response.status_code == 201, response.text
    return response.json()["data"]


def moment(text: str) -> datetime:
    """An ISO timestamp from the API (compare these, not the strings: `…44Z` sorts after `…44.5Z`)."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def problems(response) -> dict[str, str]:
    body = response.json()
    assert body["success"] is False and body["error"] == "Validation failed"
    assert body["details"] == [f"{e['field']} {e['message']}" for e in body["errors"]]
    return {e["field"]: e["message"] for e in body["errors"]}
