"""`gateway` command line: run (default), login, backup-session, import, replay, requeue, status.

Exit status: 0 done; 1 runtime failure (API unavailable, messages refused, queue owned by another
process, port in use, a source failure: systemd restarts the unit); 2 configuration or input problem
that a restart cannot fix (missing credentials or session, bad env value, unreadable export), printed
as one line; 3 the work was done, but this run set damaged queue lines aside (quarantined: they are in
`failure-queue.quarantine.jsonl`, and `gateway status` counts them). 1 and 2 win over 3.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from ts_common.settings import ConfigError, env_str

from .cursors import CursorsUnreadable
from .settings import GatewaySettings, load_dotenv_file

PROG = "gateway"
SERVICE_NAME = "telegram-gateway"
EXIT_SET_ASIDE = 3
# Problems printed one per line by a command; the rest are counted (all are in the log files).
_SHOWN_PROBLEMS = 10


def _fail(message: str, status: int) -> int:
    from ts_common.logs import mask

    # Not a log record, but read like one (journald keeps it): secrets cut as in the logs.
    print(f"{PROG}: {mask(message)}", file=sys.stderr, flush=True)
    return status


def _setup_logging(settings: GatewaySettings, *, interactive: bool) -> None:
    from ts_common.logs import setup_logging

    # The service logs JSON lines (journald); the one-shot commands talk to a person.
    fmt = (env_str("LOG_FORMAT") or ("text" if interactive else "json")).lower()
    level = settings.log_level
    if interactive and level.upper() == "INFO":
        level = "WARNING"  # the progress bar and the summary say what happened
    setup_logging(level, json=fmt == "json")


def _report_recovery(command: str, queue, recovery) -> None:
    """Say what opening the queue found: lines set aside, seqs renumbered, ack lines ignored."""
    if recovery.quarantined:
        print(f"{command}: set aside {recovery.quarantined} damaged queue line(s) (not records: torn, corrupt or "
              f"undecodable), kept in {queue.files.quarantine}", file=sys.stderr, flush=True)
    if recovery.renumbered:
        print(f"{command}: {recovery.renumbered} queue line(s) shared a seq with another line: renumbered, "
              "every one is delivered", file=sys.stderr, flush=True)
    for problem in recovery.problems[:_SHOWN_PROBLEMS]:
        print(f"{command}:   {problem}", file=sys.stderr, flush=True)
    if len(recovery.problems) > _SHOWN_PROBLEMS:
        print(f"{command}:   … and {len(recovery.problems) - _SHOWN_PROBLEMS} more", file=sys.stderr, flush=True)


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


def register_secrets(settings: GatewaySettings) -> None:
    """Mask the gateway's secrets (beyond their first 8 characters) in its log lines and /logs,
    as the APIs do with theirs: the API token, the Telegram API hash, a string session."""
    from ts_common.logs import register_secret

    for secret in (settings.publish.token, settings.telegram.api_hash, settings.telegram.string_session):
        register_secret(secret)


# -- run ------------------------------------------------------------------------------------


def telegram_preflight(settings: GatewaySettings) -> str | None:
    """Why `gateway run` cannot connect to Telegram (one line), or None when it can try."""
    telegram = settings.telegram
    missing = telegram.missing()
    if not telegram.has_session:
        missing.append(f"a session (TELEGRAM_SESSION, or the file {telegram.session_path})")
    if missing:
        return (f"cannot start: missing {', '.join(missing)}; set the variables in the environment or "
                f"services/gateway/.env, and run `gateway login` to create the session")
    from .session import SessionError, check_session

    try:
        check_session(telegram)
    except SessionError as exc:
        return str(exc)
    return None


def _make_source(settings: GatewaySettings) -> Callable[[], object]:
    path = settings.file_source_path
    if path is not None:
        from .source.file_source import FileSource

        return lambda: FileSource(path, settings.queue.data_dir)
    from .source.telethon_source import TelethonSource

    return lambda: TelethonSource(settings.telegram)


def cmd_run(settings: GatewaySettings) -> int:
    if settings.file_source_path is None:
        problem = telegram_preflight(settings)
        if problem is not None:
            return _fail(problem, 2)
    make_source = _make_source(settings)
    from .queue import DurableQueue, QueueLocked

    queue = DurableQueue(settings.queue.path)
    try:
        recovery = queue.open()
    except QueueLocked as exc:
        return _fail(f"{exc}; is another `gateway run`, `import` or `replay` still running?", 1)
    except OSError as exc:
        return _fail(f"cannot open the queue {settings.queue.path}: {exc.strerror or exc}", 1)
    import logging

    log = logging.getLogger("gateway")
    for problem in recovery.problems:
        log.warning("queue recovery: %s", problem)
    if recovery.quarantined:
        # The gateway keeps running (one bad line must not stop the capture); the exit status at
        # the end says it happened, and so do `gateway status` and the metric.
        log.error("queue recovery set aside %d damaged line(s) in %s; the gateway continues and will exit "
                  "with status %d when stopped", recovery.quarantined, queue.files.quarantine, EXIT_SET_ASIDE)
    log.info("queue %s: %d pending record(s) recovered, %d quarantined, %d renumbered", settings.queue.path,
             recovery.pending, recovery.quarantined, recovery.renumbered)
    cursors = open_cursors(settings)
    try:
        # Before the status file is rewritten: its cursors are a last known position.
        cursors.load()
    except CursorsUnreadable as exc:
        queue.close()
        return _fail(str(exc), exc.exit_code)
    except OSError as exc:  # keeping a damaged file aside, or writing the recovered one, failed
        queue.close()
        return _fail(f"cannot recover the damaged {cursors.path}: {exc.strerror or exc}", 1)
    from ts_common.telemetry import setup_tracing

    setup_tracing(SERVICE_NAME)
    try:
        return asyncio.run(_serve(settings, make_source, queue, cursors, set_aside=recovery.quarantined))
    finally:
        queue.close()  # no-op when the gateway already flushed and closed it


def open_cursors(settings: GatewaySettings):
    """The backfill cursors of `run`; the status file's copy is their last known position."""
    from .cursors import FILE_NAME, CursorStore
    from .statusfile import read_status, status_path

    data_dir = settings.queue.data_dir
    return CursorStore(data_dir / FILE_NAME, recovery_limit=settings.telegram.backfill_recovery_limit,
                       last_known=lambda: read_status(status_path(data_dir)))


async def _serve(settings: GatewaySettings, make_source: Callable[[], object], queue, cursors, *,
                 set_aside: int = 0) -> int:
    import logging

    from . import systemd
    from .drainer import Drainer
    from .http import health_body, served_paths, start_server
    from .publisher import Publisher, create_session
    from .service import Gateway
    from .statusfile import status_path, write_status

    log = logging.getLogger("gateway")
    loop = asyncio.get_running_loop()
    publish = settings.publish
    async with create_session(publish) as session:
        publisher = Publisher(publish, session)
        drainer = Drainer(queue, publisher, batch_size=publish.batch_size,
                          backoff_initial=publish.retry_delay_ms / 1000,
                          backoff_max=publish.drain_backoff_max_seconds)
        gateway = Gateway(make_source(), queue, publisher, drainer, cursors,
                          backfill_interval=settings.telegram.backfill_interval_seconds)

        def on_signal(signame: str) -> None:
            log.info("%s: finishing the publish in flight, flushing the queue, exiting", signame)
            systemd.notify("STOPPING=1")
            gateway.stop()

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, on_signal, sig.name)
        try:
            runner = await start_server(gateway, settings.host, settings.port)
        except OSError as exc:
            queue.close()
            return _fail(f"cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc} "
                         "(GATEWAY_PORT)", 1)
        log.info("gateway listening on http://%s:%d (%s), source %s", settings.host, settings.port,
                 " ".join(served_paths(runner)), settings.source)
        status_file = status_path(settings.queue.data_dir)

        def snapshot() -> dict:
            return {**health_body(gateway), "pid": os.getpid(), "command": "run", "updatedAt": time.time(),
                    "setAside": set_aside, "startedAt": gateway.state.started_at}

        async def keep_status() -> None:
            while True:
                try:
                    write_status(status_file, snapshot())
                except OSError as exc:
                    log.warning("cannot write %s: %s", status_file, exc)
                await asyncio.sleep(2.0)

        async def announce_ready() -> None:
            while not gateway.state.ready:
                await asyncio.sleep(0.02)
            systemd.notify("READY=1")
            log.info("ready")

        run = asyncio.create_task(gateway.run(shutdown_grace=publish.timeout_seconds + 1.0), name="gateway")
        helpers = [asyncio.create_task(keep_status(), name="status"),
                   asyncio.create_task(announce_ready(), name="ready")]
        interval = systemd.watchdog_interval()
        if interval:
            # The pings come from the event loop itself: a stuck loop stops them and systemd restarts us.
            helpers.append(asyncio.create_task(systemd.watchdog_loop(interval, alive=lambda: not run.done())))
        status = 1
        try:
            status = await run
            if status == 0 and set_aside:
                status = EXIT_SET_ASIDE
        finally:
            for task in helpers:
                task.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
            await runner.cleanup()
            try:
                write_status(status_file, snapshot() | {"stoppedAt": time.time(), "exitStatus": status})
            except OSError:
                pass
    log.info("gateway stopped (exit status %d, %d record(s) stay queued)", status, queue.depth)
    if status == EXIT_SET_ASIDE:
        log.error("exit status %d: %d damaged queue line(s) were set aside at start, in %s", status, set_aside,
                  queue.files.quarantine)
    if status == 2:
        _fail(gateway.state.last_error or "the source cannot continue", 2)  # one line for the operator
    return status


# -- import / replay ---------------------------------------------------------------------------


async def drain_now(settings: GatewaySettings, queue, description: str, *, progress: bool | None) -> tuple[bool, dict]:
    """Publish everything queued through /ingest/batch, with a progress bar; (emptied, counts)."""
    from tqdm import tqdm

    from .drainer import Drainer, stop_when_idle
    from .publisher import Publisher, create_session

    publish = settings.publish
    loop = asyncio.get_running_loop()
    async with create_session(publish) as session:
        publisher = Publisher(publish, session)
        # disable=None: no bar when stderr is not a terminal (logs of `uv run stack`, tests).
        with tqdm(total=queue.depth, desc=description, unit="msg", disable=None if progress is None else not progress,
                  file=sys.stderr) as bar:
            drainer = Drainer(queue, publisher, batch_size=publish.batch_size, backoff_initial=0.05,
                              backoff_max=0.05, on_progress=bar.update)
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
    counts = dict(publisher.counts)
    counts["lastError"] = publisher.last_error
    counts["lastPublishAt"] = publisher.last_publish_at
    return emptied and not queue.depth, counts


def _open_for_command(settings: GatewaySettings, command: str):
    from .queue import DurableQueue, QueueLocked

    queue = DurableQueue(settings.queue.path)
    try:
        recovery = queue.open()
    except QueueLocked:
        return None, _fail(
            f"the queue {settings.queue.path} is owned by a running gateway (or another {command}); "
            f"a running gateway delivers it itself (`gateway status` shows its progress). Stop it first "
            f"to {command} from this shell.", 1)
    except OSError as exc:
        return None, _fail(f"cannot open the queue {settings.queue.path}: {exc.strerror or exc}", 1)
    _report_recovery(command, queue, recovery)
    return queue, 0


def _finish(settings: GatewaySettings, queue, command: str, emptied: bool, counts: dict, dead_before: int) -> int:
    from ts_common.logs import mask

    from .statusfile import status_path, write_status

    if counts.get("lastError"):
        counts = {**counts, "lastError": mask(counts["lastError"])}  # printed and kept: cut as in the logs
    dead = queue.dead_letters - dead_before
    set_aside = queue.recovery.quarantined
    stored, duplicate = counts.get("stored", 0), counts.get("duplicate", 0)
    print(f"{command}: {stored} stored, {duplicate} already stored (duplicates), {dead} refused "
          f"(dead letters), {set_aside} set aside (quarantined), {queue.depth} still queued", flush=True)
    try:
        write_status(status_path(settings.queue.data_dir), {
            "command": command, "pid": os.getpid(), "updatedAt": time.time(), "queueDepth": queue.depth,
            "deadLetters": queue.dead_letters, "lastPublishAt": counts.get("lastPublishAt"),
            "lastError": counts.get("lastError"), "setAside": set_aside})
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
        return _fail(str(exc), 2)
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
        return _fail(outcome.problem, 2)
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
        return _fail(f"cannot read {path}: {exc.strerror or exc}", 2)
    if found.problems:
        for problem in found.problems[:_SHOWN_PROBLEMS]:
            print(f"requeue:   {problem}", file=sys.stderr, flush=True)
        if len(found.problems) > _SHOWN_PROBLEMS:
            print(f"requeue:   … and {len(found.problems) - _SHOWN_PROBLEMS} more", file=sys.stderr, flush=True)
        return _fail(f"{path}: {len(found.problems)} line(s) are not payloads (one contract payload a line); "
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


# -- status --------------------------------------------------------------------------------------


def status_report(settings: GatewaySettings) -> dict:
    """Everything `gateway status` shows, read without the queue lock (safe while a gateway runs)."""
    from .queue import QueueFiles, inspect_queue
    from .statusfile import read_status, status_path

    snapshot = inspect_queue(settings.queue.path)
    store = open_cursors(settings)
    try:
        cursors = {str(k): v for k, v in store.read().items()}
    except (ValueError, CursorsUnreadable) as exc:  # status shows the rest even if this file is damaged
        cursors = {"error": f"unreadable: {exc}"}
    state = read_status(status_path(settings.queue.data_dir)) or {}
    files = QueueFiles(settings.queue.path)
    return {
        "queuePath": str(settings.queue.path),
        "running": snapshot.locked,
        "pid": state.get("pid") if snapshot.locked else None,
        "command": state.get("command"),
        "queueDepth": snapshot.depth,
        "oldestQueuedAt": snapshot.oldest_queued_at,
        "deadLetters": snapshot.dead_letters,
        "deadLetterFile": str(files.dead_letter),
        "lastDeadLetter": snapshot.last_dead_letter,
        "quarantinedLines": snapshot.quarantined,
        "quarantineFile": str(files.quarantine),
        "unreadableLines": snapshot.unreadable_lines,
        "sharedSeqLines": snapshot.shared_seq_lines,
        # What the last command (run, import, replay) set aside when it opened the queue.
        "lastSetAside": state.get("setAside"),
        "cursors": cursors,
        "cursorFile": str(store.path),
        # Damaged cursor files kept aside by `run` (while any is kept, a channel without a cursor is
        # backfilled BACKFILL_RECOVERY_LIMIT deep).
        "damagedCursorFiles": [str(path) for path in store.damaged_copies()],
        "lastPublishAt": state.get("lastPublishAt"),
        "lastError": state.get("lastError"),
        "statusUpdatedAt": state.get("updatedAt"),
        "source": state.get("source"),
    }


def render_status(report: dict) -> str:
    if report["running"]:
        running = f"yes ({report['command'] or 'gateway'}, pid {report['pid'] or '?'})"
    else:
        running = "no"
    depth = str(report["queueDepth"])
    if report["oldestQueuedAt"] is not None:
        depth += f" (oldest queued {_ts(report['oldestQueuedAt'])})"
    dead = str(report["deadLetters"])
    if report["deadLetters"]:
        dead += f" in {report['deadLetterFile']}"
        if report["lastDeadLetter"]:
            dead += f"; newest: {report['lastDeadLetter']}"
    quarantined = f"{report['quarantinedLines']} line(s)"
    if report["quarantinedLines"]:
        quarantined += f" in {report['quarantineFile']}"
        if report["lastSetAside"]:
            quarantined += f" ({report['lastSetAside']} set aside by the last `{report['command'] or 'gateway'}`)"
    if "error" in report["cursors"]:
        cursors = (f"{report['cursors']['error']} ({report['cursorFile']}; the next `gateway run` keeps it aside "
                   "and backfills from the last known positions)")
    else:
        cursors = ", ".join(f"{k} → {v}" for k, v in sorted(report["cursors"].items())) or "none yet"
    lines = [
        f"queue          {report['queuePath']}",
        f"running        {running}",
        f"queue depth    {depth}",
        f"dead letters   {dead}",
        f"quarantined    {quarantined}",
        f"cursors        {cursors}",
        f"last publish   {_ts(report['lastPublishAt'])}",
        f"last error     {report['lastError'] or 'none'}",
    ]
    if report["unreadableLines"]:
        lines.append(f"unreadable     {report['unreadableLines']} line(s) in the queue file "
                     "(quarantined at the next start)")
    for damaged in report["damagedCursorFiles"]:
        lines.append(f"damaged cursor file kept: {damaged} (channels without a cursor are backfilled "
                     "BACKFILL_RECOVERY_LIMIT deep while it is kept; delete it once looked at)")
    if report["sharedSeqLines"]:
        lines.append(f"shared seq     {report['sharedSeqLines']} line(s) reuse another line's seq "
                     "(renumbered at the next start; all delivered)")
    return "\n".join(lines)


def cmd_status(settings: GatewaySettings, as_json: bool) -> int:
    report = status_report(settings)
    if as_json:
        import msgspec

        print(msgspec.json.encode(report).decode())
    else:
        print(render_status(report))
    return 0


# -- session commands (module written separately; imported only when used) -----------------------


def cmd_login(settings: GatewaySettings) -> int:
    from .session import login_command

    return login_command(settings)


def cmd_backup_session(settings: GatewaySettings, keep: int | None) -> int:
    from .session import backup_session_command

    return backup_session_command(settings, keep)


# -- entry point ---------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Telegram gateway: channel messages → durable queue → ingest API (port 4006)")
    commands = parser.add_subparsers(dest="command", metavar="command")
    commands.add_parser("run", help="listen and publish (the default): Telegram, or GATEWAY_SOURCE=file:…")
    commands.add_parser("login", help="interactive Telegram login; writes the session file (TELEGRAM_SESSION_PATH)")
    backup = commands.add_parser("backup-session", help="consistent timestamped copy of the session file, old ones pruned")
    backup.add_argument("--keep", type=int, default=None, help="backups to keep (SESSION_BACKUPS_KEPT, default 7)")
    importer = commands.add_parser("import", help="backfill from a Telegram Desktop export (result.json)")
    importer.add_argument("export", type=Path, help="path to the export's result.json")
    replay = commands.add_parser("replay", help="deliver the queue now through /ingest/batch")
    requeue = commands.add_parser(
        "requeue", help="queue and deliver reviewed payloads (JSONL, one payload a line): recovered quarantined "
                        "lines, dead letters after a fix")
    requeue.add_argument("payloads", type=Path, help="JSONL file of contract payloads")
    status = commands.add_parser("status", help="queue depth, dead letters, cursors, last error (read-only)")
    status.add_argument("--json", action="store_true", help="print one JSON object")
    for sub in (importer, replay, requeue):
        sub.add_argument("--progress", dest="progress", action="store_true", default=None,
                         help="always show the progress bar (default: only on a terminal)")
        sub.add_argument("--no-progress", dest="progress", action="store_false")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    command = args.command or "run"
    try:
        load_dotenv_file()
        settings = GatewaySettings.from_env()
    except ConfigError as exc:
        return _fail(str(exc), 2)
    _setup_logging(settings, interactive=command != "run")
    register_secrets(settings)
    from .publisher import instrument_retries

    instrument_retries()
    if command == "run":
        return cmd_run(settings)
    if command == "login":
        return cmd_login(settings)
    if command == "backup-session":
        return cmd_backup_session(settings, args.keep)
    if command == "import":
        return cmd_import(settings, args.export, args.progress)
    if command == "replay":
        return cmd_replay(settings, args.progress)
    if command == "requeue":
        return cmd_requeue(settings, args.payloads, args.progress)
    return cmd_status(settings, args.json)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
