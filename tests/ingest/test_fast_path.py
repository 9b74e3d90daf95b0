"""The fast path of POST /ingest (ingest/fast_path.py) answers and stores exactly what the
Litestar route does.

Two apps run side by side, one with the fast path and one without, each on its own database.
Every generated request goes to both; the answers must be equal byte for byte (status, headers,
body) and, at the end, so must what each database holds. `takes` is checked on its own: which
requests the fast path serves, and that everything else is left to Litestar.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest_api.ingest.fast_path import IngestFastPath
from ingest_api.ingest.handlers import MAX_BODY_BYTES
from tests.support import db
from tests.support.ingest import TOKEN, Api, in_process, settings_for

# -- which requests it takes ----------------------------------------------------------------

GOOD_HEADERS = [(b"x-gateway-token", TOKEN.encode()), (b"content-type", b"application/json"),
                (b"content-length", b"120")]


def scope(method: str = "POST", path: str = "/ingest", query: bytes = b"",
          headers: list[tuple[bytes, bytes]] = GOOD_HEADERS) -> dict:
    return {"type": "http", "method": method, "path": path, "query_string": query, "headers": headers}


def without(name: bytes) -> list[tuple[bytes, bytes]]:
    return [(n, v) for n, v in GOOD_HEADERS if n != name]


def replaced(name: bytes, value: bytes) -> list[tuple[bytes, bytes]]:
    return [*without(name), (name, value)]


@pytest.fixture(scope="module")
def fast_path() -> IngestFastPath:
    from ingest_api.app import create_app

    app = create_app(settings_for("postgresql://unused@127.0.0.1:1/unused"))
    assert app.fast_path is not None  # type: ignore[attr-defined]
    return app.fast_path  # type: ignore[attr-defined]


def test_it_takes_the_gateways_request(fast_path: IngestFastPath) -> None:
    assert fast_path.takes(scope())
    assert fast_path.takes(scope(headers=without(b"content-length")))  # a chunked body
    assert fast_path.takes(scope(headers=replaced(b"content-type", b"application/json; charset=utf-8")))
    assert fast_path.takes(scope(headers=replaced(b"content-length", str(MAX_BODY_BYTES).encode())))


@pytest.mark.parametrize("request_scope", [
    scope(method="GET"),
    scope(path="/ingest/batch"),
    scope(path="/ingest/"),
    scope(query=b"x=1"),
    scope(headers=without(b"x-gateway-token")),
    scope(headers=replaced(b"x-gateway-token", b"wrong-" + TOKEN.encode())),
    scope(headers=[*GOOD_HEADERS, (b"x-gateway-token", TOKEN.encode())]),
    scope(headers=replaced(b"x-gateway-token", TOKEN.encode() + "é".encode())),
    scope(headers=without(b"content-type")),
    scope(headers=replaced(b"content-type", b"text/plain")),
    scope(headers=replaced(b"content-length", b"0")),
    scope(headers=replaced(b"content-length", str(MAX_BODY_BYTES + 1).encode())),
    scope(headers=replaced(b"content-length", b"12, 12")),
    scope(headers=[*GOOD_HEADERS, (b"origin", b"http://localhost:3103")]),
    {"type": "websocket", "path": "/ingest", "headers": GOOD_HEADERS},
], ids=["GET", "batch", "trailing-slash", "query", "no-token", "wrong-token", "token-twice", "non-ascii-token", "no-content-type",
        "text-plain", "empty-body", "too-large", "odd-length", "browser-origin", "websocket"])
def test_everything_else_is_litestars(fast_path: IngestFastPath, request_scope: dict) -> None:
    assert not fast_path.takes(request_scope)


# -- the same answers and the same rows -----------------------------------------------------

class Counting:
    """The app's fast path, counting the requests it served (so the comparison is not vacuous)."""

    def __init__(self, inner: IngestFastPath) -> None:
        self.inner = inner
        self.served = 0

    def takes(self, request_scope: dict) -> bool:
        return self.inner.takes(request_scope)

    async def __call__(self, request_scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        self.served += 1
        await self.inner(request_scope, receive, send)


@pytest.fixture(scope="module")
def twin_apps(pg_server_url: str, migrated_template: str) -> Iterator[tuple[Api, Api, Counting]]:
    names = [db.create_test_database(pg_server_url, migrated_template) for _ in range(2)]
    try:
        with in_process(settings_for(db.with_database(pg_server_url, names[0]))) as fast, \
                in_process(settings_for(db.with_database(pg_server_url, names[1])), fast_path=False) as slow:
            counting = Counting(fast.client.app.fast_path)  # type: ignore[attr-defined]
            fast.client.app.fast_path = counting  # type: ignore[attr-defined]
            assert slow.client.app.fast_path is None  # type: ignore[attr-defined]
            yield fast, slow, counting
    finally:
        for name in names:
            db.drop_database(pg_server_url, name)


_channels = itertools.count(-1009900000001, -1)
_encode = msgspec.json.encode

TEXTS = [
    "🟢Swing Trade\nAtivo: BOVAW32\nCompra: 1,04 a 1,06\nAlvo 1: 1,15\nAlvo final: 3,50\nStop: 0,70",
    "BOVAW32 Alvo 1 atingido ✅",
    "Stop em BOVAW32",
    "bom dia pessoal",
    "",
]
DATES = ["2025-10-07T12:00:00Z", "2025-10-07T12:00:00-03:00", "2025-10-08T09:30:00+00:00"]


@st.composite
def message(draw: st.DrawFn, channel: str) -> bytes:
    kind = draw(st.sampled_from(["new", "new", "new", "edited", "deleted"]))
    body: dict = {"channelId": channel, "messageId": draw(st.integers(1, 4))}
    if kind != "new":
        body["kind"] = kind
    if kind == "deleted":
        body["deletedAt"] = draw(st.sampled_from(DATES))
        return _encode(body)
    body["timestamp"] = draw(st.sampled_from(DATES))
    body["text"] = draw(st.sampled_from(TEXTS))
    if kind == "edited":
        body["editDate"] = draw(st.sampled_from(DATES))
    if draw(st.booleans()):
        body["replyToMessageId"] = draw(st.integers(1, 4))
    return _encode(body)


BROKEN = [b"{", b"[]", b'{"channelId": "-1001", "messageId": "x"}', b"\xff\xfe{}", b'{"text": "\\ud800"}',
          b"[" * 3000, b'{"channelId": "-1001", "messageId": 1, "timestamp": "2001-01-01T00:00:00Z"}',
          b'{"channelId": "-1001", "messageId": 1, "timestamp": "2025-10-07T12:00:00Z", "text": "a\\u0000"}',
          b'{"kind": "moved"}', b"null", b'"text"']


@st.composite
def request_(draw: st.DrawFn, channel: str) -> tuple[bytes, dict[str, str], str]:
    body = draw(st.one_of(message(channel), message(channel), message(channel), st.sampled_from(BROKEN),
                          st.binary(max_size=40)))
    headers = {"X-Gateway-Token": TOKEN, "Content-Type": "application/json"}
    path = "/ingest"
    variant = draw(st.sampled_from(["plain"] * 6 + ["wrong-token", "no-token", "text/plain", "query", "origin"]))
    if variant == "wrong-token":
        headers["X-Gateway-Token"] = "not-" + TOKEN
    elif variant == "no-token":
        del headers["X-Gateway-Token"]
    elif variant == "text/plain":
        headers["Content-Type"] = "text/plain"
    elif variant == "query":
        path += "?debug=1"
    elif variant == "origin":
        headers["Origin"] = "http://localhost:3103"
    return body, headers, path


def _answer(api: Api, body: bytes, headers: dict[str, str], path: str) -> tuple[int, list[tuple[str, str]], bytes]:
    response = api.client.post(path, content=body, headers=headers)
    return response.status_code, sorted((k.lower(), v) for k, v in response.headers.items()), response.content


STORED = """
SELECT 'message', channel_id, message_id, original_timestamp::text, message_text, edit_date::text,
       deleted_at IS NOT NULL, reply_to_message_id::text
  FROM tp_capital.forwarded_messages WHERE channel_id = $1
UNION ALL
SELECT 'signal', channel_id, message_id, message_date::text, asset || ' ' || signal_type, status,
       deleted_at IS NOT NULL, coalesce(target_1::text, '')
  FROM tp_capital.tp_capital_signals WHERE channel_id = $1
UNION ALL
SELECT 'event', channel_id, message_id, message_date::text, event_type, asset, false, seq::text
  FROM tp_capital.signal_events WHERE channel_id = $1
ORDER BY 1, 2, 3, 4, 5, 6, 7, 8
"""


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(data=st.data())
def test_the_same_requests_get_the_same_answers_and_rows(twin_apps: tuple[Api, Api, Counting],
                                                          data: st.DataObject) -> None:
    fast, slow, _ = twin_apps  # that the fast path served: test_the_comparison_went_through_the_fast_path
    channel = next(_channels)
    for body, headers, path in data.draw(st.lists(request_(str(channel)), min_size=1, max_size=8)):
        assert _answer(fast, body, headers, path) == _answer(slow, body, headers, path), (body, headers, path)
    assert db.fetch(fast.database_url, STORED, channel) == db.fetch(slow.database_url, STORED, channel)


def test_the_comparison_went_through_the_fast_path(twin_apps: tuple[Api, Api, Counting]) -> None:
    fast, slow, counting = twin_apps
    served_before = counting.served
    channel = str(next(_channels))
    body = _encode({"channelId": channel, "messageId": 1, "timestamp": DATES[0], "text": TEXTS[0]})
    headers = {"X-Gateway-Token": TOKEN, "Content-Type": "application/json"}
    first = _answer(fast, body, headers, "/ingest")
    assert first == _answer(slow, body, headers, "/ingest")
    assert first[0] == 200 and msgspec.json.decode(first[2])["status"] == "stored"
    again = _answer(fast, body, headers, "/ingest")
    assert again == _answer(slow, body, headers, "/ingest")
    assert msgspec.json.decode(again[2])["status"] == "duplicate"
    refused = _answer(fast, b'{"messageId": "x"}', headers, "/ingest")
    assert refused == _answer(slow, b'{"messageId": "x"}', headers, "/ingest") and refused[0] == 400
    assert counting.served == served_before + 3


def test_with_the_database_out_of_reach_both_answer_503_with_retry_after() -> None:
    # Nothing listens on port 1: every connection attempt is refused at once.
    unreachable = settings_for("postgresql://nobody@127.0.0.1:1/nothing")
    body = _encode({"channelId": "-1001", "messageId": 1, "timestamp": DATES[0], "text": TEXTS[0]})
    headers = {"X-Gateway-Token": TOKEN, "Content-Type": "application/json"}
    with in_process(unreachable) as fast, in_process(unreachable, fast_path=False) as slow:
        counting = Counting(fast.client.app.fast_path)  # type: ignore[attr-defined]
        fast.client.app.fast_path = counting  # type: ignore[attr-defined]
        answer = _answer(fast, body, headers, "/ingest")
        assert answer == _answer(slow, body, headers, "/ingest")
    status, answer_headers, content = answer
    assert status == 503 and ("retry-after", "5") in answer_headers
    assert msgspec.json.decode(content)["error"] == "Database connection failed"
    assert counting.served == 1
