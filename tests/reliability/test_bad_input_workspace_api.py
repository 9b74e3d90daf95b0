"""Bad input against the live workspace API, table-driven.

Each row is one request a careless or hostile client could send. A rejected request must get
the 4xx of the table with the old envelope (`success: false` and an `error` that says what is
wrong; `details` naming the field where there is one) and must leave every table of the
workspace schema exactly as it was. Valid-but-unusual text (SQL metacharacters, emoji,
right-to-left, control characters) must be stored and answered exactly as sent.

The workspace API has no token (it is the dashboard's own API on the private network); what a
token row would test is covered by asserting that a stray token header changes nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import asyncio

import asyncpg
import httpx
import pytest

from tests.support.live import LiveService, snapshot
from tests.support.db import connection

UNKNOWN_ID = "3f1c2a9e-6a8b-4c1d-9e7f-0123456789ab"


def item(**overrides: object) -> dict:
    body = {"title": "Fault run report", "description": "", "category": "feature", "priority": "high",
            "status": "new", "tags": ["reliability"]}
    body.update(overrides)
    return {key: value for key, value in body.items() if value is not ...}


def category(**overrides: object) -> dict:
    body = {"name": "ops-new", "displayName": "Ops", "color": "#123456", "displayOrder": 7, "isActive": True}
    body.update(overrides)
    return {key: value for key, value in body.items() if value is not ...}


@dataclass
class Bad:
    """A request that must be refused."""

    id: str
    status: int
    method: str = "POST"
    path: str = "/api/items"
    body: bytes | None = None
    json_body: object = None
    headers: dict[str, str] = field(default_factory=dict)
    # A word the error text or details must contain (the message says what is wrong).
    mentions: str | None = None


def _ten_mb(prefix: bytes) -> bytes:
    return prefix + b"x" * (10 * 1024 * 1024) + b'"}'


BAD_INPUT = [
    # -- the body as a whole
    Bad("item body of 10 MB", 413, body=_ten_mb(b'{"category":"feature","title":"'), mentions="too large"),
    Bad("category body of 10 MB", 413, path="/api/categories", body=_ten_mb(b'{"name":"'), mentions="too large"),
    Bad("update body of 10 MB", 413, method="PUT", path=f"/api/items/{UNKNOWN_ID}",
        body=_ten_mb(b'{"title":"'), mentions="too large"),
    Bad("malformed JSON", 400, body=b'{"title": "x", "category": ', mentions="JSON"),
    Bad("empty body", 400, body=b"", mentions="body"),
    Bad("JSON array instead of object", 400, json_body=[item()], mentions="object"),
    Bad("JSON string", 400, json_body="hello", mentions="object"),
    Bad("JSON null", 400, json_body=None, body=b"null", mentions="object"),
    Bad("deeply nested JSON", 400, body=b'{"title":' + b"[" * 100_000 + b"]" * 100_000 + b"}"),
    Bad("invalid UTF-8 in title", 400, body=b'{"title":"caf\xc3","category":"feature"}', mentions="UTF-8"),
    Bad("invalid UTF-8 in an unknown field", 400, body=b'{"title":"ok","category":"feature","x":"\xff"}',
        mentions="UTF-8"),
    Bad("invalid UTF-8 in a category", 400, path="/api/categories", body=b'{"name":"ops-\xff"}', mentions="UTF-8"),
    Bad("NUL byte in title", 400, json_body=item(title="before\x00after"), mentions="title"),
    Bad("NUL byte in a tag", 400, json_body=item(tags=["ok", "a\x00b"]), mentions="tags"),
    Bad("NUL byte in description", 400, json_body=item(description="\x00"), mentions="description"),
    Bad("lone surrogate in title", 400, body=b'{"title":"\\ud800","category":"feature"}', mentions="surrogate"),
    # -- required fields and types
    Bad("missing title", 400, json_body=item(title=...), mentions="title"),
    Bad("missing category", 400, json_body=item(category=...), mentions="category"),
    Bad("blank title", 400, json_body=item(title="   "), mentions="title"),
    Bad("title of 201 characters", 400, json_body=item(title="t" * 201), mentions="title"),
    Bad("description of 2,001 characters", 400, json_body=item(description="d" * 2001), mentions="description"),
    Bad("title as number", 400, json_body=item(title=12345), mentions="title"),
    Bad("title as object", 400, json_body=item(title={"$ne": None}), mentions="title"),
    Bad("title null", 400, json_body=item(title=None), mentions="title"),
    Bad("tags as string", 400, json_body=item(tags="a,b"), mentions="tags"),
    Bad("tags with a number", 400, json_body=item(tags=["a", 2]), mentions="tags"),
    Bad("51 tags", 400, json_body=item(tags=[f"t{i}" for i in range(51)]), mentions="tags"),
    Bad("unknown priority", 400, json_body=item(priority="urgent"), mentions="priority"),
    Bad("priority as boolean", 400, json_body=item(priority=True), mentions="priority"),
    Bad("unknown status", 400, json_body=item(status="done"), mentions="status"),
    Bad("category not a slug", 400, json_body=item(category="Feature Requests"), mentions="category"),
    Bad("unknown category", 400, json_body=item(category="no-such-category"), mentions="category"),
    Bad("SQL in category", 400, json_body=item(category="feature'; DROP TABLE workspace.workspace_items; --"),
        mentions="category"),
    # -- ids and paths
    Bad("item id not a UUID", 400, method="GET", path="/api/items/42", mentions="id"),
    Bad("item id SQL", 400, method="GET", path="/api/items/1' OR '1'='1", mentions="id"),
    Bad("item id NUL", 400, method="DELETE", path="/api/items/%00", mentions="id"),
    Bad("item id invalid UTF-8", 400, method="GET", path="/api/items/%FF%FE"),
    Bad("unknown item", 404, method="GET", path=f"/api/items/{UNKNOWN_ID}", mentions="not found"),
    Bad("update unknown item", 404, method="PUT", path=f"/api/items/{UNKNOWN_ID}", json_body={"title": "x"},
        mentions="not found"),
    Bad("update with no fields", 400, method="PUT", path=f"/api/items/{UNKNOWN_ID}", json_body={}, mentions="body"),
    Bad("delete unknown item", 404, method="DELETE", path=f"/api/items/{UNKNOWN_ID}"),
    Bad("category name SQL", 400, method="GET", path="/api/categories/x' OR 1=1 --", mentions="name"),
    Bad("delete category name SQL", 400, method="DELETE", path="/api/categories/feature;DROP", mentions="name"),
    Bad("category name of 101", 400, method="GET", path="/api/categories/" + "a" * 101, mentions="name"),
    Bad("toggle unknown category", 404, method="PATCH", path="/api/categories/no-such-one/toggle"),
    Bad("delete category in use", 409, method="DELETE", path="/api/categories/feature"),
    # -- categories: fields and numbers out of range
    Bad("category missing name", 400, path="/api/categories", json_body=category(name=...), mentions="name"),
    Bad("category name upper case", 400, path="/api/categories", json_body=category(name="Ops"), mentions="name"),
    Bad("category name taken", 409, path="/api/categories", json_body=category(name="feature")),
    Bad("category colour not hex", 400, path="/api/categories", json_body=category(color="red"), mentions="color"),
    Bad("category colour CSS injection", 400, path="/api/categories",
        json_body=category(color="#123456;background:url(x)"), mentions="color"),
    Bad("displayOrder 2^63", 400, path="/api/categories", json_body=category(displayOrder=2**63),
        mentions="displayOrder"),
    Bad("displayOrder -2^63", 400, path="/api/categories", json_body=category(displayOrder=-(2**63)),
        mentions="displayOrder"),
    Bad("displayOrder 2^31", 400, path="/api/categories", json_body=category(displayOrder=2**31),
        mentions="displayOrder"),
    Bad("displayOrder float", 400, path="/api/categories", json_body=category(displayOrder=1.5),
        mentions="displayOrder"),
    Bad("displayOrder as text", 400, path="/api/categories", json_body=category(displayOrder="1"),
        mentions="displayOrder"),
    Bad("isActive as text", 400, path="/api/categories", json_body=category(isActive="yes"), mentions="isActive"),
    Bad("displayName NUL", 400, path="/api/categories", json_body=category(displayName="a\x00"),
        mentions="displayName"),
    # -- query strings
    Bad("limit 0", 400, method="GET", path="/api/items?limit=0", mentions="limit"),
    Bad("limit negative", 400, method="GET", path="/api/items?limit=-1", mentions="limit"),
    Bad("limit 2^63", 400, method="GET", path=f"/api/items?limit={2**63}", mentions="limit"),
    Bad("limit not a number", 400, method="GET", path="/api/items?limit=ten", mentions="limit"),
    Bad("offset negative", 400, method="GET", path="/api/items?offset=-5", mentions="offset"),
    Bad("offset 2^63", 400, method="GET", path=f"/api/items?offset={2**63}", mentions="offset"),
    Bad("status filter unknown", 400, method="GET", path="/api/items?status=done", mentions="status"),
    Bad("category filter SQL", 400, method="GET", path="/api/items?category=x'%20OR%201=1", mentions="category"),
    Bad("search NUL", 400, method="GET", path="/api/items?search=a%00b", mentions="search"),
    Bad("search invalid UTF-8", 400, method="GET", path="/api/items?search=caf%C3", mentions="UTF-8"),
    Bad("active not a boolean", 400, method="GET", path="/api/categories?active=maybe", mentions="active"),
    # -- concurrency header
    Bad("If-Match garbage on unknown item", 404, method="DELETE", path=f"/api/items/{UNKNOWN_ID}",
        headers={"If-Match": "'; DROP TABLE x; --"}),
    # "²" is a digit to str.isdigit() but not to int(): this was a 500.
    Bad("If-Match superscript digit", 404, method="PUT", path=f"/api/items/{UNKNOWN_ID}", json_body={"title": "x"},
        headers={"If-Match": b'"\xb2"'}),
    # -- a final newline: Python's `$` matched before it, then the database CHECK refused (500),
    #    or the value was stored ("#3B82F6\n") or searched for as is.
    Bad("category name with a final newline", 400, path="/api/categories", json_body=category(name="nl-x\n"),
        mentions="name"),
    Bad("old-style category name with a final newline", 400, path="/categories",
        json_body={"name": "nl-x\n", "display_name": "NL"}, mentions="name"),
    Bad("rename to a name with a final newline", 400, method="PUT", path="/api/categories/bug",
        json_body={"name": "nl-x\n"}, mentions="name"),
    Bad("colour with a final newline", 400, path="/api/categories", json_body=category(color="#3B82F6\n"),
        mentions="color"),
    Bad("colour update with a final newline", 400, method="PUT", path="/api/categories/bug",
        json_body={"color": "#3B82F6\n"}, mentions="color"),
    Bad("item category with a final newline", 400, json_body=item(category="feature\n"), mentions="category"),
    Bad("item update to a category with a final newline", 400, method="PUT", path=f"/api/items/{UNKNOWN_ID}",
        json_body={"category": "feature\n"}, mentions="category"),
    Bad("category path with a final newline", 400, method="GET", path="/api/categories/feature%0A", mentions="name"),
    Bad("toggle path with a final newline", 400, method="PATCH", path="/categories/feature%0A/toggle",
        mentions="name"),
    Bad("category filter with a final newline", 400, method="GET", path="/api/items?category=feature%0A",
        mentions="category"),
    Bad("status filter with a final newline", 400, method="GET", path="/api/items?status=new%0A", mentions="status"),
    Bad("priority filter with a final newline", 400, method="GET", path="/items?priority=high%0A",
        mentions="priority"),
    # -- the old contract's own fields
    Bad("display_name and displayName disagree", 400, path="/api/categories",
        json_body={"name": "ops-two", "display_name": "A", "displayName": "B"}, mentions="displayName"),
    Bad("display_order as text", 400, path="/api/categories", json_body={"name": "ops-two", "display_order": "1"},
        mentions="display_order"),
    Bad("sort_order out of range", 400, method="PUT", path="/api/categories/bug", json_body={"sort_order": 2**31},
        mentions="sort_order"),
    Bad("icon of 101 characters", 400, path="/api/categories", json_body=category(icon="i" * 101), mentions="icon"),
    Bad("created_by as a number", 400, path="/api/categories", json_body=category(created_by=7),
        mentions="created_by"),
    Bad("unknown order_by", 400, method="GET", path="/api/categories?order_by=color", mentions="order_by"),
    Bad("active_only not a boolean", 400, method="GET", path="/categories?active_only=maybe", mentions="active_only"),
    Bad("delete category in use, old path", 409, method="DELETE", path="/categories/feature",
        mentions="Cannot delete category 'feature' - 1 items are using it"),
]


def _send(api: LiveService, case: Bad, client: httpx.Client) -> httpx.Response:
    headers = dict(case.headers)
    body = case.body
    if case.json_body is not None:
        body = json.dumps(case.json_body).encode()
    if body is not None:
        headers.setdefault("Content-Type", "application/json")
    return client.request(case.method, api.url + case.path, content=body, headers=headers)


@pytest.fixture(scope="module")
def client() -> httpx.Client:
    with httpx.Client(timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def one_item(workspace_api: LiveService, client: httpx.Client) -> None:
    """An item in `feature`, so deleting that category is refused as in use."""
    response = client.post(f"{workspace_api.url}/api/items", json=item(title="in use"))
    assert response.status_code == 201, response.text


@pytest.mark.parametrize("case", BAD_INPUT, ids=[case.id for case in BAD_INPUT])
def test_bad_input_gets_a_clear_4xx_and_changes_nothing(workspace_api: LiveService, client: httpx.Client,
                                                        one_item: None, case: Bad) -> None:
    before = snapshot(workspace_api.database_url, "workspace")
    response = _send(workspace_api, case, client)
    assert response.status_code == case.status, response.text[:500]
    body = response.json()
    assert body.get("success") is False, body
    assert isinstance(body.get("error"), str) and body["error"], body
    if case.mentions:
        said = (body["error"] + " " + " ".join(body.get("details") or [])).lower()
        assert case.mentions.lower() in said, body
    assert snapshot(workspace_api.database_url, "workspace") == before


def test_a_stray_token_header_changes_nothing(workspace_api: LiveService, client: httpx.Client) -> None:
    """No token applies here: sending one (any header) neither unlocks nor breaks anything."""
    plain = client.get(f"{workspace_api.url}/api/categories")
    with_token = client.get(f"{workspace_api.url}/api/categories",
                            headers={"Authorization": "Bearer abc", "X-Gateway-Token": "abc"})
    assert plain.status_code == with_token.status_code == 200
    assert plain.json()["data"] == with_token.json()["data"]


STORED_EXACTLY = [
    ("SQL metacharacters", "'; DROP TABLE workspace.workspace_items; -- \" \\ % _ $1 $$"),
    ("emoji", "🚀📈 deploy ✅ 👩‍💻🇧🇷"),
    ("right-to-left", "مرحبا بالعالم — שלום עולם ‮reversed‬"),
    ("control characters", "tab\tnewline\nreturn\r bell\x07 escape\x1b"),
    ("combining marks", "e\u0301 vs é, Å vs A\u030a, ﬁ ligature"),
    ("astral plane", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝟙𝟚𝟛 \U0010fffd"),
    ("HTML", "<script>alert('x')</script> &amp; <b>"),
]


@pytest.mark.parametrize(("label", "text"), STORED_EXACTLY, ids=[label for label, _ in STORED_EXACTLY])
def test_unusual_valid_text_is_stored_exactly(workspace_api: LiveService, client: httpx.Client, label: str,
                                              text: str) -> None:
    body = item(title=text[:200], description=text, tags=[text[:100], "plain"])
    created = client.post(f"{workspace_api.url}/api/items", json=body)
    assert created.status_code == 201, created.text
    item_id = created.json()["data"]["id"]
    fetched = client.get(f"{workspace_api.url}/api/items/{item_id}").json()["data"]
    assert (fetched["title"], fetched["description"], fetched["tags"]) == (body["title"], text, body["tags"])
    row = _row(workspace_api, "SELECT title, description, tags FROM workspace.workspace_items WHERE id = $1::uuid",
               item_id)
    assert (row["title"], row["description"], list(row["tags"])) == (body["title"], text, body["tags"])
    found = client.get(f"{workspace_api.url}/api/items", params={"search": text[:50]}).json()["data"]
    assert item_id in [entry["id"] for entry in found]


def test_unusual_category_display_name_is_stored_exactly(workspace_api: LiveService, client: httpx.Client) -> None:
    name = "rtl-emoji"
    display = "📈 שלום '; DROP TABLE x; --"
    created = client.post(f"{workspace_api.url}/api/categories",
                          json=category(name=name, displayName=display, description="مرحبا\t\"quoted\""))
    assert created.status_code == 201, created.text
    row = _row(workspace_api, "SELECT display_name, description FROM workspace.workspace_categories WHERE name = $1",
               name)
    assert (row["display_name"], row["description"]) == (display, "مرحبا\t\"quoted\"")


def _row(api: LiveService, query: str, *args: object) -> asyncpg.Record:
    async def fetch() -> asyncpg.Record:
        async with connection(api.database_url) as conn:
            return await conn.fetchrow(query, *args)

    return asyncio.run(fetch())
