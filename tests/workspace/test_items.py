"""/api/items: CRUD, the old envelope, validation naming each field, filters, paging, ETag."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime

import pytest
from litestar.testing import AsyncTestClient

from tests.support.db import connection
from tests.support.workspace import ITEM, create, moment, problems

FIELDS = ("title", "description", "category", "priority", "status", "tags")


async def test_create_answers_201_with_the_item_in_camel_case_and_the_old_snake_case_dates(client: AsyncTestClient) -> None:
    response = await client.post("/api/items", json=ITEM)
    assert response.status_code == 201
    body = response.json()
    assert body["success"] is True and body["message"] == "Item created successfully"
    item = body["data"]
    assert {k: item[k] for k in FIELDS} == ITEM
    uuid.UUID(item["id"])
    assert item["createdAt"] == item["updatedAt"]
    assert datetime.fromisoformat(item["createdAt"].replace("Z", "+00:00")).tzinfo is not None
    assert set(item) == {*FIELDS, "id", "metadata", "createdAt", "updatedAt", "created_at", "updated_at"}
    assert item["metadata"] == {}  # as the old API answered an item without any
    assert (item["created_at"], item["updated_at"]) == (item["createdAt"], item["updatedAt"])
    assert response.headers["location"] == f"/api/items/{item['id']}"
    assert response.headers["etag"]


async def test_create_defaults(client: AsyncTestClient) -> None:
    response = await client.post("/api/items", json={"title": "Só o título", "category": "other"})
    item = response.json()["data"]
    assert (item["description"], item["priority"], item["status"], item["tags"]) == ("", "medium", "new", [])


async def test_get_put_delete_roundtrip(client: AsyncTestClient) -> None:
    item = await create(client)
    got = await client.get(f"/api/items/{item['id']}")
    assert got.status_code == 200 and got.json() == {"success": True, "data": item}

    updated = await client.put(f"/api/items/{item['id']}", json={"status": "completed", "tags": []})
    assert updated.status_code == 200
    after = updated.json()["data"]
    # Only the given fields change; updatedAt moves forward, createdAt stays.
    assert after == {**item, "status": "completed", "tags": [], "updatedAt": after["updatedAt"],
                     "updated_at": after["updatedAt"]}
    assert moment(after["updatedAt"]) > moment(item["updatedAt"])

    deleted = await client.delete(f"/api/items/{item['id']}")
    assert deleted.status_code == 200
    assert deleted.json() == {"success": True, "message": "Item deleted successfully"}
    assert (await client.get(f"/api/items/{item['id']}")).status_code == 404


async def test_put_ignores_read_only_and_unknown_fields(client: AsyncTestClient) -> None:
    item = await create(client)
    # The dashboard sends the whole item back: id/createdAt/updatedAt/extra keys are ignored.
    response = await client.put(f"/api/items/{item['id']}", json={**item, "title": "Novo", "id": str(uuid.uuid4()),
                                                                  "createdAt": "2000-01-01T00:00:00Z", "extra": 1})
    after = response.json()["data"]
    assert after["id"] == item["id"] and after["createdAt"] == item["createdAt"] and after["title"] == "Novo"


async def test_null_description_and_tags_mean_empty(client: AsyncTestClient) -> None:
    item = await create(client)
    after = (await client.put(f"/api/items/{item['id']}", json={"description": None, "tags": None})).json()["data"]
    assert (after["description"], after["tags"]) == ("", [])


@pytest.mark.parametrize("path", ["/api/items/{}", "/items/{}"])
@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
async def test_unknown_id_is_404_and_malformed_id_400(client: AsyncTestClient, method: str, path: str) -> None:
    body = {"title": "x"} if method == "PUT" else None
    missing = await client.request(method, path.format(uuid.uuid4()), json=body)
    assert missing.status_code == 404
    assert missing.json() == {"success": False, "error": "Item not found", "message": "Item not found"}
    malformed = await client.request(method, path.format("not-a-uuid"), json=body)
    assert malformed.status_code == 400
    assert problems(malformed) == {"id": "must be a UUID"}


async def test_validation_names_every_bad_field(client: AsyncTestClient) -> None:
    response = await client.post("/api/items", json={
        "description": "x" * 2001, "category": "Not A Slug", "priority": "urgent", "status": "done",
        "tags": ["ok", ""]})
    assert response.status_code == 400
    assert problems(response) == {
        "title": "is required",
        "description": "must be at most 2000 characters",
        "category": "must be a slug (lower-case letters, digits and '-')",
        "priority": "must be one of low, medium, high, critical",
        "status": "must be one of new, review, in-progress, completed, rejected",
        "tags": "[1] must be 1 to 200 characters".replace("200", "100"),
    }


@pytest.mark.parametrize(("body", "field", "message"), [
    ({"title": "", "category": "bug"}, "title", "must be 1 to 200 characters"),
    ({"title": "   ", "category": "bug"}, "title", "must not be blank"),
    ({"title": "t" * 201, "category": "bug"}, "title", "must be 1 to 200 characters"),
    ({"title": 5, "category": "bug"}, "title", "must be a string"),
    ({"title": "a\x00b", "category": "bug"}, "title", "must not contain NUL characters"),
    ({"title": None, "category": "bug"}, "title", "must not be null"),
    ({"title": "t"}, "category", "is required"),
    ({"title": "t", "category": "bug", "tags": "a,b"}, "tags", "must be a list of strings"),
    ({"title": "t", "category": "bug", "tags": ["x"] * 51}, "tags", "must have at most 50 tags"),
    ({"title": "t", "category": "bug", "tags": [1]}, "tags", "[0] must be a string"),
    ({"title": "t", "category": "bug", "priority": None}, "priority", "must not be null"),
])
async def test_each_rule(client: AsyncTestClient, body: dict, field: str, message: str) -> None:
    response = await client.post("/api/items", json=body)
    assert response.status_code == 400
    assert problems(response) == {field: message}


@pytest.mark.parametrize(("raw", "message"), [
    (b"{not json", "is not valid JSON"), (b"[1, 2]", "must be a JSON object"), (b"", "is not valid JSON"),
    (b"[" * 100_000, "nested too deeply"),
    (b'{"title": 1e400, "category": "bug"}', "Number out of range"),
    (b'{"title": "a\\ud800b", "category": "bug"}', "is not valid JSON"),  # a lone surrogate
])
async def test_body_that_is_not_an_object(client: AsyncTestClient, raw: bytes, message: str) -> None:
    response = await client.post("/api/items", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert message in problems(response)["body"]


async def test_category_must_be_active(client: AsyncTestClient) -> None:
    unknown = await client.post("/api/items", json={**ITEM, "category": "nao-existe"})
    assert unknown.status_code == 400
    assert "unknown or inactive" in problems(unknown)["category"]
    item = await create(client, category="research")
    assert (await client.patch("/api/categories/research/toggle")).json()["data"]["isActive"] is False
    inactive = await client.post("/api/items", json={**ITEM, "category": "research"})
    assert inactive.status_code == 400 and "'research' is unknown or inactive" in problems(inactive)["category"]
    # Moving an item to an inactive category is refused; keeping its own (now inactive) one is not.
    other = await create(client, category="bug")
    moved = await client.put(f"/api/items/{other['id']}", json={"category": "research"})
    assert moved.status_code == 400 and set(problems(moved)) == {"category"}
    kept = await client.put(f"/api/items/{item['id']}", json={"category": "research", "title": "ainda aqui"})
    assert kept.status_code == 200 and kept.json()["data"]["title"] == "ainda aqui"


async def test_empty_update_is_refused(client: AsyncTestClient) -> None:
    item = await create(client)
    response = await client.put(f"/api/items/{item['id']}", json={"unknown": 1})
    assert response.status_code == 400 and "body" in problems(response)


async def test_legacy_paths_without_api_prefix(client: AsyncTestClient) -> None:
    created = await client.post("/items", json=ITEM)
    assert created.status_code == 201
    item_id = created.json()["data"]["id"]
    assert (await client.get(f"/items/{item_id}")).json()["data"]["id"] == item_id
    assert [i["id"] for i in (await client.get("/items")).json()["data"]] == [item_id]
    assert (await client.put(f"/items/{item_id}", json={"title": "novo"})).status_code == 200
    assert (await client.delete(f"/items/{item_id}")).status_code == 200


# -- listing -------------------------------------------------------------------------------

@pytest.fixture
async def seeded(client: AsyncTestClient) -> list[dict]:
    """Six items, created oldest first."""
    specs = [
        dict(title="Parser de sinais", category="bug", priority="high", status="new", tags=["parser"]),
        dict(title="Backfill do canal", category="coleta-dados", priority="medium", status="review", tags=["telegram"]),
        dict(title="Painel", description="Gráfico de ACERTO por ativo", category="dashboard", priority="low",
             status="completed", tags=[]),
        dict(title="Hypertable", category="banco-dados", priority="critical", status="in-progress", tags=["TimescaleDB"]),
        dict(title="Ideia rejeitada", category="bug", priority="low", status="rejected", tags=["parser", "old"]),
        dict(title="Docs 100%_ok", category="documentacao", priority="medium", status="new", tags=[]),
    ]
    return [await create(client, description=spec.pop("description", ""), **spec) for spec in specs]


async def listing(client: AsyncTestClient, **params) -> dict:
    response = await client.get("/api/items", params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True and body["count"] == len(body["data"])
    return body


async def test_newest_first(client: AsyncTestClient, seeded: list[dict]) -> None:
    body = await listing(client)
    assert [i["id"] for i in body["data"]] == [i["id"] for i in reversed(seeded)]
    assert body["data"][0] == seeded[-1]
    assert (body["total"], body["limit"], body["offset"]) == (6, 1000, 0)


@pytest.mark.parametrize(("params", "titles"), [
    ({"category": "bug"}, ["Ideia rejeitada", "Parser de sinais"]),
    ({"status": "new"}, ["Docs 100%_ok", "Parser de sinais"]),
    ({"priority": "low"}, ["Ideia rejeitada", "Painel"]),
    ({"category": "bug", "priority": "high"}, ["Parser de sinais"]),
    ({"search": "acerto"}, ["Painel"]),  # description, case-insensitive
    ({"search": "timescale"}, ["Hypertable"]),  # tags
    ({"search": "PARSER"}, ["Ideia rejeitada", "Parser de sinais"]),  # title and tags
    ({"search": "%_"}, ["Docs 100%_ok"]),  # no LIKE wildcards
    ({"status": "", "priority": ""}, None),  # empty filter: any
    ({"category": "nao-existe"}, []),
])
async def test_filters(client: AsyncTestClient, seeded: list[dict], params: dict, titles: list[str] | None) -> None:
    body = await listing(client, **params)
    expected = titles if titles is not None else [i["title"] for i in reversed(seeded)]
    assert [i["title"] for i in body["data"]] == expected
    assert body["total"] == len(expected)


async def test_pages_cover_everything_once(client: AsyncTestClient, seeded: list[dict]) -> None:
    pages = [await listing(client, limit=4, offset=offset) for offset in (0, 4, 8)]
    assert [p["count"] for p in pages] == [4, 2, 0]
    assert all(p["total"] == 6 for p in pages)  # even past the end
    ids = [i["id"] for p in pages for i in p["data"]]
    assert ids == [i["id"] for i in reversed(seeded)]
    filtered = await listing(client, category="bug", limit=1, offset=1)
    assert [i["title"] for i in filtered["data"]] == ["Parser de sinais"] and filtered["total"] == 2


@pytest.mark.parametrize("term", ["gestão", "GESTÃO", "Gestão"])
async def test_search_folds_case_beyond_ascii(client: AsyncTestClient, term: str) -> None:
    # The test server's databases use the C locale, whose lower() leaves "Ã" alone.
    item = await create(client, title="GESTÃO de risco", tags=["ÇÃO"])
    other = await create(client, title="outra", description="sobre a gestão do caixa")
    body = await listing(client, search=term)
    assert [i["id"] for i in body["data"]] == [other["id"], item["id"]]
    assert [i["id"] for i in (await listing(client, search="ção"))["data"]] == [item["id"]]


@pytest.mark.parametrize(("params", "field"), [
    ({"limit": 0}, "limit"), ({"limit": 1001}, "limit"), ({"limit": "ten"}, "limit"), ({"offset": -1}, "offset"),
    ({"status": "done"}, "status"), ({"priority": "urgent"}, "priority"), ({"category": "Bug!"}, "category"),
    ({"search": "x" * 201}, "search"),
])
async def test_bad_query_values_are_400(client: AsyncTestClient, params: dict, field: str) -> None:
    response = await client.get("/api/items", params=params)
    assert response.status_code == 400
    assert field in problems(response)


# -- ETag / If-Match -----------------------------------------------------------------------

async def test_etag_changes_with_every_update(client: AsyncTestClient) -> None:
    item = await create(client)
    first = (await client.get(f"/api/items/{item['id']}")).headers["etag"]
    tags = {first}
    for n in range(5):  # back-to-back updates still get distinct versions
        response = await client.put(f"/api/items/{item['id']}", json={"title": f"v{n}"})
        tags.add(response.headers["etag"])
        assert (await client.get(f"/api/items/{item['id']}")).headers["etag"] == response.headers["etag"]
    assert len(tags) == 6


async def test_if_match_stale_write_is_412(client: AsyncTestClient) -> None:
    item = await create(client)
    etag = (await client.get(f"/api/items/{item['id']}")).headers["etag"]
    ok = await client.put(f"/api/items/{item['id']}", json={"title": "primeiro"}, headers={"If-Match": etag})
    assert ok.status_code == 200
    stale = await client.put(f"/api/items/{item['id']}", json={"title": "segundo"}, headers={"If-Match": etag})
    assert stale.status_code == 412
    assert stale.json()["success"] is False and "changed" in stale.json()["error"]
    assert stale.headers["etag"] == ok.headers["etag"]
    assert (await client.get(f"/api/items/{item['id']}")).json()["data"]["title"] == "primeiro"
    # The current tag (also weak, or in a list), and *, are accepted.
    for header in (f'"0", {ok.headers["etag"]}', "*"):
        response = await client.put(f"/api/items/{item['id']}", json={"status": "new"}, headers={"If-Match": header})
        assert response.status_code == 200, header
    weak = "W/" + response.headers["etag"]
    assert (await client.put(f"/api/items/{item['id']}", json={"status": "review"},
                             headers={"If-Match": weak})).status_code == 200
    for garbage in ('"nonsense"', "abc", '"99999999999999999999999"'):
        response = await client.put(f"/api/items/{item['id']}", json={"status": "new"}, headers={"If-Match": garbage})
        assert response.status_code == 412, garbage


async def test_without_if_match_last_write_wins(client: AsyncTestClient) -> None:
    item = await create(client)
    await client.put(f"/api/items/{item['id']}", json={"title": "A"})
    await client.put(f"/api/items/{item['id']}", json={"title": "B"})
    assert (await client.get(f"/api/items/{item['id']}")).json()["data"]["title"] == "B"


async def test_if_match_on_delete(client: AsyncTestClient) -> None:
    item = await create(client)
    stale = (await client.get(f"/api/items/{item['id']}")).headers["etag"]
    current = (await client.put(f"/api/items/{item['id']}", json={"title": "x"})).headers["etag"]
    assert (await client.delete(f"/api/items/{item['id']}", headers={"If-Match": stale})).status_code == 412
    assert (await client.delete(f"/api/items/{item['id']}", headers={"If-Match": current})).status_code == 200


async def test_concurrent_conditional_writes_one_wins(client: AsyncTestClient) -> None:
    item = await create(client)
    etag = (await client.get(f"/api/items/{item['id']}")).headers["etag"]
    responses = await asyncio.gather(*[
        client.put(f"/api/items/{item['id']}", json={"title": f"writer {n}"}, headers={"If-Match": etag})
        for n in range(8)])
    codes = sorted(r.status_code for r in responses)
    assert codes == [200] + [412] * 7
    winner = next(r for r in responses if r.status_code == 200).json()["data"]["title"]
    assert (await client.get(f"/api/items/{item['id']}")).json()["data"]["title"] == winner


async def test_rows_in_the_database_match(client: AsyncTestClient, database_url: str) -> None:
    item = await create(client)
    async with connection(database_url) as conn:
        row = await conn.fetchrow("SELECT * FROM workspace.workspace_items WHERE id = $1", uuid.UUID(item["id"]))
    assert (row["title"], row["category"], row["tags"]) == (ITEM["title"], ITEM["category"], ITEM["tags"])
