"""`uv run stack`: the whole system on one machine, no Docker needed.

    uv run stack                 # embedded PostgreSQL (data in ./.data/), both APIs, the gateway
    uv run stack --dev           # the same with granian reloading the APIs on source changes
    uv run stack status          # one line per component: database and each health endpoint

What `stack` does, in order:
1. checks its ports; a taken one is reported as `port 4005 is in use by <name> (pid N)`
   (`--force-kill` offers to stop that process);
2. uses DATABASE_URL when set, else starts the embedded PostgreSQL kept in .data/postgres
   (a restart keeps what was stored), and applies the migrations;
3. starts the ingest API and the workspace API under granian, and waits for their health checks;
4. starts the gateway: live when Telegram credentials and a session exist, otherwise it imports
   the sample channel export in samples/ so that signals arrive at /signals;
5. prints the URLs and a status line until Ctrl-C (or SIGTERM), which stops every child process
   group (SIGTERM, then SIGKILL after --stop-timeout) and the embedded PostgreSQL.

The gateway and the ingest API share a token: GATEWAY_SECRET_TOKEN / API_SECRET_TOKEN from the
environment, or one generated once and kept in .data/stack-token.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from dotenv import dotenv_values

from gateway.settings import TelegramSettings
from ts_runtime.envspec import environment
from ts_runtime.settings import MIN_TOKEN_LENGTH, ConfigError, describe_url
from .ports import PortHolder, find_port_holder, stop_process
from .supervise import Child, Supervisor
from .tokens import new_token

DATABASE_NAME = "tradingsystem"
SAMPLE_EXPORT = Path("samples/tp-capital-export/result.json")
STATE_FILE = "stack.json"
READY_TIMEOUT = 60.0
POLL_INTERVAL = 2.0

# Health probes go straight to 127.0.0.1, never through an HTTP proxy from the environment.
_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class StackError(RuntimeError):
    """Something stops the stack from starting; the message says what and what to do."""


# -- configuration ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Ports:
    ingest: int = 4005
    workspace: int = 3200
    gateway: int = 4006


@dataclass
class Component:
    """A service as the status line and `stack status` see it."""

    name: str
    health_url: str | None
    expected: bool = True  # False: the gateway in sample mode has no server to probe
    note: str = ""


def repo_root() -> Path:
    candidate = Path(__file__).resolve().parents[3]
    return candidate if (candidate / SAMPLE_EXPORT).exists() else Path.cwd()


def script(name: str) -> str:
    """A console script of this virtualenv (where `uv run` put us), else from PATH."""
    local = Path(sys.executable).parent / name
    if local.exists():
        return str(local)
    found = shutil.which(name)
    if found is None:
        raise StackError(f"{name} is not installed: run `uv sync` first")
    return found


def shared_token(data_dir: Path) -> str:
    """The token both sides use: from the environment, else generated once under .data/."""
    sent = os.environ.get("API_SECRET_TOKEN", "").strip()
    expected = os.environ.get("GATEWAY_SECRET_TOKEN", "").strip()
    if sent and expected and sent != expected:
        raise StackError("API_SECRET_TOKEN and GATEWAY_SECRET_TOKEN differ; the gateway would get 401 (unset one of them)")
    token = sent or expected
    if token:
        if len(token) < MIN_TOKEN_LENGTH:
            raise StackError(f"the configured token is {len(token)} characters; tokens need at least {MIN_TOKEN_LENGTH}")
        return token
    path = data_dir / "stack-token"
    if path.exists():
        return path.read_text().strip()
    token = new_token()
    data_dir.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(token + "\n")
    return token


@dataclass(frozen=True)
class TelegramSetup:
    live: bool
    env: dict[str, str] = field(default_factory=dict)
    reason: str = ""


def telegram_setup(root: Path, data_dir: Path) -> TelegramSetup:
    """Live mode needs TELEGRAM_API_ID/HASH and a session (string or file), from the environment
    or services/gateway/.env (the environment wins), as the gateway's own settings read them."""
    values = {k: v for k, v in dotenv_values(root / "services/gateway/.env").items() if v}
    values.update({k: v for k, v in os.environ.items() if k.startswith("TELEGRAM_") and v})
    env = {k: v for k, v in values.items() if k.startswith("TELEGRAM_")}
    env.setdefault("TELEGRAM_SESSION_PATH", str(data_dir / "gateway" / "gateway.session"))
    try:
        with environment(env):
            telegram = TelegramSettings.from_env()
    except ConfigError as exc:
        return TelegramSetup(False, env, f"the gateway's Telegram settings are invalid: {exc}")
    if telegram.api_id is None or not telegram.api_hash:
        return TelegramSetup(False, env, "no Telegram credentials (TELEGRAM_API_ID/TELEGRAM_API_HASH)")
    if not telegram.has_session:
        return TelegramSetup(False, env, f"Telegram credentials but no session: run `uv run gateway login` "
                                         f"(session file {telegram.session_file})")
    return TelegramSetup(True, env)


# -- probes -----------------------------------------------------------------------------------


def probe_http(url: str, timeout: float = 1.5) -> tuple[bool, str]:
    """(healthy, detail): healthy on a 2xx answer."""
    try:
        with _HTTP.open(url, timeout=timeout) as response:
            return 200 <= response.status < 300, str(response.status)
    except urllib.error.HTTPError as exc:
        return False, str(exc.code)
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return False, str(reason)


def probe_tcp(url: str, timeout: float = 1.0) -> tuple[bool, str]:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 5432), timeout=timeout):
            return True, "accepting connections"
    except OSError as exc:
        return False, exc.strerror or str(exc)


async def _query_database(url: str) -> str:
    import asyncpg

    conn = await asyncpg.connect(url, timeout=3)
    try:
        version = await conn.fetchval("SHOW server_version")
        migrations = await conn.fetchval("SELECT count(*) FROM public.schema_migrations")
        return f"PostgreSQL {version}, {migrations} migrations applied"
    finally:
        await conn.close()


def probe_database(url: str) -> tuple[bool, str]:
    try:
        return True, asyncio.run(_query_database(url))
    except Exception as exc:  # any failure is "down", with the reason shown
        return False, str(exc).splitlines()[0] if str(exc) else type(exc).__name__


# -- database ---------------------------------------------------------------------------------


async def _ensure_database(server_url: str, name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(server_url, timeout=10)
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


# -- the running stack ------------------------------------------------------------------------


class Stack:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.root = repo_root()
        self.data_dir: Path = args.data_dir.resolve()
        self.ports = Ports(args.ingest_port, args.workspace_port, args.gateway_port)
        self.supervisor = Supervisor(self.data_dir / "logs")
        self.stop_requested = threading.Event()
        self.embedded = None
        self.database_url = ""
        self.gateway: Child | None = None
        self.gateway_note = ""

    # -- steps ----------------------------------------------------------------------------

    def check_ports(self, ports: list[int]) -> None:
        holders = [h for h in (find_port_holder(p) for p in ports) if h is not None]
        for holder in holders:
            print(holder.describe(), flush=True)
            if not self.args.force_kill:
                continue
            if not self._confirm_kill(holder):
                raise StackError("not starting: the port is still taken")
        if holders and not self.args.force_kill:
            raise StackError("stop that process or start with --force-kill (or other --*-port values)")
        still = [h for h in (find_port_holder(p) for p in ports) if h is not None]
        if still:
            raise StackError("; ".join(h.describe() for h in still))

    def _confirm_kill(self, holder: PortHolder) -> bool:
        if holder.pid is None:
            print(f"cannot tell which process holds port {holder.port}, so cannot stop it")
            return False
        try:
            answer = input(f"stop {holder.name} (pid {holder.pid})? [y/N] ")
        except EOFError:
            answer = ""
        if answer.strip().lower() not in {"y", "yes"}:
            return False
        if not stop_process(holder.pid):
            print(f"could not stop pid {holder.pid}")
            return False
        print(f"stopped {holder.name} (pid {holder.pid})")
        return True

    def start_database(self) -> None:
        configured = os.environ.get("DATABASE_URL", "").strip()
        if configured:
            self.database_url = configured
            print(f"database     {describe_url(configured)} (DATABASE_URL)", flush=True)
        else:
            from .embedded_pg import EmbeddedPostgres

            print("database     starting embedded PostgreSQL…", flush=True)
            self.embedded = EmbeddedPostgres(self.data_dir / "postgres").start()
            asyncio.run(_ensure_database(self.embedded.url, DATABASE_NAME))
            self.database_url = self.embedded.url_for(DATABASE_NAME)
            print(f"database     embedded PostgreSQL on 127.0.0.1:{self.embedded.port}, data in {self.data_dir / 'postgres'}", flush=True)
        from .migrations import MigrationError, migrate_url

        try:
            applied = asyncio.run(migrate_url(self.database_url, report=lambda line: print(f"migrations   {line}", flush=True)))
        except MigrationError as exc:
            raise StackError(f"migrations: {exc}") from None
        if not applied:
            print("migrations   up to date", flush=True)

    def child_env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env.setdefault("LOG_LEVEL", "INFO")
        env["NO_PROXY"] = ",".join(filter(None, [env.get("NO_PROXY"), "127.0.0.1", "localhost"]))
        env.update(extra)
        return env

    def start_apis(self, token: str) -> None:
        reload = ["--reload"] if self.args.dev else []
        common = {"DATABASE_URL": self.database_url, "HOST": "127.0.0.1"}
        self.supervisor.start(
            "ingest-api",
            [script("ingest-api"), "--port", str(self.ports.ingest), *reload],
            self.child_env(**common, PORT=str(self.ports.ingest), GATEWAY_SECRET_TOKEN=token),
            cwd=self.root,
        )
        self.supervisor.start(
            "workspace-api",
            [script("workspace-api"), "--port", str(self.ports.workspace), *reload],
            self.child_env(**common, PORT=str(self.ports.workspace)),
            cwd=self.root,
        )
        self.wait_ready([c for c in self.components() if c.name in {"ingest-api", "workspace-api"}])

    def start_gateway(self, token: str, telegram: TelegramSetup) -> None:
        gateway_dir = self.data_dir / "gateway"
        gateway_dir.mkdir(parents=True, exist_ok=True)
        env = self.child_env(
            **telegram.env,
            API_ENDPOINT=f"http://127.0.0.1:{self.ports.ingest}/ingest",
            API_SECRET_TOKEN=token,
            FAILURE_QUEUE_PATH=str(gateway_dir / "failure-queue.jsonl"),
            GATEWAY_PORT=str(self.ports.gateway),
        )
        if telegram.live:
            self.gateway = self.supervisor.start("gateway", [script("gateway"), "run"], env, cwd=self.root)
            self.gateway_note = "live"
        else:
            sample = self.root / SAMPLE_EXPORT
            print(f"gateway      {telegram.reason}; importing the sample export {SAMPLE_EXPORT}", flush=True)
            self.gateway = self.supervisor.start("gateway", [script("gateway"), "import", str(sample)], env, cwd=self.root)
            self.gateway_note = "importing sample"

    def components(self) -> list[Component]:
        live = self.gateway_note == "live"
        return [
            Component("ingest-api", f"http://127.0.0.1:{self.ports.ingest}/health"),
            Component("workspace-api", f"http://127.0.0.1:{self.ports.workspace}/api/health"),
            # Liveness: the gateway's /health is 503 while Telegram is not connected, and the gateway
            # keeps reconnecting (and queueing) by itself.
            Component("gateway", f"http://127.0.0.1:{self.ports.gateway}/healthz" if live else None, expected=live),
        ]

    def wait_ready(self, components: list[Component]) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        pending = {c.name: c for c in components}
        while pending:
            self.check_children()
            for name, component in list(pending.items()):
                if probe_http(component.health_url or "")[0]:
                    print(f"{name:<12} ready", flush=True)
                    del pending[name]
            if not pending:
                return
            if time.monotonic() > deadline:
                raise StackError(f"{', '.join(pending)} not healthy after {READY_TIMEOUT:.0f} s; see {self.supervisor.log_dir}")
            if self.stop_requested.wait(0.2):
                raise KeyboardInterrupt

    def check_children(self) -> None:
        """An API that exits ends the stack; the gateway's exit is reported and the APIs go on."""
        for child in self.supervisor.children:
            code = child.exit_code()
            if code is None:
                continue
            if child is self.gateway:
                if self.gateway_note == "importing sample":
                    self.gateway_note = "sample imported" if code == 0 else f"sample import failed ({code})"
                    if code == 0:
                        print("\ngateway      sample export imported: see the signals at "
                              f"http://127.0.0.1:{self.ports.ingest}/signals", flush=True)
                    else:
                        print(f"\ngateway      import exited with status {code}; last lines of {child.log_path}:\n{child.log_tail()}", flush=True)
                elif self.gateway_note == "live":
                    self.gateway_note = f"exited ({code})"
                    print(f"\ngateway      exited with status {code}; last lines of {child.log_path}:\n{child.log_tail()}", flush=True)
                continue
            raise StackError(f"{child.name} exited with status {code}; last lines of {child.log_path}:\n{child.log_tail()}")

    # -- status line ------------------------------------------------------------------------

    def status_line(self) -> str:
        parts = []
        db_ok, _ = probe_tcp(self.database_url)
        parts.append(f"db {'up' if db_ok else 'DOWN'}")
        for component in self.components():
            if component.health_url is None:
                parts.append(f"{component.name} {self.gateway_note}")
                continue
            ok, detail = probe_http(component.health_url)
            state = "up" if ok else f"DOWN ({detail})"
            if component.name == "gateway" and self.gateway_note != "live":
                state = self.gateway_note
            parts.append(f"{component.name} {state}")
        return f"[{time.strftime('%H:%M:%S')}] " + " | ".join(parts)

    def print_urls(self) -> None:
        i, w, g = (f"http://127.0.0.1:{p}" for p in (self.ports.ingest, self.ports.workspace, self.ports.gateway))
        lines = [
            "",
            "stack is up",
            f"  signals        {i}/signals",
            f"  ingest API     {i}/health   {i}/logs   {i}/schema   {i}/metrics",
            f"  items          {w}/api/items",
            f"  workspace API  {w}/api/health   {w}/logs   {w}/schema   {w}/metrics",
        ]
        if self.gateway_note == "live":
            lines.append(f"  gateway        {g}/health   {g}/logs   {g}/metrics")
        lines += [f"  logs           {self.supervisor.log_dir}/", "Ctrl-C stops everything.", ""]
        print("\n".join(lines), flush=True)

    def write_state(self) -> None:
        state = {
            "pid": os.getpid(),
            "ports": {"ingest": self.ports.ingest, "workspace": self.ports.workspace, "gateway": self.ports.gateway},
            "gateway_mode": "live" if self.gateway_note == "live" else "sample",
            # The embedded server's URL holds no password; an external one is read from the environment.
            "database_url": self.embedded.url_for(DATABASE_NAME) if self.embedded else None,
        }
        (self.data_dir / STATE_FILE).write_text(json.dumps(state, indent=2))

    def watch(self) -> None:
        tty = sys.stdout.isatty()
        last = ""
        while not self.stop_requested.wait(POLL_INTERVAL):
            self.check_children()
            line = self.status_line()
            if tty:
                sys.stdout.write("\r\x1b[2K" + line)
                sys.stdout.flush()
            elif line[11:] != last:  # without a terminal, print only changes (ignoring the clock)
                print(line, flush=True)
            last = line[11:]

    # -- lifecycle --------------------------------------------------------------------------

    def install_signal_handlers(self) -> None:
        def on_signal(signum: int, _frame: object) -> None:
            if self.stop_requested.is_set():  # a second Ctrl-C: no more waiting
                self.supervisor.kill_all()
            self.stop_requested.set()

        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGHUP, on_signal)

    def run(self) -> int:
        self.install_signal_handlers()
        telegram = telegram_setup(self.root, self.data_dir)
        if self.args.sample and telegram.live:
            telegram = TelegramSetup(False, telegram.env, "--sample given")
        ports = [self.ports.ingest, self.ports.workspace] + ([self.ports.gateway] if telegram.live else [])
        self.check_ports(ports)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        try:
            self.start_database()
            token = shared_token(self.data_dir)
            self.start_apis(token)
            self.start_gateway(token, telegram)
            if telegram.live:
                self.wait_ready([c for c in self.components() if c.name == "gateway"])
            self.write_state()
            self.print_urls()
            self.watch()
            return 0
        except KeyboardInterrupt:
            return 0
        finally:
            self.shutdown()

    def shutdown(self) -> None:
        if sys.stdout.isatty():
            print()
        print("stopping…", flush=True)
        self.supervisor.stop_all(self.args.stop_timeout)
        if self.embedded is not None:
            self.embedded.stop()
        (self.data_dir / STATE_FILE).unlink(missing_ok=True)
        print("stopped", flush=True)


# -- stack status -------------------------------------------------------------------------------


def status(args: argparse.Namespace) -> int:
    """One line per component; exit 1 when any expected component is down."""
    data_dir = args.data_dir.resolve()
    try:
        state = json.loads((data_dir / STATE_FILE).read_text())
    except (OSError, ValueError):
        state = {}
    ports = state.get("ports", {})
    ingest = ports.get("ingest", args.ingest_port)
    workspace = ports.get("workspace", args.workspace_port)
    gateway = ports.get("gateway", args.gateway_port)

    database_url = os.environ.get("DATABASE_URL") or state.get("database_url")
    if not database_url and (data_dir / "postgres.port").exists():
        port = (data_dir / "postgres.port").read_text().strip()
        database_url = f"postgresql://postgres@127.0.0.1:{port}/{DATABASE_NAME}"
    rows: list[tuple[str, bool, str]] = []
    if database_url:
        ok, detail = probe_database(database_url)
        rows.append(("database", ok, f"{describe_url(database_url)}: {detail}"))
    else:
        rows.append(("database", False, "no DATABASE_URL and no embedded PostgreSQL in " + str(data_dir)))
    for name, url in (
        ("ingest-api", f"http://127.0.0.1:{ingest}/health"),
        ("workspace-api", f"http://127.0.0.1:{workspace}/api/health"),
    ):
        ok, detail = probe_http(url)
        rows.append((name, ok, f"{url} ({detail})"))
    url = f"http://127.0.0.1:{gateway}/healthz"
    ok, detail = probe_http(url)
    if not ok and state.get("gateway_mode") == "sample":
        rows.append(("gateway", True, "sample mode: imports samples/ once, no server (no Telegram credentials)"))
    else:
        rows.append(("gateway", ok, f"{url} ({detail})"))

    for name, ok, detail in rows:
        print(f"{name:<14} {'up' if ok else 'DOWN':<5} {detail}")
    return 0 if all(ok for _, ok, _ in rows) else 1


# -- command line ---------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stack", description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[2:6]))
    parser.add_argument("command", nargs="?", choices=["up", "status"], default="up",
                        help="up (default): start everything; status: check each component")
    parser.add_argument("--dev", action="store_true", help="granian reloads the APIs on source changes")
    parser.add_argument("--sample", action="store_true",
                        help="import the sample export even when Telegram credentials are configured")
    parser.add_argument("--force-kill", action="store_true", help="offer to stop a process holding one of our ports")
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("STACK_DATA_DIR", ".data")),
                        help="where the database, token, queue and logs live (STACK_DATA_DIR, default ./.data)")
    parser.add_argument("--ingest-port", type=int, default=4005)
    parser.add_argument("--workspace-port", type=int, default=3200)
    parser.add_argument("--gateway-port", type=int, default=4006)
    parser.add_argument("--stop-timeout", type=float, default=10.0,
                        help="seconds between SIGTERM and SIGKILL for each child (default 10)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "status":
        return status(args)
    try:
        return Stack(args).run()
    except StackError as exc:
        print(f"stack: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
