"""Categories: the SQL behind /api/categories (a category in use cannot be deleted)."""

from __future__ import annotations

from typing import Any

import asyncpg

from ..errors import ApiError, FieldProblem, not_found, validation_failed
from ..schemas import Category
from ..validation import SLUG

COLUMNS = "id, name, display_name, description, color, display_order, is_active, created_at, updated_at"
_TABLE = "workspace.workspace_categories"

LIST = f"""
SELECT {COLUMNS} FROM {_TABLE}
WHERE ($1::boolean IS NULL OR is_active = $1)
ORDER BY display_order, name
"""
GET = f"SELECT {COLUMNS} FROM {_TABLE} WHERE name = $1"
CREATE = f"""
INSERT INTO {_TABLE} (name, display_name, description, color, display_order, is_active)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (name) DO NOTHING
RETURNING {COLUMNS}
"""
# A new name is carried to the items by the foreign key's ON UPDATE CASCADE.
UPDATE = f"""
UPDATE {_TABLE} SET
    name = coalesce($2, name),
    display_name = coalesce($3, display_name),
    description = coalesce($4, description),
    color = coalesce($5, color),
    display_order = coalesce($6, display_order),
    is_active = coalesce($7, is_active),
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
    if len(raw) > 100 or not SLUG.match(raw):
        raise validation_failed([FieldProblem("name", "must be a slug (lower-case letters, digits and '-')")])
    return raw


def _name_taken(name: str) -> ApiError:
    return ApiError(409, "Category already exists", [f"name '{name}' is already used by another category"])


def _in_use(name: str, items: int) -> ApiError:
    noun = "item uses" if items == 1 else "items use"
    return ApiError(409, "Category is in use",
                    [f"{items} {noun} category '{name}'; move or delete them first, or deactivate the category"])


async def list_categories(conn: Any, active: bool | None) -> list[Category]:
    return [Category.from_record(r) for r in await conn.fetch(LIST, active)]


async def get_category(conn: Any, name: str) -> Category:
    record = await conn.fetchrow(GET, name)
    if record is None:
        raise not_found("Category")
    return Category.from_record(record)


async def create_category(conn: Any, values: dict[str, Any]) -> Category:
    record = await conn.fetchrow(CREATE, values["name"], values["display_name"], values["description"],
                                 values["color"], values["display_order"], values["is_active"])
    if record is None:
        raise _name_taken(values["name"])
    return Category.from_record(record)


async def update_category(conn: Any, name: str, values: dict[str, Any]) -> Category:
    try:
        record = await conn.fetchrow(
            UPDATE, name, values.get("name"), values.get("display_name"), values.get("description"),
            values.get("color"), values.get("display_order"), values.get("is_active"),
        )
    except asyncpg.UniqueViolationError:
        raise _name_taken(values["name"]) from None
    if record is None:
        raise not_found("Category")
    return Category.from_record(record)


async def toggle_category(conn: Any, name: str) -> Category:
    record = await conn.fetchrow(TOGGLE, name)
    if record is None:
        raise not_found("Category")
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
        raise not_found("Category")
    raise _in_use(name, usage["items"])
