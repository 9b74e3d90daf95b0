"""Ingest API tests against a real PostgreSQL.

Most tests drive the app in-process with Litestar's TestClient (`api`, tests/support/ingest.py);
`server` runs it the deployed way, `ingest-api` under granian on a loopback port, for the smoke
tests that need a real process (its log file, workers, real sockets, concurrency over HTTP). Both
share one migrated database for the session; tests isolate by channel id.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator

import pytest

from tests.support import db
from tests.support.ingest import Api, Server, in_process, settings_for, start_server

_channels = itertools.count(1)


@pytest.fixture(scope="session")
def api_database_url(pg_server_url: str, migrated_template: str) -> Iterator[str]:
    """One migrated database shared by the session's `api` and `server`; tests isolate by channel id."""
    name = db.create_test_database(pg_server_url, migrated_template)
    yield db.with_database(pg_server_url, name)
    db.drop_database(pg_server_url, name)


@pytest.fixture(scope="session")
def server(api_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = start_server(api_database_url, tmp_path_factory.mktemp("ingest-api") / "server.log")
    yield running
    running.stop()


@pytest.fixture(scope="session")
def api(api_database_url: str) -> Iterator[Api]:
    with in_process(settings_for(api_database_url)) as running:
        yield running


@pytest.fixture
def channel_id() -> int:
    """A channel id no other test uses (Telegram channel ids are negative)."""
    return -1_000_000_000_000 - os.getpid() * 10_000 - next(_channels)
