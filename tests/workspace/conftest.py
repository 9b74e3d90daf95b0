"""Workspace API tests against a real PostgreSQL.

Most tests drive the app in-process over HTTP with Litestar's AsyncTestClient, each on a fresh
migrated database; `live` runs it the deployed way, `workspace-api` under granian on a loopback
port (one server and database per module).
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient

from tests.support import db, timescale
from tests.support.live import Server, start_service
from ts_runtime.settings import DatabaseSettings
from workspace_api.app import create_app
from workspace_api.settings import HttpSettings, LogSettings, Settings

BIN = Path(sys.executable).parent


def settings_for(database_url: str, **overrides) -> Settings:
    return Settings(
        database=DatabaseSettings(url=database_url, pool_max_size=4, connect_timeout=2.0),
        http=overrides.pop("http", HttpSettings()),
        log=LogSettings(level="WARNING"),
        trace_sql=False,
        **overrides,
    )


@pytest.fixture
async def client(database_url: str) -> AsyncIterator[AsyncTestClient]:
    async with AsyncTestClient(app=create_app(settings_for(database_url))) as test_client:
        yield test_client


def start_server(database_url: str, log_path: Path, *args: str, **env: str) -> Server:
    """The `workspace-api` console script (granian) on a free loopback port."""
    return start_service("workspace-api", [str(BIN / "workspace-api")], "/api/health", database_url, log_path,
                         {"PYTHONUNBUFFERED": "1", **env}, args=args,
                         drop_env_prefixes=("DATABASE_", "TIMESCALEDB_", "OTEL_", "DB_STRATEGY", "PROMETHEUS_MULTIPROC"))


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
