"""Dependencies the core plugin registers for every handler of an app.

`db_connection`: a connection from the app's pool (`app.state.db`, a ts_common.database
PooledDatabase put there by the lifespan), released when the handler returns or raises.

    @get("/api/items")
    async def list_items(db_connection: DbConnection) -> ItemList: ...

A pool that cannot give one (database down, restarting, out of connections) raises what the
core plugin's exception handler already answers as 503 "Database connection failed" with
Retry-After (CoreConfig.unavailable_kind decides, and counts it): nothing is mapped twice.

The request body is read first: a client uploading slowly (the body deadline is 30 s) must not
hold one of the pool's few connections meanwhile, and a body refused by the core's checks (not
UTF-8, too large) is answered 400/413 without touching the database.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
from litestar import Request
from litestar.di import NamedDependency, Provide

from .checks import WRITE_METHODS

DB_CONNECTION = "db_connection"
# What a handler annotates its `db_connection` parameter with (asyncpg hands out a proxy of one).
Connection = asyncpg.Connection
DbConnection = NamedDependency[Connection]


async def provide_db_connection(request: Request) -> AsyncIterator[Connection]:
    if request.method in WRITE_METHODS:
        await request.body()  # cached on the request: the handler reads it again for free
    async with request.app.state.db.acquire() as connection:
        yield connection


def core_dependencies() -> dict[str, Provide]:
    """What the core plugin adds to `app_config.dependencies` (an app's own definition wins)."""
    return {DB_CONNECTION: Provide(provide_db_connection)}


__all__ = ["DB_CONNECTION", "Connection", "DbConnection", "core_dependencies", "provide_db_connection"]
