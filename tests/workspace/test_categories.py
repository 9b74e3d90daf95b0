"""/api/categories: list, get by name, create, update (rename carries items), toggle, delete."""

from __future__ import annotations

import pytest
from litestar.testing import AsyncTestClient

from tests.support.workspace import create, moment, problems

SEEDED = ["feature", "bug", "improvement", "documentation", "research", "other", "documentacao", "coleta-dados",
          "banco-dados", "analise-dados", "gestao-riscos", "dashboard"]


SNAKE = {"id", "name", "display_name", "description", "color", "icon", "display_order", "is_active", "created_at",
         "updated_at", "created_by"}
CAMEL = {"displayName", "displayOrder", "isActive", "createdAt", "updatedAt"}


async def test_list_in_display_order(client: AsyncTestClient) -> None:
    response = await client.get("/api/categories")
    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True and body["count"] == len(SEEDED)
    assert [c["name"] for c in body["data"]] == SEEDED
    first = body["data"][0]
    assert set(first) == SNAKE | CAMEL
    # `id` is the name (the old key); each camelCase key repeats its snake_case one.
    assert first["id"] == first["name"] == "feature"
    assert (first["displayName"], first["displayOrder"], first["isActive"], first["createdAt"], first["updatedAt"]) == (
        first["display_name"], first["display_order"], first["is_active"], first["created_at"], first["updated_at"])
    assert (first["icon"], first["created_by"]) == (None, None)


async def test_list_active_only_by_default_and_all_with_active_only_false(client: AsyncTestClient) -> None:
    await client.patch("/api/categories/bug/toggle")

    async def names(**params) -> list[str]:
        response = await client.get("/api/categories", params=params)
        assert response.status_code == 200, response.text
        return [c["name"] for c in response.json()["data"]]

    active = [n for n in SEEDED if n != "bug"]
    assert await names() == active
    assert await names(active_only="true") == active
    assert await names(active_only="false") == SEEDED  # what the old dashboard's categories card asks for
    assert await names(active="false") == ["bug"]
    assert await names(active="true", active_only="false") == active  # `active` is exact and wins
    assert await names(active_only="false", order_by="name") == sorted(SEEDED)
    assert await names(order_by="display_order", active_only="false") == SEEDED
    bad = await client.get("/api/categories", params={"order_by": "color"})
    assert bad.status_code == 400 and "order_by" in problems(bad)


async def test_get_by_name(client: AsyncTestClient) -> None:
    response = await client.get("/api/categories/coleta-dados")
    assert response.status_code == 200
    data = response.json()["data"]
    assert (data["id"], data["name"], data["display_name"], data["is_active"]) == (
        "coleta-dados", "coleta-dados", "Coleta de Dados", True)
    missing = await client.get("/api/categories/nao-existe")
    assert missing.status_code == 404
    assert missing.json() == {"success": False, "error": "Category 'nao-existe' not found",
                              "message": "Category 'nao-existe' not found"}
    assert (await client.get("/api/categories/Not%20A%20Slug")).status_code == 400
    # An inactive category is found by name too (the old service answered 404: it looked only among
    # the active ones).
    await client.patch("/api/categories/bug/toggle")
    inactive = await client.get("/api/categories/bug")
    assert inactive.status_code == 200 and inactive.json()["data"]["is_active"] is False


async def test_create_with_defaults_and_duplicate(client: AsyncTestClient) -> None:
    response = await client.post("/api/categories", json={"name": "gestao-ordens"})
    assert response.status_code == 201
    body = response.json()
    assert body["message"] == "Category created successfully"
    data = body["data"]
    # Without a display_order a new category goes after the last one (the seeds end at 12).
    assert (data["display_name"], data["description"], data["color"], data["icon"], data["display_order"],
            data["is_active"], data["created_by"]) == ("Gestao Ordens", "", "#6B7280", None, 13, True, None)
    assert (await client.post("/api/categories", json={"name": "outra"})).json()["data"]["display_order"] == 14
    duplicate = await client.post("/api/categories", json={"name": "bug"})
    assert duplicate.status_code == 409 and duplicate.json()["error"] == "Category 'bug' already exists"
    # Items may use a new active category at once.
    await create(client, category="gestao-ordens")


async def test_create_takes_the_old_snake_case_body(client: AsyncTestClient) -> None:
    """What the old dashboard sends: before, display_name and display_order were ignored."""
    sent = {"name": "alertas-ui", "display_name": "Alertas UI", "description": "Alertas de preço",
            "display_order": 1, "color": "#0EA5E9", "icon": "BellIcon", "created_by": "marcelo"}
    response = await client.post("/api/categories", json=sent)
    assert response.status_code == 201, response.text
    data = response.json()["data"]
    assert {k: data[k] for k in sent} == sent
    assert (data["id"], data["is_active"], data["displayName"], data["displayOrder"]) == (
        "alertas-ui", True, "Alertas UI", 1)
    assert (await client.get("/api/categories/alertas-ui")).json()["data"] == data


async def test_create_takes_todays_camel_case_body(client: AsyncTestClient) -> None:
    sent = {"name": "alertas", "displayName": "Alertas", "description": "Alertas de preço", "color": "#0EA5E9",
            "displayOrder": 20, "isActive": False, "createdBy": "marcelo"}
    data = (await client.post("/api/categories", json=sent)).json()["data"]
    assert (data["display_name"], data["display_order"], data["is_active"], data["created_by"]) == (
        "Alertas", 20, False, "marcelo")
    assert {k: data[k] for k in ("displayName", "displayOrder", "isActive")} == {
        "displayName": "Alertas", "displayOrder": 20, "isActive": False}


async def test_both_spellings_must_agree(client: AsyncTestClient) -> None:
    same = await client.post("/api/categories", json={"name": "dupla", "display_name": "Dupla", "displayName": "Dupla"})
    assert same.status_code == 201
    differ = await client.post("/api/categories", json={"name": "outra", "display_name": "A", "displayName": "B"})
    assert differ.status_code == 400
    assert problems(differ) == {"displayName": "disagrees with display_name; send one of them"}
    order = await client.put("/api/categories/dupla", json={"display_order": 1, "sort_order": 2})
    assert problems(order) == {"sort_order": "disagrees with display_order; send one of them"}


async def test_create_validation_names_each_field(client: AsyncTestClient) -> None:
    response = await client.post("/api/categories", json={"displayName": "", "color": "blue", "displayOrder": "1",
                                                           "isActive": "yes", "description": "d" * 501})
    assert response.status_code == 400
    assert set(problems(response)) == {"name", "displayName", "color", "displayOrder", "isActive", "description"}
    bad_name = await client.post("/api/categories", json={"name": "Com Espaço"})
    assert problems(bad_name) == {"name": "must be a slug (lower-case letters, digits and '-')"}
    snake = await client.post("/api/categories", json={"name": "x", "display_name": " ", "display_order": 2**31,
                                                       "is_active": 1, "icon": "", "created_by": 5})
    assert set(problems(snake)) == {"display_name", "display_order", "is_active", "icon", "created_by"}
    # Each entry also carries the old dashboard's express-validator names (it shows `msg`).
    entry = snake.json()["errors"][0]
    assert entry["msg"] == f"{entry['field']} {entry['message']}" and entry["param"] == entry["field"]


async def test_update_given_fields_and_rename_carries_items(client: AsyncTestClient) -> None:
    item = await create(client, category="research")
    before = (await client.get("/api/categories/research")).json()["data"]
    response = await client.put("/api/categories/research", json={"color": "#000000", "name": "pesquisa"})
    assert response.status_code == 200
    after = response.json()["data"]
    assert after == {**before, "color": "#000000", "id": "pesquisa", "name": "pesquisa",
                     "updated_at": after["updated_at"], "updatedAt": after["updated_at"]}
    assert moment(after["updated_at"]) > moment(before["updated_at"])
    assert (await client.get(f"/api/items/{item['id']}")).json()["data"]["category"] == "pesquisa"
    assert (await client.get("/api/categories/research")).status_code == 404
    taken = await client.put("/api/categories/pesquisa", json={"name": "bug"})
    assert taken.status_code == 409
    assert (await client.put("/api/categories/nao-existe", json={"color": "#000000"})).status_code == 404
    assert (await client.put("/api/categories/bug", json={})).status_code == 400
    assert set(problems(await client.put("/api/categories/bug", json={"displayOrder": 2**40}))) == {"displayOrder"}


async def test_update_takes_the_old_fields(client: AsyncTestClient) -> None:
    # The old PUT read `sort_order`; the old dashboard sends display_order. icon null clears it.
    response = await client.put("/api/categories/bug", json={"display_name": "Bugs", "sort_order": 40,
                                                             "is_active": False, "icon": "BugAntIcon"})
    assert response.status_code == 200 and response.json()["message"] == "Category updated successfully"
    data = response.json()["data"]
    assert (data["display_name"], data["display_order"], data["is_active"], data["icon"]) == (
        "Bugs", 40, False, "BugAntIcon")
    data = (await client.put("/api/categories/bug", json={"display_order": 41, "icon": None})).json()["data"]
    assert (data["display_order"], data["icon"], data["display_name"]) == (41, None, "Bugs")
    # created_by is set once, at creation: a PUT with only it changes nothing and says so.
    only = await client.put("/api/categories/bug", json={"created_by": "someone"})
    assert only.status_code == 400 and "body" in problems(only)


async def test_toggle_active(client: AsyncTestClient) -> None:
    off = await client.patch("/api/categories/dashboard/toggle")
    assert off.status_code == 200 and off.json()["data"]["is_active"] is False
    assert off.json()["message"] == "Category deactivated"
    active = [c["name"] for c in (await client.get("/api/categories", params={"active": "true"})).json()["data"]]
    inactive = [c["name"] for c in (await client.get("/api/categories", params={"active": "false"})).json()["data"]]
    assert "dashboard" not in active and inactive == ["dashboard"]
    on = await client.patch("/api/categories/dashboard/toggle")
    assert on.json()["data"]["is_active"] is True and on.json()["message"] == "Category activated"
    assert (await client.patch("/api/categories/nao-existe/toggle")).status_code == 404


async def test_delete_refused_while_in_use(client: AsyncTestClient) -> None:
    item = await create(client, category="improvement")
    refused = await client.delete("/api/categories/improvement")
    assert refused.status_code == 409
    sentence = "Cannot delete category 'improvement' - 1 items are using it"  # the old text, word for word
    assert refused.json() == {"success": False, "error": sentence, "message": sentence, "details": [
        "move or delete the 1 item first, or deactivate the category"]}
    assert (await client.get("/api/categories/improvement")).status_code == 200
    await client.delete(f"/api/items/{item['id']}")
    deleted = await client.delete("/api/categories/improvement")
    assert deleted.status_code == 200
    assert deleted.json() == {"success": True, "message": "Category deleted successfully"}
    assert (await client.get("/api/categories/improvement")).status_code == 404
    assert (await client.delete("/api/categories/improvement")).status_code == 404


@pytest.mark.parametrize("raw", [b"[]", b"nope", b'"name"'])
async def test_body_must_be_an_object(client: AsyncTestClient, raw: bytes) -> None:
    response = await client.post("/api/categories", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 400 and "body" in problems(response)
