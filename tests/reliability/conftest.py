"""Live services on loopback for the fuzzing, bad-input and security tests.

Each API runs as a real granian process (the way it is deployed) against its own fresh,
migrated database on the session's PostgreSQL, shared by the tests of one module.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import processes
from tests.support import db

ALLOWED_ORIGIN = "https://dashboard.example.test"


@dataclass
class LiveService:
    url: str
    database_url: str
    token: str
    log_path: Path
    process: processes.ManagedProcess

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")


def _start(kind: str, pg_server_url: str, template: str, tmp: Path) -> tuple[LiveService, str]:
    name = db.create_test_database(pg_server_url, template)
    database_url = db.with_database(pg_server_url, name)
    port = processes.free_port()
    token = secrets.token_urlsafe(32)
    log_path = tmp / f"{kind}.log"
    if kind == "ingest-api":
        process = processes.ingest_api(port, database_url, token, log_path, CORS_ORIGIN=ALLOWED_ORIGIN)
    else:
        process = processes.workspace_api(port, database_url, log_path, CORS_ORIGIN=ALLOWED_ORIGIN,
                                          API_SECRET_TOKEN=token, WORKSPACE_API_TOKEN=token)
    process.start()
    return LiveService(f"http://127.0.0.1:{port}", database_url, token, log_path, process), name


@pytest.fixture(scope="module")
def ingest_api(pg_server_url: str, migrated_template: str, tmp_path_factory) -> Iterator[LiveService]:
    service, name = _start("ingest-api", pg_server_url, migrated_template, tmp_path_factory.mktemp("ingest"))
    try:
        yield service
    finally:
        service.process.stop()
        db.drop_database(pg_server_url, name)


@pytest.fixture(scope="module")
def workspace_api(pg_server_url: str, migrated_template: str, tmp_path_factory) -> Iterator[LiveService]:
    service, name = _start("workspace-api", pg_server_url, migrated_template, tmp_path_factory.mktemp("workspace"))
    try:
        yield service
    finally:
        service.process.stop()
        db.drop_database(pg_server_url, name)


async def _snapshot(database_url: str, schema: str) -> dict[str, list[tuple]]:
    async with db.connection(database_url) as conn:
        tables = await conn.fetch(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = $1 AND table_type = 'BASE TABLE'"
            " ORDER BY table_name", schema)
        snapshot = {}
        for table in tables:
            rows = await conn.fetch(f'SELECT * FROM "{schema}"."{table["table_name"]}"')
            snapshot[table["table_name"]] = sorted((tuple(map(repr, row.values())) for row in rows))
        return snapshot


def snapshot(database_url: str, schema: str) -> dict[str, list[tuple]]:
    """Every row of every table in `schema`: compare two to prove a request changed nothing."""
    return asyncio.run(_snapshot(database_url, schema))
