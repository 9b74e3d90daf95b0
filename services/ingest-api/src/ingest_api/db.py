"""The ingest API's pool: the shared `PooledDatabase` (ts_runtime.database), plus which errors it retries.

Unlike the workspace API, a deadlock or serialization failure also counts as "unavailable, retry
later" (503) here: every ingest write is idempotent, so the client can safely send it again.
"""

from __future__ import annotations

import asyncpg

from ts_runtime.database import UNAVAILABLE_ERRORS, DatabaseUnavailable, PooledDatabase
from ts_runtime.database import unavailable_kind as _unavailable_kind

__all__ = ["Database", "DatabaseUnavailable", "RETRYABLE_ERRORS", "unavailable_kind"]

RETRYABLE_ERRORS = (
    *UNAVAILABLE_ERRORS,
    asyncpg.exceptions.DeadlockDetectedError,  # safe to retry: every write is idempotent
    asyncpg.exceptions.SerializationError,
)


def unavailable_kind(exc: BaseException) -> str | None:
    """A short error type for metrics when `exc` means "database unavailable, retry", else None."""
    return _unavailable_kind(exc, RETRYABLE_ERRORS)


class _Connection(asyncpg.Connection):
    """A pooled connection released without asyncpg's reset query.

    The default reset (advisory unlock, CLOSE ALL, UNLISTEN, RESET ALL) is one more round trip on
    every release; this service never leaves session state behind (no LISTEN, no session
    advisory locks, no SET), and an open transaction is still rolled back by the pool.
    """

    def get_reset_query(self) -> str:
        return ""


class Database(PooledDatabase):
    unavailable_errors = RETRYABLE_ERRORS
    connection_class = _Connection
