"""Session-wide fixtures: a real PostgreSQL and a clean migrated database per test."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import asyncpg
import pytest

from tests.support import db


def pytest_report_header(config: pytest.Config) -> list[str]:
    """Which PostgreSQL this run is on: the suite means something different on each."""
    external = db.external_server_url()
    session = "a throwaway server"
    if external:
        try:
            session = f"TEST_DATABASE_URL ({db.describe_server(external)})"
        except (OSError, asyncpg.PostgresError) as exc:
            session = f"TEST_DATABASE_URL, unreachable: {exc}"
    kind = db.owned_server_kind()
    owned = "the TimescaleDB build (TEST_POSTGRES=timescaledb)" if kind == "timescaledb" else "embedded PostgreSQL"
    return [f"PostgreSQL: {session}; servers the tests start themselves: {owned}"]


@pytest.fixture(scope="session")
def pg_server() -> Iterator[db.EmbeddedPostgres | None]:
    """The embedded server this session started, or None when an external one is used."""
    if db.external_server_url():
        yield None
        return
    server = db.start_throwaway_server()
    try:
        yield server
    finally:
        server.destroy()
        shutil.rmtree(server.data_dir.parent, ignore_errors=True)  # the tspg-* folder around it


@pytest.fixture(scope="session")
def pg_server_url(pg_server: db.EmbeddedPostgres | None) -> str:
    """Admin URL of the test server (connects to its maintenance database)."""
    return pg_server.url if pg_server is not None else db.external_server_url()  # type: ignore[return-value]


@pytest.fixture(scope="session")
def migrated_template(pg_server_url: str) -> Iterator[str]:
    name = db.create_template(pg_server_url)
    yield name
    db.drop_database(pg_server_url, name)


@pytest.fixture
def database_url(pg_server_url: str, migrated_template: str) -> Iterator[str]:
    """URL of a fresh, fully migrated database, dropped after the test."""
    name = db.create_test_database(pg_server_url, migrated_template)
    yield db.with_database(pg_server_url, name)
    db.drop_database(pg_server_url, name)


@pytest.fixture
def empty_database_url(pg_server_url: str) -> Iterator[str]:
    """URL of a fresh database with no migrations applied."""
    name = db.create_empty_database(pg_server_url)
    yield db.with_database(pg_server_url, name)
    db.drop_database(pg_server_url, name)
