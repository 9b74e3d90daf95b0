"""/api/categories (also served as /categories): list, get by name, create, update, toggle, delete."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from litestar import Request, Response, delete, get, patch, post, put
from litestar.di import Provide
from litestar.params import PathParameter, QueryParameter

from ts_runtime.api_core.dependencies import REQUEST_INPUT, DbConnection, RequestInput

from .. import openapi
from ..routing import both
from ..schemas import CategoryList, CategoryResponse, Deleted
from ..validation import CATEGORY_NAME_MAX, CATEGORY_ORDERS, category_from_body
from . import service

MAX_BODY_BYTES = 64 * 1024
_PATHS = both("/api/categories")
_ONE = both("/api/categories/{name:str}")
_TOGGLE = both("/api/categories/{name:str}/toggle")
_TAGS = ["categories"]
Name = Annotated[str, PathParameter(description="the category's slug (anything else: 400)",
                                    schema_extra={"pattern": f"^[a-z0-9-]{{1,{CATEGORY_NAME_MAX}}}$"})]
OrderBy = Literal[CATEGORY_ORDERS]  # type: ignore[valid-type]
_ERRORS = {400: openapi.VALIDATION, 404: openapi.NOT_FOUND, 503: openapi.UNAVAILABLE}


@get(_PATHS, operation_id=openapi.operation_id("listCategories"), tags=_TAGS,
     summary="Active categories in display order (active_only=false: all of them)",
     responses={400: openapi.VALIDATION, 503: openapi.UNAVAILABLE})
async def list_categories(
    db_connection: DbConnection,
    active_only: Annotated[bool | None, QueryParameter(
        description="true (the default): active ones only; false: inactive ones too (the old dashboard's flag)")] = None,
    active: Annotated[bool | None, QueryParameter(
        description="exactly the active (true) or the inactive (false) ones; wins over active_only")] = None,
    order_by: Annotated[OrderBy | None, QueryParameter(description="default display_order (then name)")] = None,
) -> CategoryList:
    if active is None and active_only is not False:
        active = True  # the old contract: a plain GET lists the active categories
    categories = await service.list_categories(db_connection, active, order_by or "display_order")
    return CategoryList(success=True, count=len(categories), data=categories)


# What each route checks before it takes a connection (ts_runtime.api_core.dependencies:
# `request_input`): a malformed name or body is a 400 even while the database is down.
async def _name(name: Name) -> str:
    return service.check_name(name)


async def _new_category(request: Request) -> dict[str, Any]:
    return category_from_body(await request.body(), partial=False)


async def _category_change(request: Request, name: Name) -> tuple[str, dict[str, Any]]:
    name = service.check_name(name)
    return name, category_from_body(await request.body(), partial=True)


_BY_NAME = {REQUEST_INPUT: Provide(_name)}


@get(_ONE, operation_id=openapi.operation_id("getCategory"), tags=_TAGS,
     summary="One category by name, active or not", responses=_ERRORS, dependencies=_BY_NAME)
async def get_category(request_input: RequestInput[str], db_connection: DbConnection) -> CategoryResponse:
    category = await service.get_category(db_connection, request_input)
    return CategoryResponse(success=True, data=category)


@post(_PATHS, operation_id=openapi.operation_id("createCategory"), tags=_TAGS, summary="Create a category",
      operation_class=openapi.with_body(openapi.CATEGORY_CREATE), request_max_body_size=MAX_BODY_BYTES,
      responses={400: openapi.VALIDATION, 409: openapi.error("The name is taken"), 503: openapi.UNAVAILABLE},
      dependencies={REQUEST_INPUT: Provide(_new_category)})
async def create_category(request_input: RequestInput[dict], db_connection: DbConnection) -> Response[CategoryResponse]:
    category = await service.create_category(db_connection, request_input)
    return Response(CategoryResponse(success=True, data=category, message="Category created successfully"),
                    status_code=201)


@put(_ONE, operation_id=openapi.operation_id("updateCategory"), tags=_TAGS,
     summary="Change the given fields (a rename moves its items)",
     operation_class=openapi.with_body(openapi.CATEGORY_UPDATE), request_max_body_size=MAX_BODY_BYTES,
     responses={**_ERRORS, 409: openapi.error("The new name is taken")},
     dependencies={REQUEST_INPUT: Provide(_category_change)})
async def update_category(request_input: RequestInput[tuple[str, dict]], db_connection: DbConnection) -> CategoryResponse:
    name, values = request_input
    category = await service.update_category(db_connection, name, values)
    return CategoryResponse(success=True, data=category, message="Category updated successfully")


@patch(_TOGGLE, operation_id=openapi.operation_id("toggleCategory"), tags=_TAGS, summary="Flip is_active",
       responses=_ERRORS, dependencies=_BY_NAME)
async def toggle_category(request_input: RequestInput[str], db_connection: DbConnection) -> CategoryResponse:
    category = await service.toggle_category(db_connection, request_input)
    state = "activated" if category.is_active else "deactivated"
    return CategoryResponse(success=True, data=category, message=f"Category {state}")


# 200 with a body, as the old service answered: the old dashboard parses the answer of a DELETE
# (`await response.json()`), which fails on an empty 204.
@delete(_ONE, operation_id=openapi.operation_id("deleteCategory"), tags=_TAGS, status_code=200,
        summary="Delete a category no item uses", responses={**_ERRORS, 409: openapi.error("Items still use the category")},
        dependencies=_BY_NAME)
async def delete_category(request_input: RequestInput[str], db_connection: DbConnection) -> Deleted:
    await service.delete_category(db_connection, request_input)
    return Deleted(success=True, message="Category deleted successfully")


route_handlers = [list_categories, get_category, create_category, update_category, toggle_category,
                  delete_category]
