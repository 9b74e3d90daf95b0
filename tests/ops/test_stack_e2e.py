"""`uv run stack` from a clean data folder: embedded PostgreSQL, both APIs, the sample import.

Start, query /signals until the sample's signals arrive, stop with SIGINT (Ctrl-C) and check that
no process is left; start again and check that the data was kept (and not duplicated).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from tests.support.processes import service_env
from ts_ops.embedded_pg import free_port
from ts_ops.ports import port_is_free

pytestmark = pytest.mark.slow
HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class RunningStack:
    def __init__(self, data_dir: Path, ports: dict[str, int]) -> None:
        self.data_dir = data_dir
        self.ports = ports
        # The services keep their tracing SDK on, as `uv run stack` runs them (exporting nowhere).
        env = service_env(tracing=True)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "ts_ops.stack", "--sample", "--data-dir", str(data_dir),
             "--ingest-port", str(ports["ingest"]), "--workspace-port", str(ports["workspace"]),
             "--gateway-port", str(ports["gateway"]), "--stop-timeout", "5"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
        )
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for_line(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.lines):
            assert self.process.poll() is None, f"stack exited ({self.process.returncode}):\n{self.output}"
            assert time.monotonic() < deadline, f"no {text!r} after {timeout} s:\n{self.output}"
            time.sleep(0.1)

    def get(self, port_name: str, path: str) -> tuple[int, object]:
        with HTTP.open(f"http://127.0.0.1:{self.ports[port_name]}{path}", timeout=5) as response:
            return response.status, json.loads(response.read())

    def post(self, port_name: str, path: str, body: dict) -> tuple[int, dict]:
        request = urllib.request.Request(f"http://127.0.0.1:{self.ports[port_name]}{path}", method="POST",
                                         data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
        with HTTP.open(request, timeout=5) as response:
            return response.status, json.loads(response.read())

    def processes(self) -> list[psutil.Process]:
        """The stack, every descendant, and the embedded PostgreSQL server (its own daemon)."""
        stack = psutil.Process(self.process.pid)
        found = [stack, *stack.children(recursive=True)]
        postmaster = int((self.data_dir / "postgres" / "postmaster.pid").read_text().split()[0])
        server = psutil.Process(postmaster)
        return found + [server, *server.children(recursive=True)]

    def interrupt(self, timeout: float = 60) -> int:
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout)


def signals(stack: RunningStack) -> list[dict]:
    status, body = stack.get("ingest", "/signals?limit=1000")
    assert status == 200
    return body["data"]


def wait_for_signals(stack: RunningStack, minimum: int, timeout: float) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        rows = signals(stack)
        if len(rows) >= minimum or time.monotonic() > deadline:
            return rows
        time.sleep(0.25)


def alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def run_once(data_dir: Path, ports: dict[str, int],
             while_up: Callable[[RunningStack], None] = lambda stack: None) -> tuple[list[dict], float]:
    stack = RunningStack(data_dir, ports)
    try:
        stack.wait_for_line("stack is up", timeout=120)
        up_at = time.monotonic()
        rows = wait_for_signals(stack, minimum=5, timeout=30)
        elapsed = time.monotonic() - up_at
        assert stack.get("workspace", "/api/items")[0] == 200
        status = subprocess.run(
            [sys.executable, "-m", "ts_ops.stack", "status", "--data-dir", str(data_dir)],
            capture_output=True, text=True, timeout=60,
        )
        assert status.returncode == 0, status.stdout + status.stderr
        assert [line.split()[:2] for line in status.stdout.splitlines()] == [
            ["database", "up"], ["ingest-api", "up"], ["workspace-api", "up"], ["gateway", "up"],
        ]
        # Let the import finish so that the second run's count is comparable.
        stack.wait_for_line("sample export imported", timeout=60)
        rows = signals(stack)
        while_up(stack)
        processes = stack.processes()
        assert len(processes) >= 4  # stack, two API servers, PostgreSQL
    except BaseException:
        stack.process.kill()
        raise
    assert stack.interrupt() == 0, stack.output
    deadline = time.monotonic() + 10
    while any(alive(p) for p in processes) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = [f"{p.pid} {p.name()}" for p in processes if alive(p)]
    assert not left, f"left behind: {left}\n{stack.output}"
    assert all(port_is_free(port) for name, port in ports.items() if name != "gateway")
    assert not (data_dir / "stack.json").exists()
    return rows, elapsed


def test_stack_brings_up_everything_serves_sample_signals_and_stops_cleanly(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    ports = {"ingest": free_port(), "workspace": free_port(), "gateway": free_port()}
    item: dict = {}

    def create_item(stack: RunningStack) -> None:
        # Something only this run writes: in an empty database the sample import would re-create
        # the signals, so they alone cannot show that the data was kept.
        status, body = stack.post("workspace", "/api/items", {"title": "kept across restarts", "category": "bug"})
        assert status == 201, body
        item.update(body.get("data", body))

    first, elapsed = run_once(data_dir, ports, create_item)
    assert len(first) >= 5, first
    assert elapsed < 15, f"signals took {elapsed:.1f} s to arrive"
    assets = {row["asset"] for row in first}
    assert {"BOVAW32", "ITUB4", "BEEFW655"} <= assets
    assert item.get("id"), item
    token = (data_dir / "stack-token").read_text()

    def item_is_there(stack: RunningStack) -> None:
        status, body = stack.get("workspace", f"/api/items/{item['id']}")
        assert status == 200 and "kept across restarts" in json.dumps(body), body

    # A second start on the same folder keeps the data; re-importing the sample adds no duplicate.
    second, _ = run_once(data_dir, ports, item_is_there)
    # The same rows, ingestion timestamps included: kept, not re-created.
    assert sorted(second, key=lambda row: row["id"]) == sorted(first, key=lambda row: row["id"])
    assert (data_dir / "stack-token").read_text() == token
