"""What the gateway says about itself: one `GatewayStatus`, shown three ways.

- `GET /health`: the running gateway's `GatewayStatus` are the body's own fields (beside the shared
  format's checks, ts_runtime.health);
- `gateway-status.json` in the data folder: the same snapshot, rewritten by `gateway run` every few
  seconds and at exit, and by `import`, `replay` and `requeue` when they finish. It adds what only
  the process knows (pid, last publish, last error) to what the queue files say. Written with temp +
  rename (a reader never sees half a file); no fsync: losing the newest copy in a crash loses no
  message, only a line of `gateway status`;
- `gateway status` (`--json`): the last snapshot of that file, with the queue files' and cursors'
  figures read now, without the queue lock (safe while a gateway runs).
"""

from __future__ import annotations

import os
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from ts_runtime.logs import mask

if TYPE_CHECKING:
    from .cursors import CursorStore
    from .queue import DurableQueue
    from .service import Gateway

FILE_NAME = "gateway-status.json"
SERVICE = "telegram-gateway"


class SourceStatus(msgspec.Struct, kw_only=True):
    kind: str
    connected: bool


class TelegramStatus(msgspec.Struct, kw_only=True):
    connected: bool


class GatewayStatus(msgspec.Struct, kw_only=True, rename="camel"):
    """The gateway's state at one moment. Every field has a default: a command fills what it knows,
    and a status file written by another version still reads (unknown keys are ignored)."""

    service: str = SERVICE
    # healthy / starting while `gateway run` serves (the /health body's overall status replaces it)
    status: str | None = None
    command: str | None = None  # run, import, replay, requeue: the process that wrote it
    pid: int | None = None  # `gateway status`: only while that process still holds the queue
    running: bool = False
    started_at: float | None = None
    uptime_seconds: float | None = None
    stopped_at: float | None = None
    exit_status: int | None = None
    status_updated_at: float | None = None
    # The queue files.
    queue_path: str | None = None
    queue_depth: int = 0
    oldest_queued_at: float | None = None
    dead_letters: int = 0
    dead_letter_file: str | None = None
    last_dead_letter: str | None = None
    # Lines of the quarantine file (this start's and earlier ones), kept until an operator moves it.
    quarantined_lines: int = 0
    quarantine_file: str | None = None
    unreadable_lines: int = 0
    shared_seq_lines: int = 0
    # What the last command set aside when it opened the queue.
    last_set_aside: int | None = None
    # Delivery to the API. An error text may quote what the API answered: secrets are cut.
    last_publish_at: float | None = None
    last_error: str | None = None
    retry_backoff_seconds: float | None = None
    # The source and the backfill cursors (`gateway status` puts {"error": …} here when the
    # cursor file is unreadable).
    source: SourceStatus | None = None
    telegram: TelegramStatus | None = None
    cursors: dict[str, int | str] = {}
    cursor_file: str | None = None
    # Damaged cursor files kept aside by `run` (while any is kept, a channel without a cursor is
    # backfilled BACKFILL_RECOVERY_LIMIT deep).
    damaged_cursor_files: list[str] = []
    last_backfill_at: float | None = None

    def to_builtins(self) -> dict[str, Any]:
        return msgspec.to_builtins(self)


_decoder = msgspec.json.Decoder(GatewayStatus)
_encoder = msgspec.json.Encoder()


def _masked(text: str | None) -> str | None:
    return None if text is None else mask(text)


def queue_fields(queue: DurableQueue) -> dict[str, Any]:
    """The queue's figures and files, as GatewayStatus fields."""
    return dict(queue_path=str(queue.files.path), queue_depth=queue.depth, dead_letters=queue.dead_letters,
                dead_letter_file=str(queue.files.dead_letter), quarantine_file=str(queue.files.quarantine))


def running_status(gateway: Gateway) -> GatewayStatus:
    """The running gateway's snapshot: /health's own fields, and what `run` writes to the status file."""
    source = gateway.source
    return GatewayStatus(
        status="healthy" if gateway.state.ready else "starting",
        command="run",
        pid=os.getpid(),
        running=True,
        started_at=gateway.state.started_at,
        uptime_seconds=round(time.time() - gateway.state.started_at, 1),
        **queue_fields(gateway.queue),
        quarantined_lines=gateway.queue.quarantined,
        last_set_aside=gateway.state.set_aside,
        last_publish_at=gateway.publisher.last_publish_at,
        last_error=_masked(gateway.publisher.last_error or gateway.state.last_error),
        retry_backoff_seconds=gateway.drainer.backoff,
        source=SourceStatus(kind=source.kind, connected=source.connected),
        telegram=TelegramStatus(connected=source.connected) if source.kind == "telegram" else None,
        cursors={str(k): v for k, v in gateway.cursors.cursors.items()},
        cursor_file=str(gateway.cursors.path),
        last_backfill_at=gateway.state.last_backfill_at,
    )


def status_report(queue_path: Path, cursors: CursorStore, data_dir: Path) -> GatewayStatus:
    """Everything `gateway status` shows: the queue files and cursors read now, without the queue
    lock (safe while a gateway runs), over the last status file."""
    from .cursors import CursorsUnreadable
    from .queue import QueueFiles, inspect_queue

    snapshot = inspect_queue(queue_path)
    try:
        positions: dict[str, int | str] = {str(k): v for k, v in cursors.read().items()}
    except (ValueError, CursorsUnreadable) as exc:  # status shows the rest even if this file is damaged
        positions = {"error": f"unreadable: {exc}"}
    last = read_status(status_path(data_dir)) or GatewayStatus()
    files = QueueFiles(queue_path)
    return msgspec.structs.replace(
        last,
        queue_path=str(queue_path),
        running=snapshot.locked,
        pid=last.pid if snapshot.locked else None,
        queue_depth=snapshot.depth,
        oldest_queued_at=snapshot.oldest_queued_at,
        dead_letters=snapshot.dead_letters,
        dead_letter_file=str(files.dead_letter),
        last_dead_letter=snapshot.last_dead_letter,
        quarantined_lines=snapshot.quarantined,
        quarantine_file=str(files.quarantine),
        unreadable_lines=snapshot.unreadable_lines,
        shared_seq_lines=snapshot.shared_seq_lines,
        cursors=positions,
        cursor_file=str(cursors.path),
        damaged_cursor_files=[str(path) for path in cursors.damaged_copies()],
    )


# -- the status file --------------------------------------------------------------------------------


def status_path(data_dir: Path) -> Path:
    return Path(data_dir) / FILE_NAME


def write_status(path: Path, status: GatewayStatus) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(_encoder.encode(msgspec.structs.replace(status, status_updated_at=time.time())))
    os.replace(tmp, path)


def read_status(path: Path) -> GatewayStatus | None:
    try:
        return _decoder.decode(path.read_bytes())
    except (OSError, msgspec.DecodeError, RecursionError, ValueError):
        return None  # missing or damaged: status shows the queue files without it


def last_known_cursors(data_dir: Path) -> dict[str, Any] | None:
    """The cursors the last status file holds (read by the cursor store only after damage)."""
    status = read_status(status_path(data_dir))
    return None if status is None else dict(status.cursors)


# -- `gateway status` as text -----------------------------------------------------------------------


def render_status(report: GatewayStatus) -> str:
    if report.running:
        running = f"yes ({report.command or 'gateway'}, pid {report.pid or '?'})"
    else:
        running = "no"
    depth = str(report.queue_depth)
    if report.oldest_queued_at is not None:
        depth += f" (oldest queued {_ts(report.oldest_queued_at)})"
    dead = str(report.dead_letters)
    if report.dead_letters:
        dead += f" in {report.dead_letter_file}"
        if report.last_dead_letter:
            dead += f"; newest: {report.last_dead_letter}"
    quarantined = f"{report.quarantined_lines} line(s)"
    if report.quarantined_lines:
        quarantined += f" in {report.quarantine_file}"
        if report.last_set_aside:
            quarantined += f" ({report.last_set_aside} set aside by the last `{report.command or 'gateway'}`)"
    if "error" in report.cursors:
        cursors = (f"{report.cursors['error']} ({report.cursor_file}; the next `gateway run` keeps it aside "
                   "and backfills from the last known positions)")
    else:
        cursors = ", ".join(f"{k} → {v}" for k, v in sorted(report.cursors.items())) or "none yet"
    lines = [
        f"queue          {report.queue_path}",
        f"running        {running}",
        f"queue depth    {depth}",
        f"dead letters   {dead}",
        f"quarantined    {quarantined}",
        f"cursors        {cursors}",
        f"last publish   {_ts(report.last_publish_at)}",
        f"last error     {report.last_error or 'none'}",
    ]
    if report.unreadable_lines:
        lines.append(f"unreadable     {report.unreadable_lines} line(s) in the queue file "
                     "(quarantined at the next start)")
    for damaged in report.damaged_cursor_files:
        lines.append(f"damaged cursor file kept: {damaged} (channels without a cursor are backfilled "
                     "BACKFILL_RECOVERY_LIMIT deep while it is kept; delete it once looked at)")
    if report.shared_seq_lines:
        lines.append(f"shared seq     {report.shared_seq_lines} line(s) reuse another line's seq "
                     "(renumbered at the next start; all delivered)")
    return "\n".join(lines)


def _ts(epoch: float | None) -> str:
    if epoch is None:
        return "never"
    moment = datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="seconds")
    return f"{moment} ({_ago(time.time() - epoch)} ago)"


def _ago(seconds: float) -> str:
    seconds = max(0.0, seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"
