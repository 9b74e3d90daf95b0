"""Running a service the deployed way in tests, and a PostgreSQL of a test's own to stop and start.

`start_service` launches an API's command on a free loopback port and waits for its health
endpoint; `own_postgres` is a fixture (import it into the test module) for outage tests, so
stopping the database disturbs no other test; `console_spans` reads the spans a server printed
with OTEL_TRACES_EXPORTER=console.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support import db
from ts_ops.embedded_pg import EmbeddedPostgres, free_port


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


def start_service(name: str, command: Sequence[str], health_path: str, database_url: str, log_path: Path,
                  env: dict[str, str], drop_env_prefixes: tuple[str, ...] = (), args: Sequence[str] = ()) -> Server:
    """`command --host 127.0.0.1 --port <free> *args` with `env` over this process's environment.

    Variables starting with `drop_env_prefixes` are left out (a developer's DATABASE_URL or
    PROMETHEUS_MULTIPROC_DIR must not leak into the server). Returns once `health_path` answers.
    """
    port = free_port()
    environment = {k: v for k, v in os.environ.items() if not k.startswith(drop_env_prefixes)}
    environment.update({"DATABASE_URL": database_url, "LOG_LEVEL": "INFO", "OTEL_TRACES_EXPORTER": "none",
                        "DB_CONNECT_TIMEOUT_SECONDS": "2", **env})
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [*command, "--host", "127.0.0.1", "--port", str(port), *args],
            env=environment, stdout=log_file, stderr=subprocess.STDOUT,
        )
    server = Server(f"http://127.0.0.1:{port}", database_url, process, log_path)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}:\n{server.log()}")
        try:
            httpx.get(server.url + health_path, timeout=2)
            return server
        except httpx.TransportError:
            time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"{name} did not start:\n{server.log()}")


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
