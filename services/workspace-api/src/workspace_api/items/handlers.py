"""/api/items (also served as /items, the old un-prefixed paths): thin handlers over the service."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal
from uuid import UUID

from litestar import Request, Response, delete, get, post, put
from litestar.datastructures import ResponseHeader, State
from litestar.di import NamedDependency, Provide
from litestar.params import HeaderParameter, PathParameter, QueryParameter

from ts_runtime.api_core.dependencies import REQUEST_INPUT, DbConnection, RequestInput

from .. import openapi
from ..errors import validation_failed
from ..etag import IfMatch, etag_for
from ..routing import both
from ..schemas import AppliedFilters, Deleted, ItemList, ItemResponse
from ..validation import PRIORITIES, SEARCH_MAX, STATUSES, item_filter_problems, item_from_body
from . import service
from .service import ItemFilters

MAX_BODY_BYTES = 256 * 1024
PATHS = both("/api/items")
ITEM_PATHS = both("/api/items/{item_id:str}")
# "" is "any" (the old dashboard's "all" choice sent `?status=`).
Status = Literal[("", *STATUSES)]  # type: ignore[valid-type]
Priority = Literal[("", *PRIORITIES)]  # type: ignore[valid-type]
_ETAG = [ResponseHeader(name="ETag", description="the item's version (from updatedAt); send it back in If-Match",
                        documentation_only=True)]
IfMatchHeader = Annotated[str | None, HeaderParameter(
    name="If-Match", required=False, description="ETag of the version being changed; 412 if it is stale",
    schema_extra={"pattern": r'^(\*|(W/)?"[0-9]{1,18}"(\s*,\s*(W/)?"[0-9]{1,18}")*)$'})]
ItemId = Annotated[str, PathParameter(
    description="the item's UUID, or the old LowDB id (`item-<ms>-<random>`) it was imported under; anything else: 400",
    schema_extra={"pattern": r"^([0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}"
                             r"|item-[0-9]{1,20}-[0-9a-z]{0,16})$"})]
_TAGS = ["items"]


def _with_etag(body: ItemResponse, status_code: int = 200, **headers: str) -> Response[ItemResponse]:
    return Response(body, status_code=status_code, headers={"ETag": etag_for(body.data.updated_at), **headers})


async def _search_collation(state: State, db_connection: DbConnection) -> str:
    # The app's Database finds it once (db.Database.search_collation), on the request's connection.
    return await state.db.search_collation(db_connection)


@get(PATHS, operation_id=openapi.operation_id("listItems"), tags=_TAGS,
     summary="Items, newest first, filtered and paged",
     responses={400: openapi.VALIDATION, 503: openapi.UNAVAILABLE},
     dependencies={"search_collation": Provide(_search_collation)})
async def list_items(
    db_connection: DbConnection,
    search_collation: NamedDependency[str],
    # Checked by item_filter_problems (fullmatch); the patterns here are for the OpenAPI document.
    category: Annotated[str | None, QueryParameter(description="category slug", schema_extra={
        "pattern": "^[a-z0-9-]*$", "maxLength": 100})] = None,
    status: Annotated[Status | None, QueryParameter(description=" / ".join(STATUSES))] = None,
    priority: Annotated[Priority | None, QueryParameter(description=" / ".join(PRIORITIES))] = None,
    search: Annotated[str | None, QueryParameter(description="case-insensitive, in title, description and tags",
                                                 schema_extra={"pattern": r"^[^\x00]*$", "maxLength": SEARCH_MAX})] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=1000, description="items per page (1..1000)")] = 1000,
    offset: Annotated[int, QueryParameter(ge=0, le=10_000_000, description="items to skip")] = 0,
) -> ItemList:
    problems = item_filter_problems(category, search)
    if problems:
        raise validation_failed(problems)
    # An empty filter (`?status=`) means "any".
    filters = ItemFilters(category=category or None, status=status or None, priority=priority or None,
                          search=search or None, limit=limit, offset=offset)
    items, total = await service.list_items(db_connection, filters, search_collation)
    applied = AppliedFilters(limit=limit, offset=offset, category=filters.category, status=filters.status,
                             priority=filters.priority, search=filters.search)
    return ItemList(success=True, data=items, count=len(items), total=total, limit=limit, offset=offset,
                    filters=applied)


# What each route checks before it takes a connection (ts_runtime.api_core.dependencies:
# `request_input`): a malformed id or body is a 400 even while the database is down.
async def _new_item(request: Request) -> dict[str, Any]:
    return item_from_body(await request.body(), partial=False)


async def _item_ref(item_id: ItemId) -> UUID | str:
    return service.parse_id(item_id)


@dataclass(frozen=True)
class _Change:
    ref: UUID | str
    values: dict[str, Any]
    if_match: IfMatch | None


async def _item_change(request: Request, item_id: ItemId, if_match: IfMatchHeader = None) -> _Change:
    ref = service.parse_id(item_id)
    return _Change(ref, item_from_body(await request.body(), partial=True), IfMatch.parse(if_match))


async def _item_removal(item_id: ItemId, if_match: IfMatchHeader = None) -> _Change:
    return _Change(service.parse_id(item_id), {}, IfMatch.parse(if_match))


@post(PATHS, operation_id=openapi.operation_id("createItem"), tags=_TAGS, summary="Create an item",
      operation_class=openapi.with_body(openapi.ITEM_CREATE), request_max_body_size=MAX_BODY_BYTES,
      response_headers=_ETAG, responses={400: openapi.VALIDATION, 503: openapi.UNAVAILABLE},
      dependencies={REQUEST_INPUT: Provide(_new_item)})
async def create_item(request_input: RequestInput[dict], db_connection: DbConnection) -> Response[ItemResponse]:
    item = await service.create_item(db_connection, request_input)
    body = ItemResponse(success=True, data=item, message="Item created successfully")
    return _with_etag(body, 201, Location=f"/api/items/{item.id}")


@get(ITEM_PATHS, operation_id=openapi.operation_id("getItem"), tags=_TAGS, summary="One item",
     response_headers=_ETAG, dependencies={REQUEST_INPUT: Provide(_item_ref)},
     responses={400: openapi.VALIDATION, 404: openapi.NOT_FOUND, 503: openapi.UNAVAILABLE})
async def get_item(request_input: RequestInput[UUID | str], db_connection: DbConnection) -> Response[ItemResponse]:
    item = await service.get_item(db_connection, await service.resolve_id(db_connection, request_input))
    return _with_etag(ItemResponse(success=True, data=item))


@put(ITEM_PATHS, operation_id=openapi.operation_id("updateItem"), tags=_TAGS,
     summary="Change the given fields (If-Match: only if unchanged since that ETag)",
     operation_class=openapi.with_body(openapi.ITEM_UPDATE), request_max_body_size=MAX_BODY_BYTES,
     response_headers=_ETAG, dependencies={REQUEST_INPUT: Provide(_item_change)},
     responses={400: openapi.VALIDATION, 404: openapi.NOT_FOUND,
                412: openapi.error("The item changed since the If-Match ETag"), 503: openapi.UNAVAILABLE})
async def update_item(request_input: RequestInput[_Change], db_connection: DbConnection) -> Response[ItemResponse]:
    change = request_input
    item_uuid = await service.resolve_id(db_connection, change.ref)
    item = await service.update_item(db_connection, item_uuid, change.values, change.if_match)
    return _with_etag(ItemResponse(success=True, data=item, message="Item updated successfully"))


# 200 with a body, as the old service answered (not 204): its clients parse the answer.
@delete(ITEM_PATHS, operation_id=openapi.operation_id("deleteItem"), tags=_TAGS, summary="Delete an item",
        status_code=200, dependencies={REQUEST_INPUT: Provide(_item_removal)},
        responses={400: openapi.VALIDATION, 404: openapi.NOT_FOUND,
                   412: openapi.error("The item changed since the If-Match ETag"), 503: openapi.UNAVAILABLE})
async def delete_item(request_input: RequestInput[_Change], db_connection: DbConnection) -> Deleted:
    removal = request_input
    await service.delete_item(db_connection, await service.resolve_id(db_connection, removal.ref), removal.if_match)
    return Deleted(success=True, message="Item deleted successfully")


route_handlers = [list_items, create_item, get_item, update_item, delete_item]
