"""The workspace API's pool: the shared `PooledDatabase` (ts_runtime.database), plus search collation.

The app starts while the database is down; `/ready` and `/api/health` answer 503, and every
request that needs the database answers 503 until it is back.
"""

from __future__ import annotations

import asyncpg

from ts_runtime.database import DatabaseUnavailable, PooledDatabase, unavailable_kind
from ts_runtime.settings import DatabaseSettings

from . import metrics

__all__ = ["Database", "DatabaseUnavailable", "is_unavailable"]


def is_unavailable(exc: BaseException) -> bool:
    """True when `exc` means "database unavailable" (no deadlock/serialization retries here)."""
    return unavailable_kind(exc) is not None


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


class Database(PooledDatabase):
    def __init__(self, settings: DatabaseSettings) -> None:
        super().__init__(settings)
        self._search_collation: str | None = None

    async def search_collation(self, conn: asyncpg.Connection) -> str:
        """The collation for case-insensitive search ("" = the database default), found once."""
        if self._search_collation is None:
            self._search_collation = await conn.fetchval(FIND_COLLATION, list(_SEARCH_COLLATIONS)) or ""
        return self._search_collation

    def ping_result(self, reachable: bool) -> None:
        # Keeps `workspace_db_connection_status` current.
        metrics.DB_CONNECTION_STATUS.set(1 if reachable else 0)
