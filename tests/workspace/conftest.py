"""Workspace API tests against a real PostgreSQL.

Most tests drive the app in-process over HTTP with Litestar's AsyncTestClient, each on a fresh
migrated database; `live` runs it the deployed way, `workspace-api` under granian on a loopback
port (one server and database per module).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from litestar.testing import AsyncTestClient

from tests.support import db, timescale
from tests.support.workspace import Server, settings_for, start_server
from workspace_api.app import create_app


@pytest.fixture
async def client(database_url: str) -> AsyncIterator[AsyncTestClient]:
    async with AsyncTestClient(app=create_app(settings_for(database_url))) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def live_database_url(pg_server_url: str, migrated_template: str) -> Iterator[str]:
    name = db.create_test_database(pg_server_url, migrated_template)
    yield db.with_database(pg_server_url, name)
    db.drop_database(pg_server_url, name)


@pytest.fixture(scope="module")
def live(live_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_server(live_database_url, tmp_path_factory.mktemp("workspace-api") / "server.log")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def timescaledb_server_url() -> Iterator[str]:
    """A TimescaleDB server (the shared build, tests/support/timescale.py, preloaded) for the
    workspace migration tests, started once; they are skipped, with the reason, where it is missing."""
    if timescale.script() is None:
        pytest.skip(timescale.missing_reason())
    with timescale.running_server() as server:
        yield server.url


@pytest.fixture(params=["postgresql", "timescaledb"])
def server_database_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh database with no migrations, on the session's server and on TimescaleDB (production's)."""
    if request.param == "postgresql":
        yield request.getfixturevalue("empty_database_url")
        return
    server_url = request.getfixturevalue("timescaledb_server_url")
    name = db.create_empty_database(server_url)
    yield db.with_database(server_url, name)
    db.drop_database(server_url, name)
