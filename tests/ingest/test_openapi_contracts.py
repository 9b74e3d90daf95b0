"""The ingest API's OpenAPI request bodies are the contracts' own JSON Schemas (no server needed;
tests/reliability/test_api_edge.py checks the same on the served document)."""

from __future__ import annotations

import re

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts import IngestBatch, MessagePayload, decode_payload
from ingest_api.openapi import BATCH_SCHEMA, PAYLOAD_SCHEMA
from ts_runtime.api_core.openapi import inline

_, CONTRACT = msgspec.json.schema_components([MessagePayload, IngestBatch])


def test_openapi_channel_id_is_the_contracts() -> None:
    kinds = PAYLOAD_SCHEMA.to_schema()["anyOf"]
    assert [k["title"] for k in kinds] == ["NewMessage", "EditedMessage", "DeletedMessage"]
    for kind in kinds:
        contract = CONTRACT[kind["title"]]
        assert kind["properties"]["channelId"] == contract["properties"]["channelId"]
        assert kind["properties"] == inline(contract["properties"], CONTRACT)  # Sender, Forward inlined
    # The contract's own string form: up to 19 digits (a hand-written copy once said 18).
    assert kinds[0]["properties"]["channelId"]["anyOf"][1]["pattern"] == "^-?[0-9]{1,19}$"
    # What decode_payload knows and msgspec cannot: an old payload without `kind` is a new message.
    assert "kind" not in kinds[0]["required"] and "discriminator" not in PAYLOAD_SCHEMA.to_schema()


def test_openapi_batch_is_the_contracts() -> None:
    batch = BATCH_SCHEMA.to_schema()
    messages = CONTRACT["IngestBatch"]["properties"]["messages"]
    assert (batch["properties"]["messages"]["minItems"], batch["properties"]["messages"]["maxItems"]) == (
        messages["minItems"], messages["maxItems"])
    assert batch["required"] == CONTRACT["IngestBatch"]["required"]


@settings(max_examples=200, deadline=None)
@given(channel_id=st.from_regex(r"\A-?[0-9]{1,20}\Z") | st.text(max_size=21))
def test_the_documented_pattern_says_what_the_decoder_takes(channel_id: str) -> None:
    pattern = PAYLOAD_SCHEMA.to_schema()["anyOf"][0]["properties"]["channelId"]["anyOf"][1]["pattern"]
    body = msgspec.json.encode({"channelId": channel_id, "messageId": 1, "timestamp": "2025-10-07T12:00:00Z"})
    try:
        decode_payload(body)
        accepted = True
    except msgspec.ValidationError:
        accepted = False
    # msgspec uses re.search, as an OpenAPI (ECMA-262) reader does for a pattern.
    assert accepted == (re.search(pattern, channel_id) is not None)
