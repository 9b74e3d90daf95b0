"""/api/categories: list, get by name, create, update (rename carries items), toggle, delete."""

from __future__ import annotations

import pytest
from litestar.testing import AsyncTestClient

from tests.workspace.test_items import create, moment, problems

SEEDED = ["feature", "bug", "improvement", "documentation", "research", "other", "documentacao", "coleta-dados",
          "banco-dados", "analise-dados", "gestao-riscos", "dashboard"]


async def test_list_in_display_order(client: AsyncTestClient) -> None:
    response = await client.get("/api/categories")
    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True and body["count"] == len(SEEDED)
    assert [c["name"] for c in body["data"]] == SEEDED
    assert set(body["data"][0]) == {"id", "name", "displayName", "description", "color", "displayOrder", "isActive",
                                    "createdAt", "updatedAt"}


async def test_get_by_name(client: AsyncTestClient) -> None:
    response = await client.get("/api/categories/coleta-dados")
    assert response.status_code == 200
    data = response.json()["data"]
    assert (data["name"], data["displayName"], data["isActive"]) == ("coleta-dados", "Coleta de Dados", True)
    missing = await client.get("/api/categories/nao-existe")
    assert missing.status_code == 404 and missing.json() == {"success": False, "error": "Category not found"}
    assert (await client.get("/api/categories/Not%20A%20Slug")).status_code == 400


async def test_create_with_defaults_and_duplicate(client: AsyncTestClient) -> None:
    response = await client.post("/api/categories", json={"name": "gestao-ordens"})
    assert response.status_code == 201
    data = response.json()["data"]
    assert (data["displayName"], data["description"], data["color"], data["displayOrder"], data["isActive"]) == (
        "Gestao Ordens", "", "#6B7280", 0, True)
    full = {"name": "alertas", "displayName": "Alertas", "description": "Alertas de preço", "color": "#0EA5E9",
            "displayOrder": 20, "isActive": False}
    created = (await client.post("/api/categories", json=full)).json()["data"]
    assert {k: created[k] for k in full} == full
    duplicate = await client.post("/api/categories", json={"name": "bug"})
    assert duplicate.status_code == 409 and duplicate.json()["error"] == "Category already exists"
    # Items may use a new active category at once.
    await create(client, category="gestao-ordens")


async def test_create_validation_names_each_field(client: AsyncTestClient) -> None:
    response = await client.post("/api/categories", json={"displayName": "", "color": "blue", "displayOrder": "1",
                                                           "isActive": "yes", "description": "d" * 501})
    assert response.status_code == 400
    assert set(problems(response)) == {"name", "displayName", "color", "displayOrder", "isActive", "description"}
    bad_name = await client.post("/api/categories", json={"name": "Com Espaço"})
    assert problems(bad_name) == {"name": "must be a slug (lower-case letters, digits and '-')"}


async def test_update_given_fields_and_rename_carries_items(client: AsyncTestClient) -> None:
    item = await create(client, category="research")
    before = (await client.get("/api/categories/research")).json()["data"]
    response = await client.put("/api/categories/research", json={"color": "#000000", "name": "pesquisa"})
    assert response.status_code == 200
    after = response.json()["data"]
    assert after == {**before, "color": "#000000", "name": "pesquisa", "updatedAt": after["updatedAt"]}
    assert moment(after["updatedAt"]) > moment(before["updatedAt"])
    assert (await client.get(f"/api/items/{item['id']}")).json()["data"]["category"] == "pesquisa"
    assert (await client.get("/api/categories/research")).status_code == 404
    taken = await client.put("/api/categories/pesquisa", json={"name": "bug"})
    assert taken.status_code == 409
    assert (await client.put("/api/categories/nao-existe", json={"color": "#000000"})).status_code == 404
    assert (await client.put("/api/categories/bug", json={})).status_code == 400
    assert set(problems(await client.put("/api/categories/bug", json={"displayOrder": 2**40}))) == {"displayOrder"}


async def test_toggle_active(client: AsyncTestClient) -> None:
    off = await client.patch("/api/categories/dashboard/toggle")
    assert off.status_code == 200 and off.json()["data"]["isActive"] is False
    assert off.json()["message"] == "Category deactivated"
    active = [c["name"] for c in (await client.get("/api/categories", params={"active": "true"})).json()["data"]]
    inactive = [c["name"] for c in (await client.get("/api/categories", params={"active": "false"})).json()["data"]]
    assert "dashboard" not in active and inactive == ["dashboard"]
    on = await client.patch("/api/categories/dashboard/toggle")
    assert on.json()["data"]["isActive"] is True and on.json()["message"] == "Category activated"
    assert (await client.patch("/api/categories/nao-existe/toggle")).status_code == 404


async def test_delete_refused_while_in_use(client: AsyncTestClient) -> None:
    item = await create(client, category="improvement")
    refused = await client.delete("/api/categories/improvement")
    assert refused.status_code == 409
    assert refused.json() == {"success": False, "error": "Category is in use", "details": [
        "1 item uses category 'improvement'; move or delete them first, or deactivate the category"]}
    assert (await client.get("/api/categories/improvement")).status_code == 200
    await client.delete(f"/api/items/{item['id']}")
    deleted = await client.delete("/api/categories/improvement")
    assert deleted.status_code == 204
    assert (await client.get("/api/categories/improvement")).status_code == 404
    assert (await client.delete("/api/categories/improvement")).status_code == 404


@pytest.mark.parametrize("raw", [b"[]", b"nope", b'"name"'])
async def test_body_must_be_an_object(client: AsyncTestClient, raw: bytes) -> None:
    response = await client.post("/api/categories", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 400 and "body" in problems(response)
