"""OpenAPI request schemas of POST /ingest and /ingest/batch, generated from the contracts.

The handlers decode the raw body with the shared contract (so that old payloads without `kind`
still decode), which Litestar cannot infer; the schema is therefore built from the same msgspec
types with `msgspec.json.schema_components`, so it cannot drift from what is accepted (a
hand-written copy once said 1–18 digits for a `channelId` string while the contract takes 19).
Two facts of `decode_payload` that msgspec cannot see are applied: a payload without `kind` is a
new message (so `kind` is optional there, and the union has no discriminator).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import msgspec
from litestar.openapi.spec import Schema

from contracts import IngestBatch, MessagePayload

_REF = "#/components/schemas/{name}"


@dataclass
class JsonSchema(Schema):
    """A JSON Schema given as a dict, rendered as is in the OpenAPI document."""

    document: dict[str, Any] = field(default_factory=dict)

    def to_schema(self) -> dict[str, Any]:
        return copy.deepcopy(self.document)


def _inline(node: Any, components: dict[str, Any]) -> Any:
    """Replace every `$ref` by the component it names (Litestar rebuilds the components section
    from its own registry, so references to ours would dangle)."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            return _inline(components[ref.rsplit("/", 1)[-1]], components)
        return {key: _inline(value, components) for key, value in node.items()}
    if isinstance(node, list):
        return [_inline(value, components) for value in node]
    return node


def _build() -> tuple[dict[str, Any], dict[str, Any]]:
    (payload, batch), components = msgspec.json.schema_components([MessagePayload, IngestBatch], ref_template=_REF)
    components["NewMessage"]["required"].remove("kind")  # old payloads carry no `kind`: new messages
    payload.pop("discriminator")  # ... so `kind` cannot select the schema
    payload = {"title": "MessagePayload", **_inline(payload, components)}
    batch = _inline(batch, components)
    batch["properties"]["messages"]["items"] = {
        "description": "a payload as for POST /ingest (MessagePayload); an invalid one gets its own rejected result"}
    return payload, batch


_payload, _batch = _build()
PAYLOAD_SCHEMA = JsonSchema(document=_payload)
BATCH_SCHEMA = JsonSchema(document=_batch)
