"""Running a service the deployed way in tests, and a PostgreSQL of a test's own to stop and start.

`start_ingest_api` and `start_workspace_api` launch an API's command on a free loopback port
(tests/support/processes.py: the one launcher and environment scrubber) and wait for its health
endpoint; `own_postgres` is a fixture (import it into the test module) for outage tests, so
stopping the database disturbs no other test; `console_spans` reads the spans a server printed
with OTEL_TRACES_EXPORTER=console. `LiveService` and `snapshot` serve the fuzzing, bad-input and
security tests (tests/reliability/conftest.py starts the services).
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import httpx
import pytest

from tests.support import db
from tests.support.processes import ManagedProcess, ingest_api, workspace_api
from ts_ops.embedded_pg import EmbeddedPostgres, free_port


def answers(url: str) -> bool:
    """Any HTTP answer at all (a 503 while the database is away still means "started")."""
    try:
        httpx.get(url, timeout=2)
        return True
    except httpx.TransportError:
        return False


@dataclass
class Server:
    url: str
    database_url: str
    process: subprocess.Popen
    log_path: Path
    # Set by start_ingest_api/start_workspace_api: stopping then reaches the whole process group (granian's workers).
    managed: ManagedProcess | None = None

    def stop(self) -> None:
        if "client" in self.__dict__:
            self.__dict__.pop("client").close()
        if self.managed is not None:
            self.managed.stop(timeout=10)
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    @cached_property
    def client(self) -> httpx.Client:
        """An httpx.Client on `url`: the same interface as an in-process app's TestClient, so one
        helper serves both (tests/support/ingest.py). Closed by stop()."""
        return httpx.Client(base_url=self.url, timeout=60)


INGEST_TOKEN = "test-gateway-token-0123456789abcdef-XYZ"


def start_ingest_api(database_url: str, log_path: Path, **env: str) -> Server:
    """processes.ingest_api (the `ingest-api` command) on a free loopback port with the tests' token."""
    return _serve(lambda port, ready: ingest_api(port, database_url, INGEST_TOKEN, log_path, tracing=True,
                                                 ready=ready, DB_CONNECT_TIMEOUT_SECONDS="2", **env),
                  "/health", database_url, log_path)


def start_workspace_api(database_url: str, log_path: Path, health_path: str = "/api/health", **env: str) -> Server:
    """processes.workspace_api (the `workspace-api` command) on a free loopback port."""
    return _serve(lambda port, ready: workspace_api(port, database_url, log_path, tracing=True, ready=ready,
                                                    DB_CONNECT_TIMEOUT_SECONDS="2", **env),
                  health_path, database_url, log_path)


def _serve(launch: Callable[[int, Callable[[], bool]], ManagedProcess], health_path: str, database_url: str,
           log_path: Path) -> Server:
    # Tracing available (OTEL_TRACES_EXPORTER=console in `env` prints spans); started once
    # `health_path` answers at all. ProcessError (a RuntimeError) with the log's tail if it exits or hangs.
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    managed = launch(port, lambda: answers(url + health_path))
    managed.start(timeout=30)
    return Server(url, database_url, managed.proc, log_path, managed)


@pytest.fixture
def own_postgres() -> Iterator[EmbeddedPostgres]:
    """A PostgreSQL of the test's own (TEST_POSTGRES decides which build), that keeps its port
    across stop()/start()."""
    root = Path(tempfile.mkdtemp(prefix="tspg-outage-"))
    root.chmod(0o755)  # as root, the server runs as its own user and must reach the folder
    pg = db.new_server(root / "data").start()
    try:
        yield pg
    finally:
        pg.destroy()
        shutil.rmtree(root, ignore_errors=True)


def console_spans(output: str, trace_id: str) -> list[dict]:
    """The console exporter's spans (indented JSON objects) of one trace."""
    decoder = json.JSONDecoder()
    spans = []
    for match in re.finditer(r'^\{\n    "name"', output, re.MULTILINE):
        try:
            span, _ = decoder.raw_decode(output, match.start())
        except ValueError:
            continue  # still being written
        if span["context"]["trace_id"] == f"0x{trace_id}":
            spans.append(span)
    return spans


def wait_for_request_span(server: Server, trace_id: str, timeout: float = 10) -> None:
    """Until the server's log holds the request (SERVER) span of `trace_id`, or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not any(
            s["kind"] == "SpanKind.SERVER" for s in console_spans(server.log(), trace_id)):
        time.sleep(0.1)


# -- the APIs as granian processes (the fuzzing, bad-input and security tests) ---------------------

ALLOWED_ORIGIN = "https://dashboard.example.test"


@dataclass
class LiveService:
    url: str
    database_url: str
    token: str
    log_path: Path
    process: ManagedProcess

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")


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
