"""Workspace API tests against a real PostgreSQL.

Most tests drive the app in-process over HTTP with Litestar's AsyncTestClient, each on a fresh
migrated database; `live` runs it the deployed way, `workspace-api` under granian on a loopback
port (one server and database per module).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from litestar.testing import AsyncTestClient

from tests.support import db
from ts_common.embedded_pg import free_port
from ts_common.settings import DatabaseSettings
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


@dataclass
class Server:
    url: str
    database_url: str
    process: subprocess.Popen
    log_path: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_server(database_url: str, log_path: Path, *args: str, **env: str) -> Server:
    """The `workspace-api` console script (granian) on a free loopback port."""
    port = free_port()
    environment = {k: v for k, v in os.environ.items()
                   if not k.startswith(("DATABASE_", "TIMESCALEDB_", "OTEL_", "DB_STRATEGY", "PROMETHEUS_MULTIPROC"))}
    environment.update({"DATABASE_URL": database_url, "LOG_LEVEL": "INFO", "OTEL_TRACES_EXPORTER": "none",
                        "DB_CONNECT_TIMEOUT_SECONDS": "2", "PYTHONUNBUFFERED": "1", **env})
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [str(BIN / "workspace-api"), "--host", "127.0.0.1", "--port", str(port), *args],
            env=environment, stdout=log_file, stderr=subprocess.STDOUT,
        )
    server = Server(f"http://127.0.0.1:{port}", database_url, process, log_path)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"workspace-api exited with {process.returncode}:\n{server.log()}")
        try:
            httpx.get(server.url + "/api/health", timeout=2)
            return server
        except httpx.TransportError:
            time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"workspace-api did not start:\n{server.log()}")


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
