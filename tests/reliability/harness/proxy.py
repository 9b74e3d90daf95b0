"""A loopback TCP proxy between the gateway and the ingest API that can be told to stall.

While stalled, bytes already read are held (both directions) until `resume()`: requests reach
the API late and answers reach the gateway late, beyond its timeout, exactly like a slow API or
a congested network. The gateway gives up, retries, and later the held request may still land
(a late duplicate the API must absorb). `set_target()` points it at a restarted API.
"""

from __future__ import annotations

import asyncio
import threading
from contextlib import suppress


class StallableProxy:
    def __init__(self, target_port: int, host: str = "127.0.0.1") -> None:
        self.host = host
        self.target_port = target_port
        self.port = 0
        self.connections = 0
        self._loop = asyncio.new_event_loop()
        self._flowing: asyncio.Event | None = None
        self._server: asyncio.base_events.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, name="stallable-proxy", daemon=True)
        self._tasks: set[asyncio.Task] = set()

    # -- control (called from any thread) ------------------------------------------------

    def start(self) -> "StallableProxy":
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def stall(self) -> None:
        self._call(lambda: self._flowing.clear())

    def resume(self) -> None:
        self._call(lambda: self._flowing.set())

    @property
    def stalled(self) -> bool:
        return self._flowing is not None and not self._flowing.is_set()

    def set_target(self, port: int) -> None:
        self.target_port = port

    def close(self) -> None:
        if not self._thread.is_alive():
            return
        asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def __enter__(self) -> "StallableProxy":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- event loop side -------------------------------------------------------------------

    def _call(self, func) -> None:
        async def run() -> None:
            func()

        asyncio.run_coroutine_threadsafe(run(), self._loop).result(10)

    async def _start(self) -> None:
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._server = await asyncio.start_server(self._handle, self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _close(self) -> None:
        assert self._server is not None
        self._server.close()
        self._flowing.set()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with suppress(BaseException):
                await task

    async def _handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self._tasks.add(task)
        self.connections += 1
        try:
            try:
                upstream_reader, upstream_writer = await asyncio.open_connection(self.host, self.target_port)
            except OSError:
                # API down: the client sees its connection closed without an answer.
                return
            pipes = {
                asyncio.ensure_future(self._pipe(client_reader, upstream_writer)),
                asyncio.ensure_future(self._pipe(upstream_reader, client_writer)),
            }
            try:
                # When one side is done (closed, reset), give the other a moment to flush, then
                # drop both: a half-dead connection must not keep the client waiting forever.
                _, pending = await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
                if pending:
                    await asyncio.wait(pending, timeout=1.0)
            finally:
                for pipe in pipes:
                    pipe.cancel()
                upstream_writer.close()
        finally:
            client_writer.close()
            self._tasks.discard(task)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                await self._flowing.wait()
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            # Half-close so the other side sees the end of this direction.
            with suppress(OSError, RuntimeError):
                if writer.can_write_eof():
                    writer.write_eof()
