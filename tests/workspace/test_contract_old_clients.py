"""The old workspace service's contract, as its clients use it, through real HTTP (granian).

Facts from the old Node service (routes/categories.js, routes/items.js, CategoryService's
normalisation) and the old dashboard (categoriesService.ts, libraryService.ts): every route is
mounted with and without `/api` (the old Traefik route rewrote `/api/workspace/X` to `/X`);
categories are snake_case with `id` equal to `name`; success and error envelopes; status codes;
the old error sentences. Each row below is one call an old client makes; every row runs under
both prefixes. Where the old service had a bug, the row checks the corrected behaviour and says
so (docs/workspace-api.md, "Compatibility with the old system").
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
import pytest

from tests.support.workspace import Server

PREFIXES = ["/api", ""]
_names = itertools.count()

# -- the category object: every field of the old contract, its JSON type, and its default ------

# field → (types allowed, default on a create that leaves it out; ... = no fixed default)
CATEGORY_CONTRACT: dict[str, tuple[tuple[type, ...], Any]] = {
    "id": ((str,), ...),  # equal to name
    "name": ((str,), ...),
    "display_name": ((str,), ...),
    "description": ((str,), ""),
    "color": ((str,), "#6B7280"),
    "icon": ((str, type(None)), None),
    "display_order": ((int,), ...),
    "is_active": ((bool,), True),
    "created_at": ((str,), ...),
    "updated_at": ((str,), ...),
    "created_by": ((str, type(None)), None),
}
# Today's camelCase keys, kept for current clients, each equal to its snake_case twin.
CAMEL_TWINS = {"displayName": "display_name", "displayOrder": "display_order", "isActive": "is_active",
               "createdAt": "created_at", "updatedAt": "updated_at"}
# `metadata` as the old API answered it ({} unless the item came from a LowDB file holding some).
ITEM_FIELDS = {"id", "title", "description", "category", "priority", "status", "tags", "metadata", "createdAt",
               "updatedAt", "created_at", "updated_at"}


def assert_category(data: dict[str, Any]) -> None:
    """One category object holds the old contract's fields, typed, plus the camelCase twins."""
    assert set(data) == set(CATEGORY_CONTRACT) | set(CAMEL_TWINS), sorted(data)
    for name, (types, _) in CATEGORY_CONTRACT.items():
        assert isinstance(data[name], types) and not (int in types and isinstance(data[name], bool) and
                                                       bool not in types), (name, data[name])
    assert data["id"] == data["name"]
    for camel, snake in CAMEL_TWINS.items():
        assert data[camel] == data[snake], camel
    for moment in ("created_at", "updated_at"):
        assert datetime.fromisoformat(data[moment].replace("Z", "+00:00")).tzinfo is not None


# -- what exists before a row's call ------------------------------------------------------------


@dataclass
class World:
    """The names and ids a row's path and body refer to, made fresh for that row."""

    api: httpx.Client
    name: str  # a category the row may change
    item_id: str = ""

    def category(self, **fields: Any) -> dict[str, Any]:
        response = self.api.post("/api/categories", json={"name": self.name, **fields})
        assert response.status_code == 201, response.text
        return response.json()["data"]

    def item(self, category: str) -> dict[str, Any]:
        response = self.api.post("/api/items", json={"title": "Alerta", "description": "d", "category": category,
                                                     "priority": "high"})
        assert response.status_code == 201, response.text
        self.item_id = response.json()["data"]["id"]
        return response.json()["data"]


Given = Callable[[World], None]


def active(world: World) -> None:
    world.category(display_name="Alertas UI", display_order=1)


def inactive(world: World) -> None:
    world.category(is_active=False)


def in_use(world: World) -> None:
    world.category()
    world.item(world.name)


def missing(_: World) -> None:
    pass


def an_item(world: World) -> None:
    world.item("bug")


# -- the rows ------------------------------------------------------------------------------------


@dataclass
class Row:
    id: str
    method: str
    path: str  # `{p}` is the prefix (`/api` or ``), `{name}` the row's category, `{item}` its item id
    status: int
    given: Given = missing
    body: dict[str, Any] | None = None
    keys: set[str] = field(default_factory=set)  # the answer's top-level keys, exactly
    check: Callable[[dict[str, Any], World], None] | None = None


def _listed(body: dict[str, Any], world: World) -> list[str]:
    assert body["count"] == len(body["data"])
    for category in body["data"]:
        assert_category(category)
    orders = [c["display_order"] for c in body["data"]]
    assert orders == sorted(orders)
    return [c["name"] for c in body["data"]]


def _lists_active_only(body: dict[str, Any], world: World) -> None:
    names = _listed(body, world)
    assert world.name not in names and "feature" in names
    assert all(c["is_active"] for c in body["data"])


def _lists_inactive_too(body: dict[str, Any], world: World) -> None:
    assert world.name in _listed(body, world)


def _is_the_category(**expected: Any) -> Callable[[dict[str, Any], World], None]:
    def check(body: dict[str, Any], world: World) -> None:
        assert_category(body["data"])
        assert body["data"]["name"] == world.name
        for key, value in expected.items():
            assert body["data"][key] == value, (key, body["data"][key])
        stored = world.api.get(f"/api/categories/{world.name}").json()["data"]
        assert stored == body["data"]  # what was answered is what is stored

    return check


def _created_with_defaults(body: dict[str, Any], world: World) -> None:
    # No display_name: derived from the slug (`contrato-7` → `Contrato 7`; the old service used the slug).
    _is_the_category(display_name=" ".join(part.capitalize() for part in world.name.split("-")))(body, world)
    for key, (_, default) in CATEGORY_CONTRACT.items():
        if default is not ...:
            assert body["data"][key] == default, key
    # No display_order: after the last category (the old service used 99).
    orders = [c["display_order"] for c in world.api.get("/api/categories?active_only=false").json()["data"]]
    assert body["data"]["display_order"] == max(orders)


def _says(message: str) -> Callable[[dict[str, Any], World], None]:
    def check(body: dict[str, Any], world: World) -> None:
        expected = message.format(name=world.name)
        assert body["success"] is False
        assert body["message"] == expected  # the old key
        assert body["error"] == expected  # what the old dashboard shows first (`error || message`)

    return check


def _says_validation(*fields: str) -> Callable[[dict[str, Any], World], None]:
    def check(body: dict[str, Any], world: World) -> None:
        assert body["success"] is False and body["error"] == body["message"] == "Validation failed"
        assert [e["field"] for e in body["errors"]] == list(fields)
        # The old dashboard joins `errors[].msg`: each entry says what is wrong in a sentence.
        assert all(e["msg"] == f"{e['field']} {e['message']}" and e["param"] == e["field"] for e in body["errors"])

    return check


def _gone(body: dict[str, Any], world: World) -> None:
    assert body == {"success": True, "message": "Category deleted successfully"}
    assert world.api.get(f"/api/categories/{world.name}").status_code == 404


def _kept_with_its_item(body: dict[str, Any], world: World) -> None:
    _says("Cannot delete category '{name}' - 1 items are using it")(body, world)
    assert world.api.get(f"/api/categories/{world.name}").status_code == 200


def _the_item(**expected: Any) -> Callable[[dict[str, Any], World], None]:
    def check(body: dict[str, Any], world: World) -> None:
        assert set(body["data"]) == ITEM_FIELDS
        assert body["data"]["createdAt"] == body["data"]["created_at"]
        assert body["data"]["updatedAt"] == body["data"]["updated_at"]
        for key, value in expected.items():
            assert body["data"][key] == value, key

    return check


def _items_listed(body: dict[str, Any], world: World) -> None:
    assert body["count"] == len(body["data"]) and world.item_id in [i["id"] for i in body["data"]]
    assert all(set(i) == ITEM_FIELDS for i in body["data"])


def _item_gone(body: dict[str, Any], world: World) -> None:
    assert body == {"success": True, "message": "Item deleted successfully"}
    assert world.api.get(f"/api/items/{world.item_id}").status_code == 404


ALL_FIELDS = {"name": "x", "display_name": "Alertas UI", "description": "Alertas de preço", "display_order": 1,
              "color": "#0EA5E9", "icon": "BellIcon"}
ROWS = [
    # GET /categories: the active ones, by display_order; active_only=false (the old dashboard's
    # categories card) lists the inactive ones too.
    Row("list", "GET", "{p}/categories", 200, inactive, keys={"success", "count", "data"}, check=_lists_active_only),
    Row("list active_only=true", "GET", "{p}/categories?active_only=true&order_by=display_order", 200, inactive,
        keys={"success", "count", "data"}, check=_lists_active_only),
    Row("list active_only=false", "GET", "{p}/categories?active_only=false&order_by=display_order", 200, inactive,
        keys={"success", "count", "data"}, check=_lists_inactive_too),
    # GET /categories/:name (the old service answered 404 for an inactive one: it looked only
    # among the active ones; it is found now).
    Row("get", "GET", "{p}/categories/{name}", 200, active, keys={"success", "data"},
        check=_is_the_category(display_name="Alertas UI", display_order=1, is_active=True)),
    Row("get inactive", "GET", "{p}/categories/{name}", 200, inactive, keys={"success", "data"},
        check=_is_the_category(is_active=False)),
    Row("get missing", "GET", "{p}/categories/{name}", 404, keys={"success", "error", "message"},
        check=_says("Category '{name}' not found")),
    # POST /categories
    Row("create, every field", "POST", "{p}/categories", 201, body=ALL_FIELDS, keys={"success", "data", "message"},
        check=_is_the_category(**{k: v for k, v in ALL_FIELDS.items() if k != "name"})),
    Row("create, name only", "POST", "{p}/categories", 201, body={"name": "x"}, keys={"success", "data", "message"},
        check=_created_with_defaults),
    Row("create, camelCase", "POST", "{p}/categories", 201,
        body={"name": "x", "displayName": "Alertas", "displayOrder": 3, "isActive": False},
        keys={"success", "data", "message"}, check=_is_the_category(display_name="Alertas", display_order=3,
                                                                    is_active=False)),
    Row("create, created_by", "POST", "{p}/categories", 201, body={"name": "x", "created_by": "marcelo"},
        keys={"success", "data", "message"}, check=_is_the_category(created_by="marcelo")),
    Row("create taken", "POST", "{p}/categories", 409, active, body={"name": "x"}, keys={"success", "error",
        "message", "details"}, check=_says("Category '{name}' already exists")),
    Row("create without name", "POST", "{p}/categories", 400, body={"display_name": "Sem nome"},
        keys={"success", "error", "message", "details", "errors"}, check=_says_validation("name")),
    # PUT /categories/:name
    Row("update", "PUT", "{p}/categories/{name}", 200, active,
        body={"display_name": "Alertas de Preço", "description": "Alvos", "display_order": 5, "is_active": False,
              "color": "#123456", "icon": "BellIcon"},
        keys={"success", "data", "message"},
        check=_is_the_category(display_name="Alertas de Preço", description="Alvos", display_order=5,
                               is_active=False, color="#123456", icon="BellIcon")),
    Row("update sort_order (the old PUT's name)", "PUT", "{p}/categories/{name}", 200, active,
        body={"sort_order": 9}, keys={"success", "data", "message"}, check=_is_the_category(display_order=9)),
    Row("update camelCase", "PUT", "{p}/categories/{name}", 200, active, body={"displayName": "Outro"},
        keys={"success", "data", "message"}, check=_is_the_category(display_name="Outro")),
    Row("update missing", "PUT", "{p}/categories/{name}", 404, body={"display_name": "x"},
        keys={"success", "error", "message"}, check=_says("Category '{name}' not found")),
    Row("update bad order", "PUT", "{p}/categories/{name}", 400, active, body={"display_order": "1"},
        keys={"success", "error", "message", "details", "errors"}, check=_says_validation("display_order")),
    # PATCH /categories/:name/toggle
    Row("toggle off", "PATCH", "{p}/categories/{name}/toggle", 200, active, keys={"success", "data", "message"},
        check=_is_the_category(is_active=False)),
    Row("toggle on", "PATCH", "{p}/categories/{name}/toggle", 200, inactive, keys={"success", "data", "message"},
        check=_is_the_category(is_active=True)),
    Row("toggle missing", "PATCH", "{p}/categories/{name}/toggle", 404, keys={"success", "error", "message"},
        check=_says("Category '{name}' not found")),
    # DELETE /categories/:name
    Row("delete", "DELETE", "{p}/categories/{name}", 200, active, keys={"success", "message"}, check=_gone),
    Row("delete in use", "DELETE", "{p}/categories/{name}", 409, in_use,
        keys={"success", "error", "message", "details"}, check=_kept_with_its_item),
    Row("delete missing", "DELETE", "{p}/categories/{name}", 404, keys={"success", "error", "message"},
        check=_says("Category '{name}' not found")),
    # Items (the old dashboard's libraryService and workspaceService)
    Row("list items", "GET", "{p}/items", 200, an_item,
        keys={"success", "count", "data", "total", "limit", "offset", "filters"}, check=_items_listed),
    Row("create item", "POST", "{p}/items", 201, active,
        body={"title": "Alerta de stop", "description": "BOVAW32", "category": "{name}", "priority": "high",
              "tags": ["alertas"]},
        keys={"success", "data", "message"}, check=_the_item(title="Alerta de stop", status="new", priority="high")),
    Row("create item, inactive category", "POST", "{p}/items", 400, inactive,
        body={"title": "x", "description": "y", "category": "{name}", "priority": "low"},
        keys={"success", "error", "message", "details", "errors"}, check=_says_validation("category")),
    Row("get item", "GET", "{p}/items/{item}", 200, an_item, keys={"success", "data"},
        check=_the_item(title="Alerta", category="bug")),
    Row("update item", "PUT", "{p}/items/{item}", 200, an_item, body={"status": "in-progress"},
        keys={"success", "data", "message"}, check=_the_item(status="in-progress")),
    Row("delete item", "DELETE", "{p}/items/{item}", 200, an_item, keys={"success", "message"}, check=_item_gone),
    Row("get missing item", "GET", f"{{p}}/items/{uuid.UUID(int=7)}", 404, keys={"success", "error", "message"}),
]


@pytest.fixture(scope="module")
def api(live: Server) -> httpx.Client:
    with httpx.Client(base_url=live.url, timeout=30) as client:
        yield client


def _fill(value: Any, world: World) -> Any:
    if isinstance(value, str):
        return value.replace("{name}", world.name)
    if isinstance(value, dict):
        return {k: (world.name if k == "name" else _fill(v, world)) for k, v in value.items()}
    return value


@pytest.mark.parametrize("prefix", PREFIXES, ids=["api", "no-prefix"])
@pytest.mark.parametrize("row", ROWS, ids=[row.id for row in ROWS])
def test_old_client_call(api: httpx.Client, prefix: str, row: Row) -> None:
    world = World(api, name=f"contrato-{next(_names)}")
    row.given(world)
    path = row.path.format(p=prefix, name=world.name, item=world.item_id)
    body = _fill(row.body, world) if row.body is not None else None
    response = api.request(row.method, path, json=body)
    assert response.status_code == row.status, response.text
    answer = response.json()
    assert set(answer) == row.keys, sorted(answer)
    if row.status < 400:
        assert answer["success"] is True
    if row.check:
        row.check(answer, world)


@pytest.mark.parametrize("prefix", PREFIXES, ids=["api", "no-prefix"])
def test_the_dashboard_session(api: httpx.Client, prefix: str) -> None:
    """The old dashboard's categories card, call by call, reading only the fields it reads."""
    name = f"sessao-{prefix.strip('/') or 'root'}"
    base = f"{prefix}/categories"
    created = api.post(base, json={"name": name, "display_name": "Alertas UI", "description": "Alertas",
                                   "color": "#0EA5E9", "display_order": 1})
    assert created.status_code == 201 and created.json()["data"]["id"] == name
    listed = api.get(f"{base}?active_only=false&order_by=display_order").json()["data"]
    mine = next(c for c in listed if c["id"] == name)
    assert (mine["display_name"], mine["display_order"], mine["is_active"]) == ("Alertas UI", 1, True)
    # The card addresses a category by its `id` for edit, toggle and delete.
    edited = api.put(f"{base}/{mine['id']}", json={"display_name": "Alertas de Preço", "display_order": 2})
    assert edited.json()["data"]["display_name"] == "Alertas de Preço"
    assert api.patch(f"{base}/{mine['id']}/toggle").json()["data"]["is_active"] is False
    offered = [c["name"] for c in api.get(f"{base}?active_only=true&order_by=display_order").json()["data"]]
    assert name not in offered  # the new-item dialog offers active categories only
    assert api.patch(f"{base}/{mine['id']}/toggle").json()["data"]["is_active"] is True
    deleted = api.delete(f"{base}/{mine['id']}")
    assert deleted.status_code == 200 and deleted.json()["success"] is True  # the card parses the body
