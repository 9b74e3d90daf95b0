"""db/sql/workspace/002: a database that ran 001 (and holds data) moves to the old categories schema,
on plain PostgreSQL and on TimescaleDB (`server_database_url` in conftest.py)."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import asyncpg
import pytest

from ts_ops.migrations import default_migrations_dir, migrate_url
from tests.support.db import connection

SECOND = "workspace/002_categories_old_contract.sql"


@pytest.fixture
def before_002(tmp_path: Path) -> Path:
    """The migrations folder as it was before 002 (the later ones of other schemas included)."""
    folder = tmp_path / "sql"
    shutil.copytree(default_migrations_dir(), folder)
    for later in sorted((folder / "workspace").glob("*.sql")):
        if later.name >= "002":
            later.unlink()
    return folder


async def test_002_keeps_the_data_and_repairs_colours(server_database_url: str, before_002: Path) -> None:
    await migrate_url(server_database_url, before_002, report=lambda _: None)
    async with connection(server_database_url) as conn:
        # What 001 and the old API's `$` allowed: colours with a final newline, or worse.
        await conn.execute("""
            INSERT INTO workspace.workspace_categories (name, display_name, color, display_order) VALUES
                ('nl-colour', 'NL', E'#3B82F6\\n', 20),
                ('bad-colour', 'Bad', 'blue', 21)""")
        item = uuid.uuid4()
        await conn.execute("INSERT INTO workspace.workspace_items (id, title, category) VALUES ($1, 'usa', 'nl-colour')",
                           item)
        applied = await migrate_url(server_database_url, default_migrations_dir(), report=lambda _: None)
        assert SECOND in applied

        colours = dict(await conn.fetch("SELECT name, color FROM workspace.workspace_categories "
                                        "WHERE name IN ('nl-colour', 'bad-colour', 'bug')"))
        assert colours == {"nl-colour": "#3B82F6", "bad-colour": "#6B7280", "bug": "#EF4444"}
        assert await conn.fetchval("SELECT count(*) FROM workspace.workspace_categories") == 14
        columns = {r["column_name"] for r in await conn.fetch(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'workspace' "
            "AND table_name = 'workspace_categories'")}
        assert "id" not in columns and {"icon", "created_by"} <= columns
        key = await conn.fetchval("""
            SELECT array_agg(a.attname) FROM pg_index i
            JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
            WHERE i.indrelid = 'workspace.workspace_categories'::regclass AND i.indisprimary""")
        assert key == ["name"]

        # The foreign key is back: a rename is carried to the item, a delete in use refused,
        # an unknown category refused; the database now refuses a bad colour itself.
        await conn.execute("UPDATE workspace.workspace_categories SET name = 'renomeada' WHERE name = 'nl-colour'")
        assert await conn.fetchval("SELECT category FROM workspace.workspace_items WHERE id = $1", item) == "renomeada"
        with pytest.raises(asyncpg.ForeignKeyViolationError):
            await conn.execute("DELETE FROM workspace.workspace_categories WHERE name = 'renomeada'")
        with pytest.raises(asyncpg.ForeignKeyViolationError):
            await conn.execute("INSERT INTO workspace.workspace_items (title, category) VALUES ('x', 'nao-existe')")
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute("UPDATE workspace.workspace_categories SET color = E'#3B82F6\\n' WHERE name = 'bug'")
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute("UPDATE workspace.workspace_categories SET icon = '' WHERE name = 'bug'")
