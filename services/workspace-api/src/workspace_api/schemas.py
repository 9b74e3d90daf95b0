"""Request and response bodies.

Requests (ItemCreate/ItemUpdate, CategoryCreate/CategoryUpdate): each field's rules are Meta
constraints, so msgspec checks them, ts_runtime.api_core.problems names every bad field at once and
the OpenAPI document shows the same rules (openapi.py generates it from these structs). Unknown
fields are ignored, as the old API did. An update's fields default to UNSET: only the given ones
change. The few rules a constraint cannot say (not blank, metadata's contents, two spellings that
disagree) are in validation.py.

Responses: the old envelope `{"success": true, "data": …, "count"?, "message"?}`.

Field names follow the old service. Its categories were snake_case (`display_name`, `is_active`,
`id` equal to `name`); its items were camelCase plus the database's `created_at`/`updated_at`.
Each struct carries the old names, then the other spelling that current clients read, with the
same value: one JSON object serves both.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec
from msgspec import UNSET, Meta, UnsetType

from ts_runtime.api_core.problems import PROBLEM

PRIORITIES = ("low", "medium", "high", "critical")
STATUSES = ("new", "review", "in-progress", "completed", "rejected")
TITLE_MAX = 200
DESCRIPTION_MAX = 2000
TAGS_MAX = 50
TAG_MAX = 100
CATEGORY_NAME_MAX = 100
# 120: what the old dashboard's category form lets a user type.
DISPLAY_NAME_MAX = 120
CATEGORY_DESCRIPTION_MAX = 500
ICON_MAX = 100
CREATED_BY_MAX = 255
SEARCH_MAX = 200
INT32 = 2**31 - 1
# An item's metadata: at most as much JSON as the API accepts in one request body.
METADATA_MAX_BYTES = 256 * 1024
DEFAULT_COLOR = "#6B7280"

# msgspec matches a pattern with re.search, where `$` also matches before a final newline
# ("nl-x\n" would pass `^[a-z0-9-]+$` and reach the database's CHECK): `(?!\n)$` is the end of
# the string in Python, and the same in ECMA-262 (the OpenAPI reader's dialect).
SLUG_PATTERN = r"^[a-z0-9-]+(?!\n)$"
COLOR_PATTERN = r"^#[0-9A-Fa-f]{6}(?!\n)$"
SLUG_PROBLEM = "must be a slug (lower-case letters, digits and '-')"
COLOR_PROBLEM = "must be a colour like #3B82F6"
# PostgreSQL text cannot hold NUL.
_NO_NUL = Meta(pattern=r"^[^\x00]*$", extra={PROBLEM: "must not contain NUL characters"})


def _says(problem: str) -> Meta:
    """The sentence for a value of the wrong type (see ts_runtime.api_core.problems)."""
    return Meta(extra={PROBLEM: problem})


def _text(min_length: int, max_length: int, description: str | None = None) -> Any:
    return Annotated[str, Meta(min_length=min_length or None, max_length=max_length, description=description),
                     _NO_NUL]


Title = _text(1, TITLE_MAX, "not blank")
Description = _text(0, DESCRIPTION_MAX)
Slug = Annotated[str, Meta(min_length=1, max_length=CATEGORY_NAME_MAX),
                 Meta(pattern=SLUG_PATTERN, extra={PROBLEM: SLUG_PROBLEM})]
Priority = Literal[PRIORITIES]  # type: ignore[valid-type]
Status = Literal[STATUSES]  # type: ignore[valid-type]
Tags = Annotated[list[_text(1, TAG_MAX)], _says("must be a list of strings"),
                 Meta(max_length=TAGS_MAX, extra={PROBLEM: f"must have at most {TAGS_MAX} tags"})]
# Any JSON value here: its rules (an object jsonb can hold, at most METADATA_MAX_BYTES) are
# validation.metadata_problem, shared with the LowDB importer.
Metadata = Annotated[Any, Meta(
    description=f"free-form JSON object, replaced whole when given (null: {{}}); no NUL (\\u0000) anywhere, "
                f"at most {METADATA_MAX_BYTES // 1024} KiB of JSON",
    extra_json_schema={"anyOf": [{"type": "object", "additionalProperties": True}, {"type": "null"}]})]
CategorySlug = Annotated[Slug, Meta(description="slug of an active category")]
DisplayName = _text(1, DISPLAY_NAME_MAX, "not blank")
CategoryDescription = _text(0, CATEGORY_DESCRIPTION_MAX)
Color = Annotated[str, _says(COLOR_PROBLEM), Meta(pattern=COLOR_PATTERN, extra={PROBLEM: COLOR_PROBLEM})]
Icon = _text(1, ICON_MAX)
_INT32_PROBLEM = f"must be an integer between {-INT32} and {INT32}"
DisplayOrder = Annotated[int, _says(_INT32_PROBLEM),
                         Meta(ge=-INT32, le=INT32, description="default: after the last category")]
CreatedBy = _text(1, CREATED_BY_MAX)
SearchText = _text(0, SEARCH_MAX)


class ItemCreate(msgspec.Struct, kw_only=True):
    """POST /api/items, and an item of the LowDB import (null in description, tags, metadata: empty)."""

    title: Title
    category: CategorySlug
    description: Description | None = ""
    priority: Priority = "medium"
    status: Status = "new"
    tags: Tags | None = []
    metadata: Metadata = {}


class ItemUpdate(msgspec.Struct, kw_only=True):
    """PUT /api/items/{id}: only the given fields change; metadata is replaced whole, never merged."""

    title: Title | UnsetType = UNSET
    category: CategorySlug | UnsetType = UNSET
    description: Description | None | UnsetType = UNSET
    priority: Priority | UnsetType = UNSET
    status: Status | UnsetType = UNSET
    tags: Tags | None | UnsetType = UNSET
    metadata: Metadata = UNSET


class _CategoryFields(msgspec.Struct, kw_only=True):
    # Each column under the old API's snake_case name, today's camelCase one and the old PUT's
    # `sort_order`; validation.category_values merges them (two different values are refused).
    display_name: DisplayName | UnsetType = UNSET
    displayName: DisplayName | UnsetType = UNSET
    description: CategoryDescription | None | UnsetType = UNSET
    color: Color | UnsetType = UNSET
    icon: Icon | None | UnsetType = UNSET
    display_order: DisplayOrder | UnsetType = UNSET
    displayOrder: DisplayOrder | UnsetType = UNSET
    sort_order: DisplayOrder | UnsetType = UNSET
    is_active: bool | UnsetType = UNSET
    isActive: bool | UnsetType = UNSET


class CategoryCreate(_CategoryFields, kw_only=True):
    """POST /api/categories (and a category of the LowDB import): snake_case or camelCase."""

    name: Slug
    # Who created it: set once, on create (the old API never changed it afterwards).
    created_by: CreatedBy | None | UnsetType = UNSET
    createdBy: CreatedBy | None | UnsetType = UNSET


class CategoryUpdate(_CategoryFields, kw_only=True):
    """PUT /api/categories/{name}: only the given fields change; a new name moves its items."""

    name: Slug | UnsetType = UNSET


class ItemQuery(msgspec.Struct, kw_only=True):
    """The free-text filters of GET /api/items (an empty value means "any")."""

    category: Slug | None = None
    search: SearchText | None = None


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
