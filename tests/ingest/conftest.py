"""Ingest API tests: the app under granian on a loopback port, against a real PostgreSQL."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator

import pytest

from tests.support import db
from tests.support.live import INGEST_TOKEN as TOKEN
from tests.support.live import Server
from tests.support.live import start_ingest_api as start_server

__all__ = ["TOKEN", "Server", "auth", "start_server"]

_channels = itertools.count(1)


@pytest.fixture(scope="session")
def api_database_url(pg_server_url: str, migrated_template: str) -> Iterator[str]:
    """One migrated database shared by the session's server; tests isolate by channel id."""
    name = db.create_test_database(pg_server_url, migrated_template)
    yield db.with_database(pg_server_url, name)
    db.drop_database(pg_server_url, name)


@pytest.fixture(scope="session")
def server(api_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = start_server(api_database_url, tmp_path_factory.mktemp("ingest-api") / "server.log")
    yield running
    running.stop()


@pytest.fixture
def channel_id() -> int:
    """A channel id no other test uses (Telegram channel ids are negative)."""
    return -1_000_000_000_000 - os.getpid() * 10_000 - next(_channels)


def auth(token: str = TOKEN) -> dict[str, str]:
    return {"X-Gateway-Token": token}
