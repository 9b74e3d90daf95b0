"""db/sql/workspace/003: legacy_id and metadata on a database that holds items, on plain
PostgreSQL and on TimescaleDB (production's server: `server_database_url` in conftest.py, from
tests/support/timescale.py; the TimescaleDB case is skipped where it is not installed)."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import asyncpg
import pytest

from ts_ops.migrations import default_migrations_dir, migrate_url
from tests.support.db import connection

THIRD = "workspace/003_items_legacy_id_and_metadata.sql"


@pytest.fixture
def before_003(tmp_path: Path) -> Path:
    """The migrations folder as it was before 003 (the other schemas' files included)."""
    folder = tmp_path / "sql"
    shutil.copytree(default_migrations_dir(), folder)
    for later in sorted((folder / "workspace").glob("*.sql")):
        if later.name >= "003":
            later.unlink()
    return folder


async def test_003_keeps_the_items_and_adds_legacy_id_and_metadata(server_database_url: str, before_003: Path) -> None:
    await migrate_url(server_database_url, before_003, report=lambda _: None)
    async with connection(server_database_url) as conn:
        existing = uuid.uuid4()
        await conn.execute("INSERT INTO workspace.workspace_items (id, title, category) VALUES ($1, 'antes', 'bug')",
                           existing)
        applied = await migrate_url(server_database_url, default_migrations_dir(), report=lambda _: None)
        assert THIRD in applied
        row = await conn.fetchrow("SELECT legacy_id, metadata FROM workspace.workspace_items WHERE id = $1", existing)
        assert (row["legacy_id"], row["metadata"]) == (None, "{}")

        # Any number of items without an old id; an old id only once; metadata an object.
        await conn.execute("INSERT INTO workspace.workspace_items (title, category) VALUES ('novo', 'bug')")
        await conn.execute("INSERT INTO workspace.workspace_items (title, category, legacy_id, metadata) "
                           "VALUES ('velho', 'bug', 'item-1-a', '{\"a\": [1]}')")
        with pytest.raises(asyncpg.UniqueViolationError, match="workspace_items_legacy_id_key"):
            await conn.execute("INSERT INTO workspace.workspace_items (title, category, legacy_id) "
                               "VALUES ('de novo', 'bug', 'item-1-a')")
        with pytest.raises(asyncpg.CheckViolationError, match="metadata"):
            await conn.execute("INSERT INTO workspace.workspace_items (title, category, metadata) VALUES ('l', 'bug', '[]')")
        with pytest.raises(asyncpg.CheckViolationError, match="legacy_id"):
            await conn.execute("INSERT INTO workspace.workspace_items (title, category, legacy_id) VALUES ('v', 'bug', '')")
        # The lookup the API makes for GET /items/item-… can use the index (a 3-row table would be
        # scanned otherwise).
        await conn.execute("SET enable_seqscan = off")
        plan = "\n".join(r[0] for r in await conn.fetch(
            "EXPLAIN SELECT id FROM workspace.workspace_items WHERE legacy_id = 'item-1-a'"))
        assert "workspace_items_legacy_id_key" in plan
