"""An item's `metadata` through the API: written on POST and PUT as the old API accepted it
(`metadata: z.record(z.any())` on both; its PostgreSQL update set `metadata = $n`, so a PUT
replaces the whole object), checked by the same rule as the LowDB importer (an object jsonb can
hold)."""

from __future__ import annotations

import uuid

import pytest
from litestar.testing import AsyncTestClient

from tests.support.db import connection
from tests.support.workspace import problems

ITEM = {"title": "Backtest do setup", "category": "feature"}
NESTED = {"fonte": "dashboard", "links": ["https://example.com/a"], "ordem": {"coluna": 2, "peso": 0.75},
          "vazio": None, "ok": True, "grande": 123456789012345678}


async def stored_metadata(database_url: str, item_id: str) -> object:
    import json

    async with connection(database_url) as conn:
        return json.loads(await conn.fetchval("SELECT metadata FROM workspace.workspace_items WHERE id = $1",
                                              uuid.UUID(item_id)))


async def test_post_stores_metadata_and_answers_it(client: AsyncTestClient, database_url: str) -> None:
    response = await client.post("/api/items", json={**ITEM, "metadata": NESTED})
    assert response.status_code == 201, response.text
    item = response.json()["data"]
    assert item["metadata"] == NESTED
    assert (await client.get(f"/api/items/{item['id']}")).json()["data"]["metadata"] == NESTED
    assert await stored_metadata(database_url, item["id"]) == NESTED
    # Absent or null: {} (the old API's default), as for an item created without it.
    for body in (ITEM, {**ITEM, "metadata": None}):
        assert (await client.post("/api/items", json=body)).json()["data"]["metadata"] == {}


async def test_put_replaces_metadata_whole_and_leaves_it_alone_when_absent(client: AsyncTestClient,
                                                                           database_url: str) -> None:
    item = (await client.post("/api/items", json={**ITEM, "metadata": {"a": 1, "b": {"c": 2}}})).json()["data"]
    path = f"/api/items/{item['id']}"
    # Not merged: the old API wrote the object it was given over the old one.
    replaced = await client.put(path, json={"metadata": {"b": {"d": 3}}})
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["data"]["metadata"] == {"b": {"d": 3}}
    # Other fields change, metadata stays.
    renamed = (await client.put(path, json={"title": "Outro título"})).json()["data"]
    assert (renamed["title"], renamed["metadata"]) == ("Outro título", {"b": {"d": 3}})
    # A client re-sending the whole item it read keeps what it read.
    again = (await client.put(path, json=renamed)).json()["data"]
    assert again["metadata"] == {"b": {"d": 3}}
    # null and {} empty it.
    assert (await client.put(path, json={"metadata": None})).json()["data"]["metadata"] == {}
    await client.put(path, json={"metadata": {"x": 1}})
    assert (await client.put(path, json={"metadata": {}})).json()["data"]["metadata"] == {}
    assert await stored_metadata(database_url, item["id"]) == {}


@pytest.mark.parametrize(("metadata", "message"), [
    ([1, 2], "must be an object, got list"),
    ("texto", "must be an object, got str"),
    (7, "must be an object, got int"),
    ({"nota": "a\x00b"}, "must not contain NUL characters (\\u0000)"),
    ({"a\x00": 1}, "must not contain NUL characters (\\u0000)"),
    ({"fundo": [{"x": ["ok", "\x00"]}]}, "must not contain NUL characters (\\u0000)"),
])
async def test_metadata_jsonb_cannot_hold_is_a_400_naming_it(client: AsyncTestClient, metadata: object,
                                                             message: str) -> None:
    created = await client.post("/api/items", json={**ITEM, "metadata": metadata})
    assert created.status_code == 400, created.text
    assert problems(created) == {"metadata": message}
    item = (await client.post("/api/items", json=ITEM)).json()["data"]
    updated = await client.put(f"/api/items/{item['id']}", json={"title": "novo", "metadata": metadata})
    assert updated.status_code == 400 and problems(updated) == {"metadata": message}
    assert (await client.get(f"/api/items/{item['id']}")).json()["data"]["title"] == ITEM["title"]  # unchanged


async def test_metadata_with_a_lone_surrogate_or_too_deep_is_a_400(client: AsyncTestClient) -> None:
    surrogate = await client.post("/api/items", content=b'{"title": "t", "category": "feature", "metadata": '
                                                        b'{"x": "\\ud800"}}',
                                  headers={"Content-Type": "application/json"})
    # msgspec refuses the escape of a lone surrogate itself: the body is not JSON it decodes.
    assert surrogate.status_code == 400 and list(problems(surrogate)) == ["body"]
    assert problems(surrogate)["body"].startswith("is not valid JSON (a lone UTF-16 surrogate escape \\ud800 at byte")
    deep = b'{"title": "t", "category": "feature", "metadata": {"x": ' + b"[" * 5000 + b"]" * 5000 + b"}}"
    nested = await client.post("/api/items", content=deep, headers={"Content-Type": "application/json"})
    assert nested.status_code == 400 and problems(nested) == {"body": "is nested too deeply"}
