"""Paths served twice, with and without `/api`.

The old service mounted each router at `/api/<resource>` and at `/<resource>` (its Traefik route
rewrote `/api/workspace/X` to `/X`), so every path here is declared in both forms. (OPTIONS
answers list every method of a path: the core plugin's `options_allow` middleware sees to that.)
"""

from __future__ import annotations


def both(path: str) -> list[str]:
    """`/api/items/{id}` → [`/api/items/{id}`, `/items/{id}`]."""
    return [path, path.removeprefix("/api")]
