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


_SLUG = _string(1, v.CATEGORY_NAME_MAX, pattern=v.SLUG.pattern)
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
}
ITEM_CREATE = Schema(title="ItemCreate", type=OpenAPIType.OBJECT, required=["title", "category"],
                     properties=ITEM_PROPERTIES)
ITEM_UPDATE = Schema(title="ItemUpdate", type=OpenAPIType.OBJECT, min_properties=1, properties=ITEM_PROPERTIES,
                     description="Only the given fields change; updatedAt always moves forward")
CATEGORY_PROPERTIES = {
    "name": _SLUG,
    "displayName": _string(1, v.DISPLAY_NAME_MAX, pattern=_NOT_BLANK),
    "description": _string(0, v.CATEGORY_DESCRIPTION_MAX, pattern=_NO_NUL),
    "color": Schema(type=OpenAPIType.STRING, pattern=v.COLOR.pattern, default="#6B7280"),
    "displayOrder": Schema(type=OpenAPIType.INTEGER, minimum=-v.INT32, maximum=v.INT32, default=0),
    "isActive": Schema(type=OpenAPIType.BOOLEAN, default=True),
}
CATEGORY_CREATE = Schema(title="CategoryCreate", type=OpenAPIType.OBJECT, required=["name"],
                         properties=CATEGORY_PROPERTIES)
CATEGORY_UPDATE = Schema(title="CategoryUpdate", type=OpenAPIType.OBJECT, min_properties=1,
                         properties=CATEGORY_PROPERTIES, description="Only the given fields change; a new name is carried to its items")


def with_body(schema: Schema) -> type[Operation]:
    @dataclass
    class _Operation(Operation):
        def __post_init__(self) -> None:
            self.request_body = RequestBody(content={"application/json": OpenAPIMediaType(schema=schema)}, required=True)

    return _Operation
