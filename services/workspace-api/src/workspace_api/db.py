"""The asyncpg pool, and which database errors mean "unavailable, retry later" (503).

The pool is created with `min_size=0`, so creating it never connects: the app starts while the
database is down, `/ready` and `/api/health` answer 503, and every request that needs the
database answers 503 until it is back.
"""

from __future__ import annotations

import asyncio
import logging
import time

import asyncpg

from ts_common.settings import DatabaseSettings, describe_url

from . import metrics

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
)


def is_unavailable(exc: BaseException) -> bool:
    return isinstance(exc, (DatabaseUnavailable, *_UNAVAILABLE))


# Collations whose lower() folds all of Unicode (Ã → ã), best first: PostgreSQL 18's full
# case mapping, 17's builtin C.UTF-8, then ICU. A database created with the C locale (the
# embedded server's default) otherwise lower-cases ASCII only, and a search for "gestão" would
# miss "GESTÃO".
_SEARCH_COLLATIONS = ("pg_unicode_fast", "pg_c_utf8", "und-x-icu")
FIND_COLLATION = """
SELECT collname FROM pg_collation
WHERE collname = ANY($1::text[]) AND collencoding IN (-1, pg_char_to_encoding('UTF8'))
  AND (SELECT pg_encoding_to_char(encoding) FROM pg_database WHERE datname = current_database()) = 'UTF8'
ORDER BY array_position($1::text[], collname::text)
LIMIT 1
"""


class Database:
    def __init__(self, settings: DatabaseSettings) -> None:
        self.settings = settings
        self.pool: asyncpg.Pool | None = None
        self._search_collation: str | None = None

    async def search_collation(self, conn: asyncpg.Connection) -> str:
        """The collation for case-insensitive search ("" = the database default), found once."""
        if self._search_collation is None:
            self._search_collation = await conn.fetchval(FIND_COLLATION, list(_SEARCH_COLLATIONS)) or ""
        return self._search_collation

    async def open(self) -> None:
        self.pool = asyncpg.create_pool(
            self.settings.url,
            min_size=0,
            max_size=self.settings.pool_max_size,
            timeout=self.settings.connect_timeout,
            command_timeout=30,
            max_inactive_connection_lifetime=300,
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

    async def ping(self) -> float:
        """Round-trip time of `SELECT 1` in milliseconds; raises DatabaseUnavailable.

        Also keeps `workspace_db_connection_status` current.
        """
        assert self.pool is not None
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.settings.connect_timeout):
                await self.pool.fetchval("SELECT 1")
        except Exception as exc:
            if not is_unavailable(exc):
                raise
            metrics.DB_CONNECTION_STATUS.set(0)
            raise DatabaseUnavailable(f"{type(exc).__name__}: {exc}".rstrip(": ")) from exc
        metrics.DB_CONNECTION_STATUS.set(1)
        return (time.perf_counter() - started) * 1000
