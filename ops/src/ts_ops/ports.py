"""Who holds a TCP port, reported in one line, and stopping that process on request.

`uv run stack` checks its ports before starting anything, so a leftover server from an earlier
run is named (`port 4005 is in use by granian (pid 1234)`) instead of failing later with a bind
error buried in a child's log.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass

import psutil


@dataclass(frozen=True)
class PortHolder:
    port: int
    pid: int | None
    name: str | None

    def describe(self) -> str:
        if self.pid is None:
            return f"port {self.port} is in use by an unknown process (run as root to see which)"
        return f"port {self.port} is in use by {self.name or 'an unnamed process'} (pid {self.pid})"


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now (the kernel's pick)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True when a server could bind `host:port` now (the same test the services' bind makes)."""
    with socket.socket() as sock:
        # Without SO_REUSEADDR a port in TIME_WAIT would look taken, although servers (which set
        # it, PostgreSQL included) can bind it: an embedded PostgreSQL restarting on its port
        # would otherwise move to a new one and break every URL handed out before.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def find_port_holder(port: int) -> PortHolder | None:
    """The process listening on `port` (any address), or None when nobody listens there."""
    try:
        connections = psutil.net_connections(kind="inet")
    except psutil.AccessDenied:
        connections = []
    for conn in connections:
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
            return PortHolder(port=port, pid=conn.pid, name=_process_name(conn.pid))
    if not port_is_free(port):
        return PortHolder(port=port, pid=None, name=None)
    return None


def _process_name(pid: int | None) -> str | None:
    if pid is None:
        return None
    try:
        return psutil.Process(pid).name()
    except psutil.Error:
        return None


def stop_process(pid: int, timeout: float = 5.0) -> bool:
    """SIGTERM, then SIGKILL after `timeout`; True when the process is gone (or a zombie, which
    holds no port and waits only for its own parent to reap it)."""
    try:
        process = psutil.Process(pid)
        process.terminate()
        if _wait_gone(process, timeout):
            return True
        process.kill()
        return _wait_gone(process, timeout)
    except psutil.NoSuchProcess:
        return True
    except psutil.Error:
        return False


def _wait_gone(process: psutil.Process, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if process.status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False
