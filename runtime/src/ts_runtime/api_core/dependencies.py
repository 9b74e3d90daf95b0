"""Dependencies the core plugin registers for every handler of an app.

`db_connection`: a connection from the app's pool (`app.state.db`, a ts_runtime.database
PooledDatabase put there by the lifespan), released when the handler returns or raises.

    @get("/api/items")
    async def list_items(db_connection: DbConnection) -> ItemList: ...

A pool that cannot give one (database down, restarting, out of connections) raises what the
core plugin's exception handler already answers as 503 "Database connection failed" with
Retry-After (CoreConfig.unavailable_kind decides, and counts it): nothing is mapped twice.

`request_input` is resolved before it: what the handler needs from the request before it may
take a connection. By default the body of a write, read (and checked by the core: UTF-8, size):
a client uploading slowly (the body deadline is 30 s) holds none of the pool's few connections
meanwhile. A route overrides it with its own provider that validates the body or the path and
returns what the handler uses (taken as `request_input: RequestInput[...]`), so a client's
mistake is its 400 even while the database is down, and is answered without a connection.

    @post("/api/items", dependencies={REQUEST_INPUT: Provide(item_values)})
    async def create_item(request_input: RequestInput[dict], db_connection: DbConnection): ...
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, TypeVar

import asyncpg
from litestar import Request
from litestar.di import NamedDependency, Provide
from litestar.params import SkipValidation

from .checks import WRITE_METHODS

DB_CONNECTION = "db_connection"
REQUEST_INPUT = "request_input"
# What a handler annotates its `db_connection` parameter with (asyncpg hands out a proxy of one).
Connection = asyncpg.Connection
DbConnection = NamedDependency[Connection]
T = TypeVar("T")
# What a route's own `request_input` provider returned, already checked (not converted again:
# Litestar's signature model cannot take every type, e.g. `UUID | str`).
RequestInput = NamedDependency[SkipValidation[T]]


async def provide_request_input(request: Request) -> bytes | None:
    """The default `request_input`: a write's body (cached on the request: reading it again is free)."""
    return await request.body() if request.method in WRITE_METHODS else None


async def provide_db_connection(request: Request, request_input: NamedDependency[Any]) -> AsyncIterator[Connection]:
    # `request_input` only orders the two: it is resolved (or refused) before a connection is taken.
    async with request.app.state.db.acquire() as connection:
        yield connection


def core_dependencies() -> dict[str, Provide]:
    """What the core plugin adds to `app_config.dependencies` (an app's own definition wins)."""
    return {REQUEST_INPUT: Provide(provide_request_input), DB_CONNECTION: Provide(provide_db_connection)}


__all__ = ["DB_CONNECTION", "REQUEST_INPUT", "Connection", "DbConnection", "RequestInput", "core_dependencies",
           "provide_db_connection", "provide_request_input"]
