"""OpenAPI helpers: request bodies validated by hand (to name every bad field) declared here,
error responses, and operation ids for the paths also served without the `/api` prefix."""

from __future__ import annotations

from dataclasses import dataclass

from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIType, Operation, RequestBody, Schema

from . import validation as v
from .errors import ErrorBody


def operation_id(name: str):
    """`listItems` for /api/items, `legacyListItems` for the old un-prefixed /items."""

    def create(_handler, _method, path_components: list) -> str:
        if path_components and str(path_components[0]) == "api":
            return name
        return "legacy" + name[0].upper() + name[1:]

    return create


def error(description: str) -> ResponseSpec:
    return ResponseSpec(ErrorBody, description=description, generate_examples=False)


VALIDATION = error("Validation failed: `details`/`errors` name each bad field")
NOT_FOUND = error("Not found")
UNAVAILABLE = error("Database connection failed: retry later")


def _string(min_length: int, max_length: int, **extra) -> Schema:
    return Schema(type=OpenAPIType.STRING, min_length=min_length or None, max_length=max_length, **extra)


_SLUG = _string(1, v.CATEGORY_NAME_MAX, pattern=v.SLUG_PATTERN)
# Any Unicode but NUL (PostgreSQL text cannot hold it); "non-blank" needs one non-space character.
_NO_NUL = r"^[^\x00]*$"
_NOT_BLANK = r"^[^\x00]*[^\s\x00][^\x00]*$"
ITEM_PROPERTIES = {
    "title": _string(1, v.TITLE_MAX, pattern=_NOT_BLANK),
    "description": Schema(one_of=[_string(0, v.DESCRIPTION_MAX, pattern=_NO_NUL), Schema(type=OpenAPIType.NULL)]),
    "category": Schema(**{**_SLUG.__dict__, "description": "slug of an active category"}),
    "priority": Schema(type=OpenAPIType.STRING, enum=list(v.PRIORITIES), default="medium"),
    "status": Schema(type=OpenAPIType.STRING, enum=list(v.STATUSES), default="new"),
    "tags": Schema(one_of=[Schema(type=OpenAPIType.ARRAY, items=_string(1, v.TAG_MAX, pattern=_NO_NUL),
                                  max_items=v.TAGS_MAX), Schema(type=OpenAPIType.NULL)]),
    "metadata": Schema(one_of=[Schema(type=OpenAPIType.OBJECT, additional_properties=True), Schema(type=OpenAPIType.NULL)],
                       description=f"free-form JSON object, replaced whole when given (null: {{}}); no NUL "
                                   f"(\\u0000) anywhere, at most {v.METADATA_MAX_BYTES // 1024} KiB of JSON"),
}
ITEM_CREATE = Schema(title="ItemCreate", type=OpenAPIType.OBJECT, required=["title", "category"],
                     properties=ITEM_PROPERTIES)
ITEM_UPDATE = Schema(title="ItemUpdate", type=OpenAPIType.OBJECT, min_properties=1, properties=ITEM_PROPERTIES,
                     description="Only the given fields change (metadata is replaced whole, never merged); "
                                 "updatedAt always moves forward")
_NULL = Schema(type=OpenAPIType.NULL)
_DISPLAY_ORDER = Schema(type=OpenAPIType.INTEGER, minimum=-v.INT32, maximum=v.INT32,
                        description="default: after the last category")
_CATEGORY_SCHEMAS = {
    "name": _SLUG,
    "display_name": _string(1, v.DISPLAY_NAME_MAX, pattern=_NOT_BLANK),
    "description": Schema(one_of=[_string(0, v.CATEGORY_DESCRIPTION_MAX, pattern=_NO_NUL), _NULL]),
    "color": Schema(type=OpenAPIType.STRING, pattern=v.COLOR_PATTERN, default="#6B7280"),
    "icon": Schema(one_of=[_string(1, v.ICON_MAX, pattern=_NO_NUL), _NULL]),
    "display_order": _DISPLAY_ORDER,
    "is_active": Schema(type=OpenAPIType.BOOLEAN, default=True),
    "created_by": Schema(one_of=[_string(1, v.CREATED_BY_MAX, pattern=_NO_NUL), _NULL]),
}


def _category_properties(*, updatable_only: bool) -> dict[str, Schema]:
    """Every JSON name a category field is accepted under (snake_case, camelCase, `sort_order`)."""
    return {name: _CATEGORY_SCHEMAS[spec.column] for spec in v.CATEGORY_FIELDS
            if spec.updatable or not updatable_only for name in spec.names}


CATEGORY_CREATE = Schema(title="CategoryCreate", type=OpenAPIType.OBJECT, required=["name"],
                         properties=_category_properties(updatable_only=False),
                         description="snake_case (the old API's names) or camelCase; the same field under two "
                                     "names must carry the same value")
CATEGORY_UPDATE = Schema(title="CategoryUpdate", type=OpenAPIType.OBJECT, min_properties=1,
                         properties=_category_properties(updatable_only=True),
                         description="Only the given fields change; a new name is carried to its items; "
                                     "icon null clears it")


def with_body(schema: Schema) -> type[Operation]:
    @dataclass
    class _Operation(Operation):
        def __post_init__(self) -> None:
            self.request_body = RequestBody(content={"application/json": OpenAPIMediaType(schema=schema)}, required=True)

    return _Operation
