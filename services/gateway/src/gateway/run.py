"""`gateway run`: the service. Preflight, queue recovery, cursors, then the gateway and its HTTP
server until SIGTERM (systemd's notify/watchdog, the status file kept fresh every 2 s)."""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Callable

import msgspec

from . import compose
from .cursors import CursorsUnreadable, CursorStore
from .exits import EXIT_SET_ASIDE, fail
from .queue import DurableQueue
from .settings import GatewaySettings
from .source import Source

log = logging.getLogger("gateway")
STATUS_EVERY_SECONDS = 2.0


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


def cmd_run(settings: GatewaySettings) -> int:
    if settings.file_source_path is None:
        problem = telegram_preflight(settings)
        if problem is not None:
            return fail(problem, 2)
    make_source = compose.source_factory(settings)
    from .queue import QueueLocked

    queue = compose.make_queue(settings)
    try:
        recovery = queue.open()
    except QueueLocked as exc:
        return fail(f"{exc}; is another `gateway run`, `import` or `replay` still running?", 1)
    except OSError as exc:
        return fail(f"cannot open the queue {settings.queue.path}: {exc.strerror or exc}", 1)
    for problem in recovery.problems:
        log.warning("queue recovery: %s", problem)
    if recovery.quarantined:
        # The gateway keeps running (one bad line must not stop the capture); the exit status at
        # the end says it happened, and so do `gateway status` and the metric.
        log.error("queue recovery set aside %d damaged line(s) in %s; the gateway continues and will exit "
                  "with status %d when stopped", recovery.quarantined, queue.files.quarantine, EXIT_SET_ASIDE)
    log.info("queue %s: %d pending record(s) recovered, %d quarantined, %d renumbered", settings.queue.path,
             recovery.pending, recovery.quarantined, recovery.renumbered)
    cursors = compose.make_cursors(settings)
    try:
        # Before the status file is rewritten: its cursors are a last known position.
        cursors.load()
    except CursorsUnreadable as exc:
        queue.close()
        return fail(str(exc), exc.exit_code)
    except OSError as exc:  # keeping a damaged file aside, or writing the recovered one, failed
        queue.close()
        return fail(f"cannot recover the damaged {cursors.path}: {exc.strerror or exc}", 1)
    compose.start_tracing()
    try:
        return asyncio.run(_serve(settings, make_source, queue, cursors, set_aside=recovery.quarantined))
    finally:
        queue.close()  # no-op when the gateway already flushed and closed it


async def _serve(settings: GatewaySettings, make_source: Callable[[], Source], queue: DurableQueue,
                 cursors: CursorStore, *, set_aside: int = 0) -> int:
    from . import systemd
    from .http import served_paths
    from .status import running_status, status_path, write_status

    loop = asyncio.get_running_loop()
    async with compose.delivery(settings, queue, one_shot=False) as drainer:
        gateway = compose.make_gateway(settings, make_source(), queue, drainer, cursors)
        gateway.state.set_aside = set_aside

        def on_signal(signame: str) -> None:
            log.info("%s: finishing the publish in flight, flushing the queue, exiting", signame)
            systemd.notify("STOPPING=1")
            gateway.stop()

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, on_signal, sig.name)
        try:
            runner = await compose.start_http(settings, gateway)
        except OSError as exc:
            queue.close()
            return fail(f"cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc} "
                        "(GATEWAY_PORT)", 1)
        log.info("gateway listening on http://%s:%d (%s), source %s", settings.host, settings.port,
                 " ".join(served_paths(runner)), settings.source)
        status_file = status_path(settings.queue.data_dir)

        async def keep_status() -> None:
            while True:
                try:
                    write_status(status_file, running_status(gateway))
                except OSError as exc:
                    log.warning("cannot write %s: %s", status_file, exc)
                await asyncio.sleep(STATUS_EVERY_SECONDS)

        async def announce_ready() -> None:
            while not gateway.state.ready:
                await asyncio.sleep(0.02)
            systemd.notify("READY=1")
            log.info("ready")

        run = asyncio.create_task(gateway.run(shutdown_grace=settings.publish.timeout_seconds + 1.0),
                                  name="gateway")
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
                final = msgspec.structs.replace(running_status(gateway),
                                                stopped_at=time.time(), exit_status=status)
                write_status(status_file, final)
            except OSError:
                pass
    log.info("gateway stopped (exit status %d, %d record(s) stay queued)", status, queue.depth)
    if status == EXIT_SET_ASIDE:
        log.error("exit status %d: %d damaged queue line(s) were set aside at start, in %s", status, set_aside,
                  queue.files.quarantine)
    if status == 2:
        fail(gateway.state.last_error or "the source cannot continue", 2)  # one line for the operator
    return status
