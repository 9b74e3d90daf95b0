"""The one-shot delivery commands: `import` (a Telegram Desktop export), `replay` (the queue as it
is), `requeue` (reviewed payloads). Each opens the queue (refusing while a gateway owns it),
publishes everything through /ingest/batch with a progress bar, prints one summary line and
writes the status file."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from . import compose
from .exits import EXIT_SET_ASIDE, fail, print_problems
from .queue import DurableQueue
from .settings import GatewaySettings


async def drain_now(settings: GatewaySettings, queue: DurableQueue, description: str, *,
                    progress: bool | None) -> tuple[bool, dict]:
    """Publish everything queued through /ingest/batch, with a progress bar; (emptied, counts)."""
    from tqdm import tqdm

    from .drainer import stop_when_idle

    publish = settings.publish
    loop = asyncio.get_running_loop()
    # disable=None: no bar when stderr is not a terminal (logs of `uv run stack`, tests).
    with tqdm(total=queue.depth, desc=description, unit="msg", disable=None if progress is None else not progress,
              file=sys.stderr) as bar:
        async with compose.delivery(settings, queue, one_shot=True, on_progress=bar.update) as drainer:
            task = asyncio.create_task(drainer.drain_once())
            stopping = []

            def on_signal() -> None:
                stopping.append(asyncio.create_task(stop_when_idle(drainer, task, publish.timeout_seconds + 1.0)))

            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, on_signal)
            try:
                emptied = await task
            except asyncio.CancelledError:
                emptied = False
            finally:
                for sig in (signal.SIGTERM, signal.SIGINT):
                    loop.remove_signal_handler(sig)
                await asyncio.gather(*stopping, return_exceptions=True)
    return emptied and not queue.depth, publish_counts(drainer.publisher)


def publish_counts(publisher) -> dict:
    """What a one-shot command reports: answers by status, the last error and publish time."""
    counts = dict(publisher.counts)
    counts["lastError"] = publisher.last_error
    counts["lastPublishAt"] = publisher.last_publish_at
    return counts


def _report_recovery(command: str, queue: DurableQueue, recovery) -> None:
    """Say what opening the queue found: lines set aside, seqs renumbered, ack lines ignored."""
    if recovery.quarantined:
        print(f"{command}: set aside {recovery.quarantined} damaged queue line(s) (not records: torn, corrupt or "
              f"undecodable), kept in {queue.files.quarantine}", file=sys.stderr, flush=True)
    if recovery.renumbered:
        print(f"{command}: {recovery.renumbered} queue line(s) shared a seq with another line: renumbered, "
              "every one is delivered", file=sys.stderr, flush=True)
    print_problems(command, recovery.problems)


def _open_for_command(settings: GatewaySettings, command: str) -> tuple[DurableQueue | None, int]:
    from .queue import QueueLocked

    queue = compose.make_queue(settings)
    try:
        recovery = queue.open()
    except QueueLocked:
        return None, fail(
            f"the queue {settings.queue.path} is owned by a running gateway (or another {command}); "
            f"a running gateway delivers it itself (`gateway status` shows its progress). Stop it first "
            f"to {command} from this shell.", 1)
    except OSError as exc:
        return None, fail(f"cannot open the queue {settings.queue.path}: {exc.strerror or exc}", 1)
    _report_recovery(command, queue, recovery)
    return queue, 0


def _finish(settings: GatewaySettings, queue: DurableQueue, command: str, emptied: bool, counts: dict,
            dead_before: int) -> int:
    from ts_runtime.logs import mask

    from .status import GatewayStatus, queue_fields, status_path, write_status

    if counts.get("lastError"):
        counts = {**counts, "lastError": mask(counts["lastError"])}  # printed and kept: cut as in the logs
    dead = queue.dead_letters - dead_before
    set_aside = queue.recovery.quarantined
    stored, duplicate = counts.get("stored", 0), counts.get("duplicate", 0)
    print(f"{command}: {stored} stored, {duplicate} already stored (duplicates), {dead} refused "
          f"(dead letters), {set_aside} set aside (quarantined), {queue.depth} still queued", flush=True)
    try:
        write_status(status_path(settings.queue.data_dir), GatewayStatus(
            command=command, pid=os.getpid(), **queue_fields(queue), last_publish_at=counts.get("lastPublishAt"),
            last_error=counts.get("lastError"), last_set_aside=set_aside))
    except OSError:
        pass
    if dead:
        print(f"{command}: {dead} message(s) refused by the API: see {queue.files.dead_letter}", file=sys.stderr)
    if set_aside:
        print(f"{command}: {set_aside} damaged queue line(s) set aside: see {queue.files.quarantine}", file=sys.stderr)
    if not emptied:
        print(f"{command}: the API did not acknowledge everything ({counts.get('lastError') or 'no answer'}); "
              f"{queue.depth} message(s) stay queued in {queue.files.path} for `gateway run` or `gateway replay`",
              file=sys.stderr)
        return 1
    if dead:
        return 1
    return EXIT_SET_ASIDE if set_aside else 0


def cmd_import(settings: GatewaySettings, export_path: Path, progress: bool | None) -> int:
    from .export import ExportError, ExportReader
    from .importer import import_export

    try:
        reader = ExportReader(export_path)  # reads only the chat's fields: a bad file costs nothing
    except ExportError as exc:
        return fail(str(exc), 2)
    with reader:
        queue, status = _open_for_command(settings, "import")
        if queue is None:
            return status
        try:
            dead_before = queue.dead_letters
            outcome = asyncio.run(import_export(settings, queue, reader, progress=progress))
            summary = reader.summary
            waiting = f", {outcome.already_waiting} already waiting in the queue" if outcome.already_waiting else ""
            print(f"import: {summary.messages} message(s) of {summary.channel_name or 'channel'} {summary.channel_id} "
                  f"({summary.edited} edited, {summary.skipped} service messages skipped); "
                  f"{outcome.queued} queued{waiting}", flush=True)
            code = _finish(settings, queue, "import", outcome.emptied, outcome.counts, dead_before)
        finally:
            queue.close()
    if outcome.problem is not None:
        # What was read before the problem is delivered (or stays queued); the file needs a look.
        return fail(outcome.problem, 2)
    if not outcome.finished_reading:
        print(f"import: stopped before the end of {export_path}; run the same import again to continue "
              "(what the API already has comes back as duplicates)", file=sys.stderr, flush=True)
        return 1
    return code


def cmd_replay(settings: GatewaySettings, progress: bool | None) -> int:
    queue, status = _open_for_command(settings, "replay")
    if queue is None:
        return status
    try:
        print(f"replay: {queue.depth} message(s) queued in {queue.files.path}", flush=True)
        dead_before = queue.dead_letters
        emptied, counts = asyncio.run(drain_now(settings, queue, "replay", progress=progress))
        return _finish(settings, queue, "replay", emptied, counts, dead_before)
    finally:
        queue.close()


def cmd_requeue(settings: GatewaySettings, path: Path, progress: bool | None) -> int:
    from .requeue import read_payloads

    try:
        found = read_payloads(path)
    except OSError as exc:
        return fail(f"cannot read {path}: {exc.strerror or exc}", 2)
    if found.problems:
        print_problems("requeue", found.problems)
        return fail(f"{path}: {len(found.problems)} line(s) are not payloads (one contract payload a line); "
                    "nothing was queued", 2)
    queue, status = _open_for_command(settings, "requeue")
    if queue is None:
        return status
    try:
        waiting = queue.pending_keys()
        fresh = [(key, payload) for key, payload in found.items if key not in waiting]
        queue.append_encoded(fresh)  # on disk (fsync'd) before anything is published
        already = len(found.items) - len(fresh)
        print(f"requeue: {len(fresh)} payload(s) from {path} queued"
              + (f", {already} already waiting in the queue" if already else "")
              + f"; {queue.depth} message(s) to deliver", flush=True)
        dead_before = queue.dead_letters
        emptied, counts = asyncio.run(drain_now(settings, queue, "requeue", progress=progress))
        return _finish(settings, queue, "requeue", emptied, counts, dead_before)
    finally:
        queue.close()
