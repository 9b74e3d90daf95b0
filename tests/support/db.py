"""Test databases: one real PostgreSQL per session, one fresh migrated database per test.

The server is `TEST_DATABASE_URL` (or `DATABASE_URL`) when set, otherwise a throwaway embedded
PostgreSQL started here and removed at the end. Migrations run once into a template database;
each test gets a clone of it (`CREATE DATABASE … TEMPLATE`, a file copy: milliseconds).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import tempfile
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from ts_common.embedded_pg import EmbeddedPostgres
from ts_common.migrations import apply_migrations

_counter = itertools.count()


def with_database(url: str, database: str) -> str:
    """The same server URL pointing at another database."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + database))


def external_server_url() -> str | None:
    return os.environ.get("TEST_DATABASE_URL") or os.environ.get("DATABASE_URL") or None


def start_throwaway_server() -> EmbeddedPostgres:
    # A short, dedicated folder: socket paths are length-limited and, as root, the folder is
    # opened to the server's system user.
    root = Path(tempfile.mkdtemp(prefix="tspg-"))
    root.chmod(0o755)
    return EmbeddedPostgres(root / "data").start()


def fetch(database_url: str, query: str, *args: object) -> list[asyncpg.Record]:
    """Run one query on its own connection, from synchronous test code."""
    async def run() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(database_url)
        try:
            return await conn.fetch(query, *args)
        finally:
            await conn.close()

    return asyncio.run(run())


async def _admin(url: str, statement: str) -> None:
    conn = await asyncpg.connect(url, timeout=10)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def create_template(server_url: str) -> str:
    """Create and migrate this session's template database; return its name."""
    name = f"ts_template_{os.getpid()}"

    async def build() -> None:
        await _admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await _admin(server_url, f'CREATE DATABASE "{name}"')
        conn = await asyncpg.connect(with_database(server_url, name))
        try:
            await apply_migrations(conn)
        finally:
            await conn.close()

    asyncio.run(build())
    return name


def create_test_database(server_url: str, template: str) -> str:
    """A fresh clone of the migrated template; returns the database name."""
    name = f"ts_test_{os.getpid()}_{next(_counter)}"
    asyncio.run(_admin(server_url, f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    return name


def drop_database(server_url: str, name: str) -> None:
    asyncio.run(_admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def create_empty_database(server_url: str) -> str:
    name = f"ts_empty_{os.getpid()}_{next(_counter)}"
    asyncio.run(_admin(server_url, f'CREATE DATABASE "{name}"'))
    return name
