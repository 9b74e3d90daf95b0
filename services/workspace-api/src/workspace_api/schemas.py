"""Response bodies: the old envelope `{"success": true, "data": …, "count"?, "message"?}`, camelCase."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec


class Item(msgspec.Struct, rename="camel"):
    id: UUID
    title: str
    description: str
    category: str
    priority: str
    status: str
    tags: list[str]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_record(cls, record: Any) -> "Item":
        return cls(**dict(record.items()))


class Category(msgspec.Struct, rename="camel"):
    id: UUID
    name: str
    display_name: str
    description: str
    color: str
    display_order: int
    is_active: bool
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_record(cls, record: Any) -> "Category":
        return cls(**dict(record.items()))


class ItemResponse(msgspec.Struct, omit_defaults=True):
    success: bool
    data: Item
    message: str | None = None


class ItemList(msgspec.Struct):
    success: bool
    data: list[Item]
    # Items on this page (the old API's field), and how many match the filters in all.
    count: int
    total: int
    limit: int
    offset: int


class CategoryResponse(msgspec.Struct, omit_defaults=True):
    success: bool
    data: Category
    message: str | None = None


class CategoryList(msgspec.Struct):
    success: bool
    data: list[Category]
    count: int
