"""Child processes of `uv run stack`: each in its own process group, stopped as a group.

A server such as granian forks workers (and a reloader with --reload); signalling only the PID we
started would leave those behind. Each child therefore starts a new session (its own process
group), and stopping it means SIGTERM to the whole group, then SIGKILL to whatever is left after
a timeout. The children also get PR_SET_PDEATHSIG so that they are told to stop even when the
stack itself is killed with SIGKILL and cannot clean up.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Mapping, Sequence

_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent_pid: int) -> None:  # runs in the child between fork and exec
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


@dataclass
class Child:
    name: str
    argv: Sequence[str]
    log_path: Path
    process: subprocess.Popen[bytes]
    started_at: float = field(default_factory=time.monotonic)

    @property
    def pid(self) -> int:
        return self.process.pid

    def exit_code(self) -> int | None:
        return self.process.poll()

    def group_alive(self) -> bool:
        """True while any process of the child's group remains (the leader is reaped first)."""
        self.process.poll()
        try:
            os.killpg(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def signal_group(self, signum: int) -> None:
        try:
            os.killpg(self.pid, signum)
        except ProcessLookupError:
            pass

    def stop(self, timeout: float) -> None:
        """SIGTERM to the group; SIGKILL to what is left after `timeout` seconds."""
        self.signal_group(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while self.group_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        if self.group_alive():
            self.signal_group(signal.SIGKILL)
            deadline = time.monotonic() + 5
            while self.group_alive() and time.monotonic() < deadline:
                time.sleep(0.05)
        try:
            self.process.wait(timeout=1)
        except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL cannot be ignored
            pass

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


class Supervisor:
    """Starts children with their output in log files and stops them all, newest first."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.children: list[Child] = []

    def start(self, name: str, argv: Sequence[str], env: Mapping[str, str], cwd: Path | None = None) -> Child:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{name}.log"
        log: IO[bytes] = log_path.open("ab")
        log.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(argv)}\n".encode())
        log.flush()
        parent_pid = os.getpid()
        try:
            process = subprocess.Popen(
                list(argv),
                env=dict(env),
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=lambda: _die_with_parent(parent_pid),
            )
        finally:
            log.close()  # the child holds its own copy of the descriptor
        child = Child(name=name, argv=list(argv), log_path=log_path, process=process)
        self.children.append(child)
        return child

    def stop_all(self, timeout: float) -> None:
        # Newest first: the gateway stops before the API it publishes to.
        for child in reversed(self.children):
            child.stop(timeout)

    def kill_all(self) -> None:
        for child in self.children:
            child.signal_group(signal.SIGKILL)
