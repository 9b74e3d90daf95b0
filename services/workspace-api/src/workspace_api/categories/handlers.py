"""/api/categories: list, get by name, create, update, delete (refused while in use), toggle active."""

from __future__ import annotations

from typing import Annotated

from litestar import Request, Response, delete, get, patch, post, put
from litestar.params import PathParameter, QueryParameter

from .. import openapi
from ..errors import validation_failed
from ..schemas import CategoryList, CategoryResponse
from ..validation import BodyError, decode_object, validate_category
from . import service

MAX_BODY_BYTES = 64 * 1024
_PATH = "/api/categories"
_ONE = "/api/categories/{name:str}"
_TAGS = ["categories"]
Name = Annotated[str, PathParameter(description="the category's slug (anything else: 400)",
                                    schema_extra={"pattern": r"^[a-z0-9-]{1,100}$"})]
_ERRORS = {400: openapi.VALIDATION, 404: openapi.NOT_FOUND, 503: openapi.UNAVAILABLE}


def _body(raw: bytes, *, partial: bool) -> dict:
    try:
        data = decode_object(raw)
    except BodyError as exc:
        raise validation_failed([exc.problem]) from None
    values, problems = validate_category(data, partial=partial)
    if problems:
        raise validation_failed(problems)
    return values


@get(_PATH, operation_id="listCategories", tags=_TAGS, summary="Categories in display order",
     responses={400: openapi.VALIDATION, 503: openapi.UNAVAILABLE})
async def list_categories(
    request: Request,
    active: Annotated[bool | None, QueryParameter(description="only active (true) or inactive (false) ones")] = None,
) -> CategoryList:
    async with request.app.state.db.acquire() as conn:
        categories = await service.list_categories(conn, active)
    return CategoryList(success=True, data=categories, count=len(categories))


@get(_ONE, operation_id="getCategory", tags=_TAGS, summary="One category, by name", responses=_ERRORS)
async def get_category(request: Request, name: Name) -> CategoryResponse:
    async with request.app.state.db.acquire() as conn:
        category = await service.get_category(conn, service.check_name(name))
    return CategoryResponse(success=True, data=category)


@post(_PATH, operation_id="createCategory", tags=_TAGS, summary="Create a category",
      operation_class=openapi.with_body(openapi.CATEGORY_CREATE), request_max_body_size=MAX_BODY_BYTES,
      responses={400: openapi.VALIDATION, 409: openapi.error("The name is taken"), 503: openapi.UNAVAILABLE})
async def create_category(request: Request) -> Response[CategoryResponse]:
    values = _body(await request.body(), partial=False)
    async with request.app.state.db.acquire() as conn:
        category = await service.create_category(conn, values)
    return Response(CategoryResponse(success=True, data=category, message="Category created successfully"),
                    status_code=201)


@put(_ONE, operation_id="updateCategory", tags=_TAGS, summary="Change the given fields (a rename moves its items)",
     operation_class=openapi.with_body(openapi.CATEGORY_UPDATE), request_max_body_size=MAX_BODY_BYTES,
     responses={**_ERRORS, 409: openapi.error("The new name is taken")})
async def update_category(request: Request, name: Name) -> CategoryResponse:
    name = service.check_name(name)
    values = _body(await request.body(), partial=True)
    async with request.app.state.db.acquire() as conn:
        category = await service.update_category(conn, name, values)
    return CategoryResponse(success=True, data=category, message="Category updated successfully")


@patch(f"{_ONE}/toggle", operation_id="toggleCategory", tags=_TAGS, summary="Flip isActive",
       responses=_ERRORS)
async def toggle_category(request: Request, name: Name) -> CategoryResponse:
    async with request.app.state.db.acquire() as conn:
        category = await service.toggle_category(conn, service.check_name(name))
    state = "activated" if category.is_active else "deactivated"
    return CategoryResponse(success=True, data=category, message=f"Category {state}")


@delete(_ONE, operation_id="deleteCategory", tags=_TAGS, summary="Delete a category no item uses",
        responses={**_ERRORS, 409: openapi.error("Items still use the category")})
async def delete_category(request: Request, name: Name) -> None:
    async with request.app.state.db.acquire() as conn:
        await service.delete_category(conn, service.check_name(name))


route_handlers = [list_categories, get_category, create_category, update_category, toggle_category, delete_category]
