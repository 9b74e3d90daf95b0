"""Live services on loopback for the fuzzing, bad-input and security tests.

Each API runs as a real granian process (the way it is deployed) against its own fresh,
migrated database on the session's PostgreSQL, shared by the tests of one module.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import db, processes
from tests.support.live import ALLOWED_ORIGIN, LiveService


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
