"""Gateway -> ingest API wire format.

Compatible with the old Node.js gateway payload (`channelId`, `messageId`, `text`, `timestamp`,
`photos`) and extended with the message kind, the edit date and sender/forward metadata.

Schema evolution rules (see shared field notes): every field added after the old payload has a
default, no field ever changes type, and no wire type sets `forbid_unknown_fields`, so an older
reader skips the fields a newer writer adds.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, Union

import msgspec

# Telegram channel ids are 64-bit integers ("-1001649127710"); the old gateway sent them as
# strings or numbers, so both are accepted and normalised by `channel_id_int`.
ChannelId = Union[
    Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)],
    Annotated[str, msgspec.Meta(pattern=r"^-?[0-9]{1,19}$")],
]
MessageId = Annotated[int, msgspec.Meta(ge=1, le=2**63 - 1)]
# PostgreSQL text cannot hold NUL; Telegram caps a message at 4,096 characters, captions lower.
MessageText = Annotated[str, msgspec.Meta(max_length=65_536, pattern=r"^[^\x00]*$")]
AwareDatetime = Annotated[datetime, msgspec.Meta(tz=True)]

MessageKind = Literal["new", "edited", "deleted"]


class Base(msgspec.Struct, kw_only=True, rename="camel", omit_defaults=True):
    """Every wire type: camelCase on the wire, defaults left out when encoding.

    (`kw_only` applies to the fields a class declares itself, so subclasses repeat it.)
    """


class Sender(Base):
    """Who posted the message, when Telegram tells us (channels often post anonymously)."""

    id: int | None = None
    username: str | None = None
    display_name: str | None = None


class Forward(Base):
    """Where a forwarded message originally came from."""

    from_id: int | None = None
    from_name: str | None = None
    channel_post: int | None = None
    date: AwareDatetime | None = None


class _MessageFields(Base, kw_only=True):
    channel_id: ChannelId
    message_id: MessageId
    # Telegram's date of the original message (never changes for a message id).
    timestamp: AwareDatetime
    text: MessageText = ""
    photos: list[Any] = []
    sender: Sender | None = None
    forward: Forward | None = None
    # Optional human-readable channel name or username, useful for `channel` in signal rows.
    channel_name: str | None = None
    # The message this one replies to in the same channel ("Alvo 2 batido ✅" posted as a reply to
    # the signal): links a follow-up that names no ticker. Absent in old payloads.
    reply_to_message_id: MessageId | None = None


class NewMessage(_MessageFields, tag="new", tag_field="kind"):
    """A message as first seen (the old payload, which carries no `kind`, decodes as this)."""


class EditedMessage(_MessageFields, tag="edited", tag_field="kind", kw_only=True):
    """A new revision of a message; `text` is the full text after the edit."""

    edit_date: AwareDatetime


class DeletedMessage(Base, tag="deleted", tag_field="kind", kw_only=True):
    """Telegram reports deletions by id only: the original date is sent when the gateway knows it."""

    channel_id: ChannelId
    message_id: MessageId
    timestamp: AwareDatetime | None = None
    deleted_at: AwareDatetime | None = None


MessagePayload = Union[NewMessage, EditedMessage, DeletedMessage]


class IngestBatch(Base):
    """Body of `POST /ingest/batch`: up to 1,000 payloads, answered one result each, in order."""

    messages: Annotated[list[msgspec.Raw], msgspec.Meta(min_length=1, max_length=1000)]


def channel_id_int(channel_id: int | str) -> int:
    """The channel id as an integer, whichever form the payload used."""
    return int(channel_id)


# -- encoding / decoding, built once ---------------------------------------------------------

class _KindProbe(msgspec.Struct):
    # Old payloads have no `kind`: they are new messages.
    kind: MessageKind = "new"


_probe_decoder = msgspec.json.Decoder(_KindProbe)
_decoders: dict[str, msgspec.json.Decoder] = {
    "new": msgspec.json.Decoder(NewMessage),
    "edited": msgspec.json.Decoder(EditedMessage),
    "deleted": msgspec.json.Decoder(DeletedMessage),
}
_encoder = msgspec.json.Encoder()
_batch_decoder = msgspec.json.Decoder(IngestBatch)


def decode_payload(data: bytes | str | msgspec.Raw) -> MessagePayload:
    """Decode one payload; raises `msgspec.ValidationError`/`msgspec.DecodeError` naming the field."""
    kind = _probe_decoder.decode(data).kind
    return _decoders[kind].decode(data)


def decode_batch(data: bytes | str) -> IngestBatch:
    """Decode a batch envelope; each element is left raw so it can be validated on its own."""
    return _batch_decoder.decode(data)


def encode_payload(payload: MessagePayload) -> bytes:
    return _encoder.encode(payload)


def encode(obj: Any) -> bytes:
    """JSON-encode any contract object (results, batches) with the shared encoder."""
    return _encoder.encode(obj)
