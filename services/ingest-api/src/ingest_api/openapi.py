"""OpenAPI request schemas of POST /ingest and /ingest/batch, generated from the contracts.

The handlers decode the raw body with the shared contract (so that old payloads without `kind`
still decode), which Litestar cannot infer; the schema is therefore built from the same msgspec
types with `msgspec.json.schema_components`, so it cannot drift from what is accepted (a
hand-written copy once said 1–18 digits for a `channelId` string while the contract takes 19).
Two facts of `decode_payload` that msgspec cannot see are applied: a payload without `kind` is a
new message (so `kind` is optional there, and the union has no discriminator); and a batch's
items are kept raw (each answered on its own), so their schema is a description. The helpers
(`JsonSchema`, `inline`) are the core plugin's, shared with the workspace API.
"""

from __future__ import annotations

from typing import Any

from contracts import IngestBatch, MessagePayload
from ts_runtime.api_core.openapi import JsonSchema, inline, json_schemas


def _build() -> tuple[dict[str, Any], dict[str, Any]]:
    (payload, batch), components = json_schemas(MessagePayload, IngestBatch)
    components["NewMessage"]["required"].remove("kind")  # old payloads carry no `kind`: new messages
    payload.pop("discriminator")  # ... so `kind` cannot select the schema
    payload = {"title": "MessagePayload", **inline(payload, components)}
    batch = inline(batch, components)
    batch["properties"]["messages"]["items"] = {
        "description": "a payload as for POST /ingest (MessagePayload); an invalid one gets its own rejected result"}
    return payload, batch


_payload, _batch = _build()
PAYLOAD_SCHEMA = JsonSchema(document=_payload)
BATCH_SCHEMA = JsonSchema(document=_batch)
