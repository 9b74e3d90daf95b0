"""Wire contracts: round-trips, old payloads, unknown fields, the idempotency key."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import msgspec
import pytest
from hypothesis import given, strategies as st

import contracts
from contracts import DeletedMessage, EditedMessage, NewMessage, decode_payload, encode_payload, idempotency_key

zones = st.sampled_from([timezone.utc, timezone(timedelta(hours=-3)), timezone(timedelta(hours=5, minutes=30))])
moments = st.datetimes(min_value=datetime(2013, 8, 1), max_value=datetime(2100, 1, 1), timezones=zones)
channel_ids = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.integers(min_value=-(10**18), max_value=10**18).map(str),
)
message_ids = st.integers(min_value=1, max_value=2**63 - 1)
texts = st.text(alphabet=st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=300)
int64s = st.integers(min_value=-(2**63), max_value=2**63 - 1)
names = st.none() | st.text(max_size=20)
senders = st.none() | st.builds(contracts.Sender, id=st.none() | int64s, username=names, display_name=names)
forwards = st.none() | st.builds(contracts.Forward, from_id=st.none() | int64s, from_name=names,
                                 channel_post=st.none() | int64s, date=st.none() | moments)
# `photos` is free-form JSON (the gateway sends descriptors; old payloads sent strings).
json_values = st.recursive(
    st.none() | st.booleans() | int64s | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)

common = dict(
    channel_id=channel_ids, message_id=message_ids, timestamp=moments, text=texts,
    photos=st.lists(json_values, max_size=3), sender=senders, forward=forwards,
    channel_name=names, reply_to_message_id=st.none() | message_ids,
)
payloads = st.one_of(
    st.builds(NewMessage, **common),
    st.builds(EditedMessage, edit_date=moments, **common),
    st.builds(DeletedMessage, channel_id=channel_ids, message_id=message_ids, timestamp=st.none() | moments,
              deleted_at=st.none() | moments),
)


@given(payloads)
def test_any_valid_payload_round_trips(payload: contracts.MessagePayload) -> None:
    assert decode_payload(encode_payload(payload)) == payload


@given(payloads)
def test_the_key_survives_encoding_and_ignores_the_channel_id_form(payload: contracts.MessagePayload) -> None:
    decoded = decode_payload(encode_payload(payload))
    assert idempotency_key(decoded) == idempotency_key(payload)
    as_other_form = msgspec.structs.replace(
        payload, channel_id=str(payload.channel_id) if isinstance(payload.channel_id, int) else int(payload.channel_id)
    )
    assert idempotency_key(as_other_form) == idempotency_key(payload)


@given(moments, st.sampled_from([timezone.utc, timezone(timedelta(hours=-3))]))
def test_edit_key_does_not_depend_on_the_utc_offset_used(moment: datetime, zone: timezone) -> None:
    base = dict(channel_id=1, message_id=2, timestamp=moment, text="x")
    a = EditedMessage(edit_date=moment, **base)
    b = EditedMessage(edit_date=moment.astimezone(zone), **base)
    assert idempotency_key(a) == idempotency_key(b)


def test_keys_tell_kinds_and_revisions_apart() -> None:
    when = datetime(2025, 11, 3, 10, 15, tzinfo=timezone.utc)
    new = NewMessage(channel_id="-1001649127710", message_id=7, timestamp=when, text="a")
    edit1 = EditedMessage(channel_id=-1001649127710, message_id=7, timestamp=when, text="b", edit_date=when + timedelta(minutes=1))
    edit2 = msgspec.structs.replace(edit1, edit_date=when + timedelta(minutes=2))
    gone = DeletedMessage(channel_id=-1001649127710, message_id=7)
    keys = {idempotency_key(p) for p in (new, edit1, edit2, gone)}
    assert len(keys) == 4
    assert str(idempotency_key(new)) == "-1001649127710:7"
    assert str(idempotency_key(gone)) == "-1001649127710:7:deleted"
    assert str(idempotency_key(edit1)) == f"-1001649127710:7:edited:{int((when + timedelta(minutes=1)).timestamp()) * 1_000_000}"


def test_old_gateway_payload_decodes_as_a_new_message() -> None:
    old = (
        b'{"channelId":"-1001649127710","messageId":1234,"text":"ATIVO: PETR4\\nCOMPRA: 25,50",'
        b'"timestamp":"2025-10-30T14:05:00.000Z","photos":[]}'
    )
    payload = decode_payload(old)
    assert isinstance(payload, NewMessage)
    assert payload.channel_id == "-1001649127710" and payload.message_id == 1234
    assert payload.timestamp == datetime(2025, 10, 30, 14, 5, tzinfo=timezone.utc)
    assert payload.reply_to_message_id is None


# -- replyToMessageId (issue 13): optional, absent in old payloads ----------------------------------

OLD_EDIT = (b'{"kind":"edited","channelId":-1001649127710,"messageId":7,"timestamp":"2025-10-30T14:05:00Z",'
            b'"editDate":"2025-10-30T14:06:00Z","text":"Alvo 1 batido"}')


def test_payloads_without_reply_to_message_id_still_decode() -> None:
    edit = decode_payload(OLD_EDIT)
    assert isinstance(edit, EditedMessage) and edit.reply_to_message_id is None
    # Re-encoded, it is byte for byte what an old gateway sent: no `replyToMessageId: null` added.
    assert msgspec.json.decode(encode_payload(edit)) == msgspec.json.decode(OLD_EDIT)


@pytest.mark.parametrize("kind", [NewMessage, EditedMessage])
def test_reply_to_message_id_round_trips_as_camel_case(kind) -> None:
    when = datetime(2025, 11, 3, 10, 15, tzinfo=timezone.utc)
    extra = {"edit_date": when + timedelta(minutes=5)} if kind is EditedMessage else {}
    payload = kind(channel_id=-1001649127710, message_id=8, timestamp=when, text="Alvo 2 batido ✅ +41%",
                   reply_to_message_id=7, **extra)
    wire = encode_payload(payload)
    assert msgspec.json.decode(wire)["replyToMessageId"] == 7
    assert decode_payload(wire) == payload
    # The key does not depend on it: the same post with and without the link is the same message.
    assert idempotency_key(payload) == idempotency_key(msgspec.structs.replace(payload, reply_to_message_id=None))


def test_an_older_reader_skips_reply_to_message_id() -> None:
    class OldNewMessage(contracts.Base, tag="new", tag_field="kind"):
        channel_id: int | str
        message_id: int
        timestamp: datetime
        text: str = ""

    new = encode_payload(NewMessage(channel_id=1, message_id=8, timestamp=datetime(2025, 11, 3, tzinfo=timezone.utc),
                                    reply_to_message_id=7))
    assert msgspec.json.decode(new, type=OldNewMessage).message_id == 8


@pytest.mark.parametrize("value", [0, -1, 2**63, "7", 1.5])
def test_reply_to_message_id_must_be_a_message_id(value) -> None:
    body = msgspec.json.encode({"channelId": 1, "messageId": 8, "timestamp": "2025-10-30T14:05:00Z",
                                "replyToMessageId": value})
    with pytest.raises(msgspec.ValidationError, match=r"\$\.replyToMessageId"):
        decode_payload(body)


def test_unknown_fields_from_a_newer_writer_are_ignored() -> None:
    newer = (
        b'{"kind":"edited","channelId":1,"messageId":2,"timestamp":"2025-10-30T14:05:00Z",'
        b'"editDate":"2025-10-30T14:06:00Z","text":"x","reactions":{"fire":3},"sender":{"id":9,"badge":"gold"}}'
    )
    payload = decode_payload(newer)
    assert isinstance(payload, EditedMessage) and payload.sender == contracts.Sender(id=9)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"messageId":1,"timestamp":"2025-10-30T14:05:00Z"}', "channelId"),
        (b'{"channelId":"abc","messageId":1,"timestamp":"2025-10-30T14:05:00Z"}', "$.channelId"),
        (b'{"channelId":1,"messageId":0,"timestamp":"2025-10-30T14:05:00Z"}', "$.messageId"),
        (b'{"channelId":1,"messageId":1,"timestamp":"2025-10-30T14:05:00"}', "$.timestamp"),
        (b'{"channelId":1,"messageId":1,"timestamp":"2025-10-30T14:05:00Z","text":"a\\u0000b"}', "$.text"),
        (b'{"kind":"edited","channelId":1,"messageId":1,"timestamp":"2025-10-30T14:05:00Z"}', "editDate"),
        (b'{"kind":"moved","channelId":1,"messageId":1,"timestamp":"2025-10-30T14:05:00Z"}', "$.kind"),
    ],
)
def test_invalid_payloads_name_the_field(body: bytes, field: str) -> None:
    with pytest.raises(msgspec.ValidationError, match=field.replace("$", r"\$")):
        decode_payload(body)


def test_results_keep_the_old_api_shape() -> None:
    assert msgspec.json.decode(contracts.encode(contracts.IngestResult.stored_(5))) == {
        "success": True, "status": "stored", "stored": True, "messageId": 5,
    }
    assert msgspec.json.decode(contracts.encode(contracts.IngestResult.duplicate(5))) == {
        "success": True, "status": "duplicate", "stored": False, "messageId": 5, "reason": "duplicate",
    }
    assert not contracts.IngestResult.rejected(["text too long"]).acknowledged
