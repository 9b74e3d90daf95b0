"""The asyncpg pool, and which database errors mean "unavailable, retry later" (503).

The pool is created with `min_size=0`, so creating it never connects: the app starts while the
database is down, `/ready` answers 503 and every request that needs the database answers 503
until it is back (asyncpg drops broken connections and opens new ones on the next acquire).
"""

from __future__ import annotations

import asyncio
import logging
import time

import asyncpg

from ts_common.settings import DatabaseSettings, describe_url

log = logging.getLogger(__name__)


class DatabaseUnavailable(Exception):
    """The database cannot be reached or is restarting: the client should retry (503)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# Errors that say nothing about the request, only that the database is (for now) out of reach.
_UNAVAILABLE = (
    OSError,
    asyncio.TimeoutError,
    TimeoutError,
    asyncpg.InterfaceError,  # connection closed underneath, pool closing
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,  # server starting up or shutting down
    asyncpg.exceptions.OperatorInterventionError,  # admin shutdown, crash recovery
    asyncpg.exceptions.InsufficientResourcesError,  # too many connections, disk full
    asyncpg.exceptions.DeadlockDetectedError,  # safe to retry: every write is idempotent
    asyncpg.exceptions.SerializationError,
)


def unavailable_kind(exc: BaseException) -> str | None:
    """A short error type for metrics when `exc` means "database unavailable", else None."""
    if isinstance(exc, DatabaseUnavailable):
        return exc.reason
    if isinstance(exc, _UNAVAILABLE):
        return type(exc).__name__
    return None


class _Connection(asyncpg.Connection):
    """A pooled connection released without asyncpg's reset query.

    The default reset (advisory unlock, CLOSE ALL, UNLISTEN, RESET ALL) is one more round trip on
    every release; this service never leaves session state behind (no LISTEN, no session
    advisory locks, no SET), and an open transaction is still rolled back by the pool.
    """

    def get_reset_query(self) -> str:
        return ""


class Database:
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
            connection_class=_Connection,
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

    async def ping(self) -> float:
        """Round-trip time of `SELECT 1` in milliseconds; raises DatabaseUnavailable."""
        assert self.pool is not None
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.settings.connect_timeout):
                await self.pool.fetchval("SELECT 1")
        except Exception as exc:
            kind = unavailable_kind(exc)
            if kind is None:
                raise
            raise DatabaseUnavailable(f"{kind}: {exc}".rstrip(": ")) from exc
        return (time.perf_counter() - started) * 1000
