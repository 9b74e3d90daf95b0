"""OpenAPI helpers: request bodies (generated from the structs the handlers decode with), error
responses, and operation ids for the paths also served without the `/api` prefix."""

from __future__ import annotations

from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Operation, Schema

from ts_runtime.api_core.openapi import json_schema, request_body

from .errors import ErrorBody
from .schemas import CategoryCreate, CategoryUpdate, ItemCreate, ItemUpdate


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


# Generated from the request structs (schemas.py), which the handlers decode with: the document
# shows the rules msgspec applies. Two facts the structs do not say are added: an update must
# change something, and which names of a category field are spellings of one column.
ITEM_CREATE = json_schema(ItemCreate)
ITEM_UPDATE = json_schema(ItemUpdate, minProperties=1,
                          description="Only the given fields change (metadata is replaced whole, never merged); "
                                      "updatedAt always moves forward")
CATEGORY_CREATE = json_schema(CategoryCreate,
                              description="snake_case (the old API's names) or camelCase; the same field under two "
                                          "names must carry the same value")
CATEGORY_UPDATE = json_schema(CategoryUpdate, minProperties=1,
                              description="Only the given fields change; a new name is carried to its items; "
                                          "icon null clears it")


def with_body(schema: Schema) -> type[Operation]:
    return request_body(schema)
