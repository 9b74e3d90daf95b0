"""The embedded PostgreSQL behind `uv run stack` and the test session: a restart keeps port and data."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path


from ts_ops.embedded_pg import EmbeddedPostgres
from tests.support.db import connection


async def _query(url: str, sql: str):
    async with connection(url, timeout=10) as conn:
        return await conn.fetchval(sql)


def test_restart_keeps_the_port_and_the_data_after_client_connections() -> None:
    root = Path(tempfile.mkdtemp(prefix="tspg-restart-"))
    root.chmod(0o755)
    server = EmbeddedPostgres(root / "data").start()
    try:
        port = server.port
        asyncio.run(_query(server.url, "CREATE TABLE kept AS SELECT 42 AS n"))
        # Client connections leave sockets in TIME_WAIT on the server's port: the restart must
        # still come back on the same port (URLs handed out earlier stay valid).
        for _ in range(5):
            asyncio.run(_query(server.url, "SELECT 1"))
        server.restart()
        assert server.port == port
        assert asyncio.run(_query(server.url, "SELECT n FROM kept")) == 42
        # A second object on the same folder (a new `uv run stack`) finds the remembered port.
        assert EmbeddedPostgres(root / "data").port == port
    finally:
        server.destroy()
        shutil.rmtree(root, ignore_errors=True)
