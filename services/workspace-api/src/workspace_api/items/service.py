"""Items: the SQL behind /api/items and what its results mean (404, 412, bad category)."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg
import msgspec

from ..errors import ApiError, FieldProblem, not_found, validation_failed
from ..etag import IfMatch, etag_for
from ..schemas import Item

COLUMNS = "id, title, description, category, priority, status, tags, metadata, created_at, updated_at"
# The ids the old LowDB client gave its items: `item-`, epoch milliseconds, `-`, up to 7 random
# base-36 characters. An item imported under one keeps it as `legacy_id`.
LOWDB_ID = re.compile(r"item-[0-9]{1,20}-[0-9a-z]{0,16}")
# metadata goes to PostgreSQL as JSON text, cast to jsonb in the statement.
_json = msgspec.json.Encoder()


@functools.cache
def search_queries(collation: str) -> tuple[str, str]:
    """(LIST, COUNT) with a case-insensitive search under `collation` ("" = database default)."""
    c = f' COLLATE "{collation}"' if collation else ""

    def lower(expression: str) -> str:
        return f"lower({expression}{c})"

    search = f"""($4::text IS NULL
       OR strpos({lower("title")}, {lower("$4")}) > 0
       OR strpos({lower("description")}, {lower("$4")}) > 0
       OR EXISTS (SELECT 1 FROM unnest(tags) AS tag WHERE strpos({lower("tag")}, {lower("$4")}) > 0))"""
    filters = f"""($1::text IS NULL OR category = $1)
  AND ($2::text IS NULL OR status = $2)
  AND ($3::text IS NULL OR priority = $3)
  AND {search}"""
    list_sql = f"""
SELECT {COLUMNS}, count(*) OVER () AS total
FROM workspace.workspace_items
WHERE {filters}
ORDER BY created_at DESC, id DESC
LIMIT $5 OFFSET $6
"""
    count_sql = f"SELECT count(*) FROM workspace.workspace_items WHERE {filters}"
    return list_sql, count_sql


GET = f"SELECT {COLUMNS} FROM workspace.workspace_items WHERE id = $1"
BY_LEGACY_ID = "SELECT id FROM workspace.workspace_items WHERE legacy_id = $1"
VERSION = "SELECT updated_at FROM workspace.workspace_items WHERE id = $1"

_ACTIVE_CATEGORY = "EXISTS (SELECT 1 FROM workspace.workspace_categories c WHERE c.name = {} AND c.is_active)"
# The category is checked in the same statement, so a create never lands on an inactive one.
CREATE = f"""
INSERT INTO workspace.workspace_items (title, description, category, priority, status, tags, metadata)
SELECT $1, $2, $3, $4, $5, $6::text[], $7::jsonb
WHERE {_ACTIVE_CATEGORY.format("$3")}
RETURNING {COLUMNS}
"""
# Only the given fields change (NULL parameter: keep); a given metadata replaces the whole object,
# as the old API's `metadata = $n` did. updated_at always moves forward, even within one
# microsecond, so every version has its own ETag. With If-Match ($8), the row is
# changed only if it is still at one of the given versions. A category must be active unless it
# is the item's current one (a client re-sending the whole item must not be refused for it).
UPDATE = f"""
UPDATE workspace.workspace_items SET
    title = coalesce($2, title),
    description = coalesce($3, description),
    category = coalesce($4, category),
    priority = coalesce($5, priority),
    status = coalesce($6, status),
    tags = coalesce($7::text[], tags),
    metadata = coalesce($9::jsonb, metadata),
    updated_at = greatest(clock_timestamp(), updated_at + interval '1 microsecond')
WHERE id = $1
  AND ($8::timestamptz[] IS NULL OR updated_at = ANY($8::timestamptz[]))
  AND ($4::text IS NULL OR $4 = category OR {_ACTIVE_CATEGORY.format("$4")})
RETURNING {COLUMNS}
"""
DELETE = """
DELETE FROM workspace.workspace_items
WHERE id = $1 AND ($2::timestamptz[] IS NULL OR updated_at = ANY($2::timestamptz[]))
"""
COUNT_ALL = "SELECT count(*) FROM workspace.workspace_items"


@dataclass(frozen=True)
class ItemFilters:
    category: str | None = None
    status: str | None = None
    priority: str | None = None
    search: str | None = None
    limit: int = 1000
    offset: int = 0


def parse_id(raw: str) -> UUID | str:
    """The id in a path: a UUID, or an old LowDB id (`item-…`) to look up; anything else is a 400."""
    if LOWDB_ID.fullmatch(raw):
        return raw
    try:
        return UUID(raw)
    except ValueError:
        raise validation_failed([FieldProblem("id", "must be a UUID")]) from None


async def resolve_id(conn: Any, item_id: UUID | str) -> UUID:
    """The UUID of the item `parse_id` returned: itself, or the one imported under that old id.

    The old dashboard only uses ids it has just listed, so after the import it sends UUIDs; a
    page left open across the switch still holds `item-…` ids, and its next edit finds the
    item (one read on the unique legacy_id index). The answer carries the item's UUID.
    """
    if isinstance(item_id, UUID):
        return item_id
    found = await conn.fetchval(BY_LEGACY_ID, item_id)
    if found is None:
        raise not_found("Item")
    return found


def _metadata_json(values: dict[str, Any]) -> str | None:
    metadata = values.get("metadata")
    return None if metadata is None else _json.encode(metadata).decode()


def _category_problem(category: str) -> ApiError:
    return validation_failed([FieldProblem("category", f"must be an active category ('{category}' is unknown or inactive)")])


def _precondition_failed(current: Any) -> ApiError:
    return ApiError(412, "Precondition failed: the item was changed by someone else",
                    [f"If-Match does not match the current ETag {etag_for(current)}; fetch the item and retry"],
                    headers={"ETag": etag_for(current)})


async def list_items(conn: Any, filters: ItemFilters, collation: str = "") -> tuple[list[Item], int]:
    list_sql, count_sql = search_queries(collation)
    args = (filters.category, filters.status, filters.priority, filters.search)
    records = await conn.fetch(list_sql, *args, filters.limit, filters.offset)
    if records:
        total = records[0]["total"]
    else:
        # Past the last page the window count has no row to ride on.
        total = await conn.fetchval(count_sql, *args) if filters.offset else 0
    items = [Item.from_record(r) for r in records]
    return items, total


async def get_item(conn: Any, item_id: UUID) -> Item:
    record = await conn.fetchrow(GET, item_id)
    if record is None:
        raise not_found("Item")
    return Item.from_record(record)


async def create_item(conn: Any, values: dict[str, Any]) -> Item:
    try:
        record = await conn.fetchrow(CREATE, values["title"], values["description"], values["category"],
                                     values["priority"], values["status"], values["tags"], _metadata_json(values))
    except asyncpg.ForeignKeyViolationError:
        # The category was there when the statement looked, and deleted (or renamed) by a
        # concurrent request before the row was written: the same answer as "unknown category".
        raise _category_problem(values["category"]) from None
    if record is None:
        raise _category_problem(values["category"])
    return Item.from_record(record)


async def update_item(conn: Any, item_id: UUID, values: dict[str, Any], if_match: IfMatch | None) -> Item:
    versions = if_match.sql_versions if if_match else None
    try:
        record = await conn.fetchrow(
            UPDATE, item_id, values.get("title"), values.get("description"), values.get("category"),
            values.get("priority"), values.get("status"), values.get("tags"), versions, _metadata_json(values),
        )
    except asyncpg.ForeignKeyViolationError:
        # As in create_item: the new category went away between the check and the write.
        raise _category_problem(values["category"]) from None
    if record is not None:
        return Item.from_record(record)
    # Nothing changed: say why.
    current = await conn.fetchval(VERSION, item_id)
    if current is None:
        raise not_found("Item")
    if versions is not None and current not in versions:
        raise _precondition_failed(current)
    raise _category_problem(values["category"])


async def delete_item(conn: Any, item_id: UUID, if_match: IfMatch | None) -> None:
    versions = if_match.sql_versions if if_match else None
    status = await conn.execute(DELETE, item_id, versions)
    if status.split()[-1] != "0":
        return
    current = await conn.fetchval(VERSION, item_id)
    if current is None:
        raise not_found("Item")
    raise _precondition_failed(current)


async def count_items(conn: Any) -> int:
    return await conn.fetchval(COUNT_ALL)
