"""The ingest API in tests: in-process (Litestar's TestClient) for handlers and services, and the
granian process (`start_server`) for the smoke tests that need the deployed way.

`settings_for` builds the app's settings explicitly for a test database (the environment of the
shell running pytest plays no part); `in_process` runs the app, lifespan included, in the
TestClient's portal thread, so sync and async tests alike call it with plain `client.post(...)`.
`Api` is what the ingest tests' `api` fixture hands out; it has the `client` and `database_url`
of a granian `Server` (tests/support/live.py), so one helper (`Target`) serves both.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from litestar.testing import TestClient

from ingest_api.app import create_app
from ingest_api.settings import AuthSettings, Settings, WriterSettings
from tests.support.live import INGEST_TOKEN as TOKEN
from tests.support.live import Server
from tests.support.live import start_ingest_api as start_server
from ts_runtime.settings import DatabaseSettings, HttpSettings, LogSettings

__all__ = ["TOKEN", "Api", "Server", "auth", "Target", "in_process", "settings_for", "start_server"]


def auth(token: str = TOKEN) -> dict[str, str]:
    return {"X-Gateway-Token": token}


def settings_for(database_url: str, *, http: HttpSettings | None = None, **overrides: object) -> Settings:
    """What `Settings.from_env()` would read for a server on `database_url` with the tests' token."""
    return Settings(
        database=DatabaseSettings(url=database_url, pool_max_size=4, connect_timeout=2.0),
        auth=AuthSettings(gateway_token=TOKEN),
        http=http or HttpSettings(),
        log=LogSettings(level="WARNING"),
        writer=WriterSettings(),
        trace_sql=False,
        **overrides,  # type: ignore[arg-type]
    )


@dataclass(frozen=True)
class Api:
    """The app running in-process: `client` speaks HTTP to it without a socket."""

    client: TestClient
    database_url: str


@contextmanager
def in_process(settings: Settings, *, fast_path: bool = True) -> Iterator[Api]:
    # raise_server_exceptions=False: a handler's crash must reach the test as the 500 a client
    # would see (the tests assert there is none), not as an exception raised in the test.
    app = create_app(settings, fast_path=fast_path)
    with TestClient(app=app, timeout=60, raise_server_exceptions=False) as client:
        yield Api(client, settings.database.url)


# What a helper that only speaks HTTP to the API (and reads its database) takes.
Target = Api | Server
