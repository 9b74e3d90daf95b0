"""Fixtures of the gateway tests: a scripted ingest API, publishers on it, stamina's retry waits.
The helpers they use are in tests/support/gateway.py."""

from __future__ import annotations

import pytest
import pytest_asyncio

from gateway.publisher import Publisher, create_session
from tests.support.gateway import ScriptedAPI, publish_settings, start_api


@pytest_asyncio.fixture
async def api():
    scripted = ScriptedAPI()
    runner = await start_api(scripted)
    yield scripted
    await runner.cleanup()


@pytest_asyncio.fixture
async def make_publisher():
    sessions = []

    async def make(url: str, **overrides) -> Publisher:
        settings = publish_settings(url, **overrides)
        session = create_session(settings)
        sessions.append(session)
        return Publisher(settings, session)

    yield make
    for session in sessions:
        await session.close()


@pytest.fixture
def retry_waits():
    """The waits stamina schedules (RetryDetails.wait_for), in order, for this test."""
    from stamina.instrumentation import get_on_retry_hooks, set_on_retry_hooks

    waits: list[tuple[int, float]] = []
    previous = get_on_retry_hooks()
    set_on_retry_hooks([lambda details: waits.append((details.retry_num, details.wait_for))])
    yield waits
    set_on_retry_hooks(previous)
