"""The idempotency key: what makes two deliveries "the same message event"."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import msgspec

from .messages import DeletedMessage, EditedMessage, MessageKind, MessagePayload, channel_id_int


class MessageKey(msgspec.Struct, frozen=True, order=True):
    """Identity of one message event.

    A new message is identified by (channel, message id); an edit also by its edit date, so each
    revision is delivered once; a deletion by the kind alone. Never by ingest time: a retry gets a
    new ingest time and would slip past the key.
    """

    channel_id: int
    message_id: int
    kind: MessageKind = "new"
    # Edit date in epoch microseconds (edits only).
    edit_us: int | None = None

    def __str__(self) -> str:
        base = f"{self.channel_id}:{self.message_id}"
        if self.kind == "edited":
            return f"{base}:edited:{self.edit_us}"
        if self.kind == "deleted":
            return f"{base}:deleted"
        return base


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _epoch_us(moment: datetime) -> int:
    # Integer microseconds: exact, unlike float timestamps, and independent of the UTC offset used.
    return (moment - _EPOCH) // timedelta(microseconds=1)


def idempotency_key(payload: MessagePayload) -> MessageKey:
    """Derive the key of a payload; equal payloads (however encoded) give equal keys."""
    channel = channel_id_int(payload.channel_id)
    if isinstance(payload, EditedMessage):
        return MessageKey(channel, payload.message_id, "edited", _epoch_us(payload.edit_date))
    if isinstance(payload, DeletedMessage):
        return MessageKey(channel, payload.message_id, "deleted")
    return MessageKey(channel, payload.message_id)
