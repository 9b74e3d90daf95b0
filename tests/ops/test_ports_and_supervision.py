"""Port-conflict reporting (`stack` names the process holding a port) and process-group supervision."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from tests.support.processes import service_env
from ts_ops.embedded_pg import free_port
from ts_ops import stack
from ts_ops.ports import find_port_holder, port_is_free
from ts_ops.supervise import Supervisor

LISTENER = textwrap.dedent(
    """
    import socket, sys, time
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen()
    print("listening", flush=True)
    time.sleep(120)
    """
)


@pytest.fixture
def listener():
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", LISTENER, str(port)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "listening"
    yield port, proc
    proc.kill()
    proc.wait()


def run_stack(*args: str, stdin: str = "", env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ts_ops.stack", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        env=service_env(**(env or {})),
    )


def test_find_port_holder_names_the_listener(listener) -> None:
    port, proc = listener
    holder = find_port_holder(port)
    assert holder is not None and holder.pid == proc.pid
    assert holder.describe() == f"port {port} is in use by {psutil.Process(proc.pid).name()} (pid {proc.pid})"
    assert not port_is_free(port)
    assert find_port_holder(free_port()) is None


def test_stack_reports_a_taken_port_in_one_line_and_starts_nothing(listener, tmp_path: Path) -> None:
    port, proc = listener
    result = run_stack("--data-dir", str(tmp_path / "data"), "--ingest-port", str(port), "--workspace-port", str(free_port()))
    assert result.returncode == 1
    name = psutil.Process(proc.pid).name()
    assert result.stdout.splitlines() == [f"port {port} is in use by {name} (pid {proc.pid})"]
    assert "--force-kill" in result.stderr
    assert proc.poll() is None  # nothing was stopped
    assert not (tmp_path / "data").exists()  # nothing was started


def test_force_kill_asks_and_no_keeps_the_process(listener, tmp_path: Path) -> None:
    port, proc = listener
    result = run_stack("--force-kill", "--data-dir", str(tmp_path), "--ingest-port", str(port),
                       "--workspace-port", str(free_port()), stdin="n\n")
    assert result.returncode == 1
    assert f"(pid {proc.pid})? [y/N]" in result.stdout
    assert proc.poll() is None


def test_force_kill_yes_stops_the_holder(listener, tmp_path: Path) -> None:
    port, proc = listener
    # A database that refuses connections makes the stack stop right after the port check.
    result = run_stack("--force-kill", "--data-dir", str(tmp_path), "--ingest-port", str(port),
                       "--workspace-port", str(free_port()), stdin="y\n",
                       env={"DATABASE_URL": f"postgresql://postgres@127.0.0.1:{free_port()}/x"})
    name = psutil.Process(proc.pid).name()
    assert proc.wait(timeout=10) is not None
    assert f"? [y/N] stopped {name} (pid {proc.pid})" in result.stdout
    assert port_is_free(port)
    assert result.returncode == 1 and "cannot connect" in result.stderr


STUBBORN_GROUP = textwrap.dedent(
    """
    import os, signal, time
    # A grandchild that ignores SIGTERM, like a worker stuck in a blocking call.
    if os.fork() == 0:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        time.sleep(120)
        os._exit(0)
    time.sleep(120)
    """
)


def test_supervisor_stops_the_whole_group_and_escalates_to_sigkill(tmp_path: Path) -> None:
    supervisor = Supervisor(tmp_path / "logs")
    child = supervisor.start("stubborn", [sys.executable, "-c", STUBBORN_GROUP], dict(os.environ))
    assert os.getpgid(child.pid) == child.pid  # its own process group
    time.sleep(0.5)
    members = [p for p in psutil.process_iter(["pid"]) if _pgid(p.pid) == child.pid]
    assert len(members) == 2
    started = time.monotonic()
    supervisor.stop_all(timeout=0.5)
    assert time.monotonic() - started < 5
    assert not child.group_alive()
    assert all(not psutil.pid_exists(p.pid) or p.status() == psutil.STATUS_ZOMBIE for p in members)
    assert (tmp_path / "logs" / "stubborn.log").exists()


def test_child_is_told_to_stop_when_the_supervisor_dies(tmp_path: Path) -> None:
    """PR_SET_PDEATHSIG: a stack killed with SIGKILL still takes its children down."""
    script = textwrap.dedent(
        f"""
        import os, sys, time
        from pathlib import Path
        from ts_ops.supervise import Supervisor
        child = Supervisor(Path({str(tmp_path)!r})).start("sleeper", [sys.executable, "-c", "import time; time.sleep(120)"], dict(os.environ))
        print(child.pid, flush=True)
        time.sleep(120)
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    child_pid = int(parent.stdout.readline())
    assert psutil.pid_exists(child_pid)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _alive(child_pid):
        time.sleep(0.05)
    assert not _alive(child_pid)


def test_shared_token_is_generated_once_and_env_wins(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("API_SECRET_TOKEN", raising=False)
    monkeypatch.delenv("GATEWAY_SECRET_TOKEN", raising=False)
    first = stack.shared_token(tmp_path)
    assert len(first) == 64 and stack.shared_token(tmp_path) == first
    assert oct((tmp_path / "stack-token").stat().st_mode & 0o777) == "0o600"
    monkeypatch.setenv("GATEWAY_SECRET_TOKEN", "z" * 40)
    assert stack.shared_token(tmp_path) == "z" * 40
    monkeypatch.setenv("API_SECRET_TOKEN", "y" * 40)
    with pytest.raises(stack.StackError, match="differ"):
        stack.shared_token(tmp_path)


def test_telegram_setup_needs_credentials_and_a_session(tmp_path: Path, monkeypatch) -> None:
    for key in list(os.environ):
        if key.startswith("TELEGRAM_"):
            monkeypatch.delenv(key)
    root = tmp_path / "repo"
    (root / "services/gateway").mkdir(parents=True)
    assert not stack.telegram_setup(root, tmp_path).live
    monkeypatch.setenv("TELEGRAM_API_ID", "1")
    monkeypatch.setenv("TELEGRAM_API_HASH", "f" * 32)
    setup = stack.telegram_setup(root, tmp_path)
    assert not setup.live and "gateway login" in setup.reason
    session = tmp_path / "gateway" / "gateway.session"
    session.parent.mkdir()
    session.write_bytes(b"")
    setup = stack.telegram_setup(root, tmp_path)
    assert setup.live and setup.env["TELEGRAM_SESSION_PATH"] == str(session)
    # The gateway's own rule decides which file is the session: Telethon appends .session.
    monkeypatch.setenv("TELEGRAM_SESSION_PATH", str(tmp_path / "gateway" / "gateway"))
    assert stack.telegram_setup(root, tmp_path).live
    monkeypatch.setenv("TELEGRAM_API_ID", "not-a-number")
    setup = stack.telegram_setup(root, tmp_path)
    assert not setup.live and "TELEGRAM_API_ID must be a number" in setup.reason


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_stack_status_prints_one_line_per_component_and_fails_when_down(tmp_path: Path) -> None:
    env = service_env()
    result = subprocess.run(
        [sys.executable, "-m", "ts_ops.stack", "status", "--data-dir", str(tmp_path),
         "--ingest-port", str(free_port()), "--workspace-port", str(free_port()), "--gateway-port", str(free_port())],
        capture_output=True, text=True, timeout=60, env=env,
    )
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert [line.split()[:2] for line in lines] == [
        ["database", "DOWN"], ["ingest-api", "DOWN"], ["workspace-api", "DOWN"], ["gateway", "DOWN"],
    ]
    assert "refused" in lines[1].lower()
