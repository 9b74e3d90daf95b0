"""sd_notify without a dependency: one datagram to $NOTIFY_SOCKET per state change.

`READY=1` once the gateway serves, `WATCHDOG=1` every half of `WATCHDOG_USEC`, `STOPPING=1` on
SIGTERM. Outside systemd (no NOTIFY_SOCKET) every call is a no-op.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket

log = logging.getLogger(__name__)


def notify(state: str) -> bool:
    """Send `state` (e.g. "READY=1"); False when not under systemd."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]  # abstract namespace
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(address)
            sock.sendall(state.encode())
    except OSError as exc:
        # A notification that cannot be sent must not stop the gateway; systemd's timeouts tell.
        log.warning("sd_notify %s to %s failed: %s", state, os.environ.get("NOTIFY_SOCKET"), exc)
        return False
    return True


def watchdog_interval() -> float | None:
    """Half of WATCHDOG_USEC in seconds, when systemd asked for pings (and they are for us)."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    return int(usec) / 1_000_000 / 2


async def watchdog_loop(interval: float, alive=lambda: True) -> None:
    """Ping while `alive()` says the gateway still works (a stuck loop stops the pings)."""
    while True:
        if alive():
            notify("WATCHDOG=1")
        await asyncio.sleep(interval)
