"""ts_runtime.api_core.dependencies: `db_connection` comes from the app's pool, goes back to it after
the handler (answered or raised), a database out of reach is the core's 503, and a body the core
refuses never takes a connection. On a real PostgreSQL, in-process over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar, Request, get, post
from litestar.di import Provide
from litestar.testing import AsyncTestClient

from ts_runtime.api_core import ApiError, CoreConfig, CorePlugin
from ts_runtime.api_core.dependencies import (DB_CONNECTION, REQUEST_INPUT, DbConnection, RequestInput,
                                             provide_db_connection)
from ts_ops.embedded_pg import free_port
from ts_runtime.database import PooledDatabase
from ts_runtime.settings import DatabaseSettings


@get("/pid")
async def backend_pid(db_connection: DbConnection) -> dict:
    return {"pid": await db_connection.fetchval("SELECT pg_backend_pid()")}


@post("/fail")
async def fail(db_connection: DbConnection) -> dict:
    await db_connection.execute("SELECT 1")
    raise ApiError(409, "refused after using the connection")


@post("/echo", request_max_body_size=1024)
async def echo(request: Request, db_connection: DbConnection) -> dict:
    # The body read inside the handler, as the APIs' handlers do (they decode it themselves).
    body = await request.body()
    return {"size": len(body), "one": await db_connection.fetchval("SELECT 1")}


class CountingDatabase(PooledDatabase):
    """The real pool, counting the connections handed out."""

    acquired = 0

    def acquire(self):
        self.acquired += 1
        return super().acquire()


async def positive_number(request: Request) -> int:
    """A route's own request_input: its body checked before any connection is taken."""
    text = (await request.body()).decode()
    if not text.isdigit():
        raise ApiError(400, "Validation failed", ["body must be a positive number"])
    return int(text)


@post("/double", dependencies={REQUEST_INPUT: Provide(positive_number)})
async def double(request_input: RequestInput[int], db_connection: DbConnection) -> dict:
    return {"double": await db_connection.fetchval("SELECT $1::int * 2", request_input)}


def app_for(url: str) -> tuple[Litestar, CountingDatabase]:
    db = CountingDatabase(DatabaseSettings(url=url, pool_max_size=2, connect_timeout=1.0))

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        await db.open()
        app.state.db = db
        try:
            yield
        finally:
            await db.close()

    app = Litestar(route_handlers=[backend_pid, fail, echo, double], lifespan=[lifespan],
                   plugins=[CorePlugin(CoreConfig(service="test", version="0"))], logging_config=None)
    return app, db


async def test_a_connection_per_request_given_back_after_it(database_url: str) -> None:
    app, db = app_for(database_url)
    async with AsyncTestClient(app=app) as client:
        pids = {(await client.get("/pid")).json()["pid"] for _ in range(5)}
        # Sequential requests reuse the one pooled connection: each was released.
        assert len(pids) == 1 and db.acquired == 5
        assert db.pool.get_idle_size() == db.pool.get_size() == 1

        refused = await client.post("/fail", json={})
        assert refused.status_code == 409 and refused.json()["error"] == "refused after using the connection"
        assert db.pool.get_idle_size() == db.pool.get_size()  # released when the handler raised

        echoed = await client.post("/echo", json={"a": "é"})
        assert echoed.json() == {"size": len('{"a":"é"}'.encode()), "one": 1}
        doubled = await client.post("/double", content=b"21", headers={"Content-Type": "application/json"})
        assert doubled.json() == {"double": 42} and db.acquired == 8


async def test_a_refused_body_never_takes_a_connection(database_url: str) -> None:
    app, db = app_for(database_url)
    async with AsyncTestClient(app=app) as client:
        bad = await client.post("/echo", content=b'{"a": "\xff"}', headers={"Content-Type": "application/json"})
        assert bad.status_code == 400
        large = await client.post("/echo", json={"a": "x" * 2000})
        assert large.status_code == 413
        refused = await client.post("/double", content=b"-1", headers={"Content-Type": "application/json"})
        assert refused.status_code == 400 and refused.json()["details"] == ["body must be a positive number"]
        assert db.acquired == 0


async def test_a_database_out_of_reach_is_the_core_503() -> None:
    app, db = app_for(f"postgresql://nobody@127.0.0.1:{free_port()}/none")
    async with AsyncTestClient(app=app) as client:
        down = await client.get("/pid")
        assert down.status_code == 503
        assert down.json()["error"] == "Database connection failed" and down.headers["Retry-After"] == "5"
        # A body the core refuses is still the client's mistake, not an outage.
        bad = await client.post("/echo", content=b'{"a": "\xff"}', headers={"Content-Type": "application/json"})
        assert bad.status_code == 400 and db.acquired == 1
        # A route's own input check too: the client's mistake, answered while the database is down.
        refused = await client.post("/double", content=b"x", headers={"Content-Type": "application/json"})
        assert refused.status_code == 400 and db.acquired == 1


def test_an_apps_own_dependency_wins() -> None:
    async def mine() -> str:
        return "mine"

    app = Litestar(route_handlers=[], dependencies={DB_CONNECTION: Provide(mine)},
                   plugins=[CorePlugin(CoreConfig(service="test", version="0"))], logging_config=None)
    assert app.dependencies[DB_CONNECTION].dependency is mine
    core = Litestar(route_handlers=[], plugins=[CorePlugin(CoreConfig(service="test", version="0"))],
                    logging_config=None)
    assert core.dependencies[DB_CONNECTION].dependency is provide_db_connection
