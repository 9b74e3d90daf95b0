"""Response bodies: the old envelope `{"success": true, "data": …, "count"?, "message"?}`.

Field names follow the old service. Its categories were snake_case (`display_name`, `is_active`,
`id` equal to `name`); its items were camelCase plus the database's `created_at`/`updated_at`.
Each struct carries the old names, then the other spelling that current clients read, with the
same value: one JSON object serves both.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec

# asyncpg hands jsonb over as its JSON text.
_decode_metadata = msgspec.json.Decoder(dict[str, Any]).decode


class Item(msgspec.Struct):
    id: UUID
    title: str
    description: str
    category: str
    priority: str
    status: str
    tags: list[str]
    # Free-form, as the old API answered it (`{}` when empty); written by POST and PUT (replaced
    # whole) and by the LowDB import.
    metadata: dict[str, Any]
    createdAt: datetime
    updatedAt: datetime
    # The old PostgreSQL strategy answered the row's own columns as well.
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_record(cls, record: Any) -> "Item":
        return cls(id=record["id"], title=record["title"], description=record["description"],
                   category=record["category"], priority=record["priority"], status=record["status"],
                   tags=record["tags"], metadata=_decode_metadata(record["metadata"]),
                   createdAt=record["created_at"], updatedAt=record["updated_at"],
                   created_at=record["created_at"], updated_at=record["updated_at"])


class Category(msgspec.Struct):
    # The old contract: `name` is the key, and `id` repeats it (the old schema had no other id).
    id: str
    name: str
    display_name: str
    description: str
    color: str
    icon: str | None
    display_order: int
    is_active: bool
    created_at: datetime
    updated_at: datetime
    created_by: str | None
    # The camelCase names this API answered before the old contract was restored.
    displayName: str
    displayOrder: int
    isActive: bool
    createdAt: datetime
    updatedAt: datetime

    @classmethod
    def from_record(cls, record: Any) -> "Category":
        return cls(
            id=record["name"], name=record["name"], display_name=record["display_name"],
            description=record["description"], color=record["color"], icon=record["icon"],
            display_order=record["display_order"], is_active=record["is_active"],
            created_at=record["created_at"], updated_at=record["updated_at"], created_by=record["created_by"],
            displayName=record["display_name"], displayOrder=record["display_order"],
            isActive=record["is_active"], createdAt=record["created_at"], updatedAt=record["updated_at"],
        )


class ItemResponse(msgspec.Struct, omit_defaults=True):
    success: bool
    data: Item
    message: str | None = None


class AppliedFilters(msgspec.Struct, omit_defaults=True):
    """The filters a list applied, echoed back as the old API did (`filters`)."""

    limit: int
    offset: int
    category: str | None = None
    status: str | None = None
    priority: str | None = None
    search: str | None = None


class ItemList(msgspec.Struct):
    success: bool
    data: list[Item]
    # Items on this page (the old API's field), and how many match the filters in all.
    count: int
    total: int
    limit: int
    offset: int
    filters: AppliedFilters


class Deleted(msgspec.Struct):
    """The old answer to a DELETE: 200 with a sentence (the old dashboard parses the body)."""

    success: bool
    message: str


class CategoryResponse(msgspec.Struct, omit_defaults=True):
    success: bool
    data: Category
    message: str | None = None


class CategoryList(msgspec.Struct):
    success: bool
    count: int
    data: list[Category]
