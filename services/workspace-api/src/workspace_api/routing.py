"""Paths served twice (with and without `/api`) and OPTIONS answers that list every method.

The old service mounted each router at `/api/<resource>` and at `/<resource>` (its Traefik route
rewrote `/api/workspace/X` to `/X`), so every path here is declared in both forms.

Litestar 2 builds a path's automatic OPTIONS handler when the path's first handler is registered
and never updates it (litestar-org/litestar#4169, fixed in Litestar 3): `OPTIONS /api/items`
answered `Allow: GET, OPTIONS` although POST is served there too. `with_options()` puts an
explicit OPTIONS handler first for every path of a resource, built from the handlers themselves,
so the header lists exactly the methods the path serves. (CORS preflights never get here:
Litestar's CORS middleware answers them before routing.)
"""

from __future__ import annotations

from collections import defaultdict

from litestar import Response, route
from litestar.enums import HttpMethod, MediaType
from litestar.handlers import HTTPRouteHandler


def both(path: str) -> list[str]:
    """`/api/items/{id}` → [`/api/items/{id}`, `/items/{id}`]."""
    return [path, path.removeprefix("/api")]


def _options_handler(path: str, allow: str) -> HTTPRouteHandler:
    @route(path, http_method=[HttpMethod.OPTIONS], include_in_schema=False, sync_to_thread=False)
    def options() -> Response[None]:
        return Response(None, status_code=204, headers={"Allow": allow}, media_type=MediaType.TEXT)

    return options


def with_options(handlers: list[HTTPRouteHandler]) -> list[HTTPRouteHandler]:
    """`handlers`, preceded by one OPTIONS handler per path they serve (register them in this order)."""
    methods: dict[str, set[str]] = defaultdict(set)
    for handler in handlers:
        for path in handler.paths:
            methods[path].update(handler.http_methods)
    options = [_options_handler(path, ", ".join(sorted(served | {"OPTIONS"}))) for path, served in methods.items()]
    return [*options, *handlers]
