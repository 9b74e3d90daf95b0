"""OpenAPI request bodies generated from the msgspec types that decode them.

A handler that decodes its body itself (`decode_struct`, to name every bad field) takes no typed
`data` parameter, so Litestar cannot infer its request schema. `request_body(T)` builds it from T
with `msgspec.json.schema_components`: the document shows exactly the rules the decoder applies
(lengths, patterns, ranges) and cannot drift from them.

    @post("/api/items", operation_class=request_body(ItemCreate))
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import msgspec
from litestar.openapi.spec import OpenAPIMediaType, Operation, RequestBody, Schema

_REF = "#/components/schemas/{name}"


@dataclass
class JsonSchema(Schema):
    """A JSON Schema given as a dict, rendered as is in the OpenAPI document."""

    document: dict[str, Any] = field(default_factory=dict)

    def to_schema(self) -> dict[str, Any]:
        return copy.deepcopy(self.document)


def inline(node: Any, components: dict[str, Any]) -> Any:
    """Replace every `$ref` by the component it names (Litestar rebuilds the components section
    from its own registry, so references to ours would dangle)."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            return inline(components[ref.rsplit("/", 1)[-1]], components)
        return {key: inline(value, components) for key, value in node.items()}
    if isinstance(node, list):
        return [inline(value, components) for value in node]
    return node


def json_schemas(*types: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Each type's JSON Schema (references left in) and the components they refer to."""
    schemas, components = msgspec.json.schema_components(types, ref_template=_REF)
    return list(schemas), components


def json_schema(tp: Any, **changes: Any) -> JsonSchema:
    """One type's schema with its references inlined; `changes` set top-level keywords."""
    (schema,), components = json_schemas(tp)
    return JsonSchema(document={**inline(schema, components), **changes})


def request_body(schema: Any, *, description: str | None = None) -> type[Operation]:
    """An operation class whose required JSON request body is `schema` (a type, or a Schema)."""
    body = schema if isinstance(schema, Schema) else json_schema(schema)

    @dataclass
    class _Operation(Operation):
        def __post_init__(self) -> None:
            self.request_body = RequestBody(content={"application/json": OpenAPIMediaType(schema=body)},
                                            required=True, description=description)

    return _Operation


__all__ = ["JsonSchema", "inline", "json_schema", "json_schemas", "request_body"]
