"""Ingest API tests: the app under granian on a loopback port, against a real PostgreSQL."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support import db
from ts_common.embedded_pg import free_port

TOKEN = "test-gateway-token-0123456789abcdef-XYZ"
_channels = itertools.count(1)


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


def start_server(database_url: str, log_path: Path, **env: str) -> Server:
    """`python -m ingest_api.cli` (what `uv run ingest-api` runs) on a free loopback port."""
    port = free_port()
    environment = {
        **os.environ,
        "DATABASE_URL": database_url,
        "GATEWAY_SECRET_TOKEN": TOKEN,
        "LOG_LEVEL": "INFO",
        "OTEL_TRACES_EXPORTER": "none",
        "DB_CONNECT_TIMEOUT_SECONDS": "2",
        **env,
    }
    environment.pop("PROMETHEUS_MULTIPROC_DIR", None)
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "ingest_api.cli", "--host", "127.0.0.1", "--port", str(port)],
            env=environment, stdout=log_file, stderr=subprocess.STDOUT,
        )
    server = Server(f"http://127.0.0.1:{port}", database_url, process, log_path)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"ingest-api exited with {process.returncode}:\n{server.log()}")
        try:
            httpx.get(server.url + "/health", timeout=2)
            return server
        except httpx.TransportError:
            time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"ingest-api did not start:\n{server.log()}")


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
