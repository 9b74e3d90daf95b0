"""Categories: the SQL behind /api/categories (a category in use cannot be deleted).

A category's key is its `name` (the old schema's primary key); the API answers it as `id` too.
The error sentences are the old service's, word for word: its clients match on them (the old
dashboard recognises "already exists").
"""

from __future__ import annotations

from typing import Any

import asyncpg

from ..errors import ApiError, not_found, validation_failed
from ..schemas import Category
from ..validation import CATEGORY_ORDERS, check_slug

COLUMNS = ("name, display_name, description, color, icon, display_order, is_active, created_at, updated_at, "
           "created_by")
_TABLE = "workspace.workspace_categories"

# `order_by` values → ORDER BY clauses (a fixed list: never a client's text in SQL).
_ORDER_BY = {
    "display_order": "display_order, name",
    "name": "name",
    "created_at": "created_at, name",
    "updated_at": "updated_at, name",
}
assert set(_ORDER_BY) == set(CATEGORY_ORDERS)


def list_query(order_by: str) -> str:
    return f"""
SELECT {COLUMNS} FROM {_TABLE}
WHERE ($1::boolean IS NULL OR is_active = $1)
ORDER BY {_ORDER_BY[order_by]}
"""


GET = f"SELECT {COLUMNS} FROM {_TABLE} WHERE name = $1"
# Without a display_order the new category goes after the last one (the old service used 99).
CREATE = f"""
INSERT INTO {_TABLE} (name, display_name, description, color, icon, display_order, is_active, created_by)
VALUES ($1, $2, $3, $4, $5, coalesce($6, (SELECT coalesce(max(display_order), 0) + 1 FROM {_TABLE})), $7, $8)
ON CONFLICT (name) DO NOTHING
RETURNING {COLUMNS}
"""
# Only the given fields change (NULL: keep). `icon` may be cleared, hence its own flag ($8).
# A new name is carried to the items by the foreign key's ON UPDATE CASCADE.
UPDATE = f"""
UPDATE {_TABLE} SET
    name = coalesce($2, name),
    display_name = coalesce($3, display_name),
    description = coalesce($4, description),
    color = coalesce($5, color),
    display_order = coalesce($6, display_order),
    is_active = coalesce($7, is_active),
    icon = CASE WHEN $8 THEN $9 ELSE icon END,
    updated_at = greatest(clock_timestamp(), updated_at + interval '1 microsecond')
WHERE name = $1
RETURNING {COLUMNS}
"""
TOGGLE = f"""
UPDATE {_TABLE} SET is_active = NOT is_active,
    updated_at = greatest(clock_timestamp(), updated_at + interval '1 microsecond')
WHERE name = $1
RETURNING {COLUMNS}
"""
DELETE_UNUSED = f"""
DELETE FROM {_TABLE}
WHERE name = $1 AND NOT EXISTS (SELECT 1 FROM workspace.workspace_items WHERE category = $1)
"""
USAGE = f"""
SELECT (SELECT count(*) FROM workspace.workspace_items WHERE category = $1) AS items,
       EXISTS (SELECT 1 FROM {_TABLE} WHERE name = $1) AS found
"""


def check_name(raw: str) -> str:
    """A category name from a path: the slug, or a 400 naming `name`."""
    problems = check_slug(raw)
    if problems:
        raise validation_failed(problems)
    return raw


def _not_found(name: str) -> ApiError:
    return not_found(f"Category '{name}'")


def _name_taken(name: str) -> ApiError:
    return ApiError(409, f"Category '{name}' already exists", [f"name '{name}' is already used by another category"])


def _in_use(name: str, items: int) -> ApiError:
    return ApiError(409, f"Cannot delete category '{name}' - {items} items are using it",
                    [f"move or delete the {items} item{'s' if items != 1 else ''} first, or deactivate the category"])


async def list_categories(conn: Any, active: bool | None, order_by: str = "display_order") -> list[Category]:
    return [Category.from_record(r) for r in await conn.fetch(list_query(order_by), active)]


async def get_category(conn: Any, name: str) -> Category:
    record = await conn.fetchrow(GET, name)
    if record is None:
        raise _not_found(name)
    return Category.from_record(record)


async def create_category(conn: Any, values: dict[str, Any]) -> Category:
    record = await conn.fetchrow(CREATE, values["name"], values["display_name"], values["description"],
                                 values["color"], values["icon"], values["display_order"], values["is_active"],
                                 values["created_by"])
    if record is None:
        raise _name_taken(values["name"])
    return Category.from_record(record)


async def update_category(conn: Any, name: str, values: dict[str, Any]) -> Category:
    try:
        record = await conn.fetchrow(
            UPDATE, name, values.get("name"), values.get("display_name"), values.get("description"),
            values.get("color"), values.get("display_order"), values.get("is_active"),
            "icon" in values, values.get("icon"),
        )
    except asyncpg.UniqueViolationError:
        raise _name_taken(values["name"]) from None
    if record is None:
        raise _not_found(name)
    return Category.from_record(record)


async def toggle_category(conn: Any, name: str) -> Category:
    record = await conn.fetchrow(TOGGLE, name)
    if record is None:
        raise _not_found(name)
    return Category.from_record(record)


async def delete_category(conn: Any, name: str) -> None:
    try:
        status = await conn.execute(DELETE_UNUSED, name)
    except asyncpg.ForeignKeyViolationError:
        # An item was created in between: the foreign key refuses, same answer.
        status = "DELETE 0"
    if status.split()[-1] != "0":
        return
    usage = await conn.fetchrow(USAGE, name)
    if not usage["found"]:
        raise _not_found(name)
    raise _in_use(name, usage["items"])
