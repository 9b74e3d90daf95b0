"""An asyncpg pool that starts while the database is down, and which errors mean "unavailable" (503).

The pool is created with `min_size=0`, so creating it never connects: a service starts while the
database is down, its readiness check answers 503, and every request that needs the database
answers 503 until it is back (asyncpg drops broken connections and opens new ones on the next
acquire). Services subclass `PooledDatabase` for their extras (connection class, metrics).
"""

from __future__ import annotations

import asyncio
import logging
import time

import asyncpg

from .settings import DatabaseSettings, describe_url

log = logging.getLogger(__name__)


class DatabaseUnavailable(Exception):
    """The database cannot be reached or is restarting: the client should retry (503)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# Errors that say nothing about the request, only that the database is (for now) out of reach.
UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncio.TimeoutError,
    TimeoutError,
    asyncpg.InterfaceError,  # connection closed underneath, pool closing
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,  # server starting up or shutting down
    asyncpg.exceptions.OperatorInterventionError,  # admin shutdown, crash recovery
    asyncpg.exceptions.InsufficientResourcesError,  # too many connections, disk full
)


def unavailable_kind(
    exc: BaseException, errors: tuple[type[BaseException], ...] = UNAVAILABLE_ERRORS
) -> str | None:
    """A short error type for metrics when `exc` is one of `errors` (or DatabaseUnavailable), else None."""
    if isinstance(exc, DatabaseUnavailable):
        return exc.reason
    if isinstance(exc, errors):
        return type(exc).__name__
    return None


class PooledDatabase:
    """The pool, opened without connecting; `ping` turns "out of reach" into DatabaseUnavailable."""

    # Which errors `ping` reports as DatabaseUnavailable; subclasses may widen it.
    unavailable_errors: tuple[type[BaseException], ...] = UNAVAILABLE_ERRORS
    connection_class: type[asyncpg.Connection] = asyncpg.Connection

    def __init__(self, settings: DatabaseSettings) -> None:
        self.settings = settings
        self.pool: asyncpg.Pool | None = None

    async def open(self) -> None:
        self.pool = asyncpg.create_pool(
            self.settings.url,
            min_size=0,
            max_size=self.settings.pool_max_size,
            timeout=self.settings.connect_timeout,
            command_timeout=30,
            # Connections are recycled after a database restart anyway; keep idle ones a while.
            max_inactive_connection_lifetime=300,
            connection_class=self.connection_class,
        )
        await self.pool  # with min_size=0 this opens no connection
        try:
            await self.ping()
            log.info("database reachable", extra={"database": describe_url(self.settings.url)})
        except DatabaseUnavailable as exc:
            log.warning(
                "database unreachable at startup; answering 503 until it is back",
                extra={"database": describe_url(self.settings.url), "reason": exc.reason},
            )

    async def close(self) -> None:
        if self.pool is not None:
            await self.pool.close()

    def acquire(self):  # -> asyncpg pool acquire context
        assert self.pool is not None
        return self.pool.acquire()

    def ping_result(self, reachable: bool) -> None:
        """Called after every ping: a hook for a connection-status gauge."""

    async def ping(self) -> float:
        """Round-trip time of `SELECT 1` in milliseconds; raises DatabaseUnavailable."""
        assert self.pool is not None
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.settings.connect_timeout):
                await self.pool.fetchval("SELECT 1")
        except Exception as exc:
            kind = unavailable_kind(exc, self.unavailable_errors)
            if kind is None:
                raise
            self.ping_result(False)
            raise DatabaseUnavailable(f"{kind}: {exc}".rstrip(": ")) from exc
        self.ping_result(True)
        return (time.perf_counter() - started) * 1000
