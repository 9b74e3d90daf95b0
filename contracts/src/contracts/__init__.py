"""msgspec Structs shared by the Telegram gateway and the TP Capital ingest API (msgspec only)."""

from .keys import MessageKey, idempotency_key
from .messages import (
    Base,
    DeletedMessage,
    EditedMessage,
    Forward,
    IngestBatch,
    MessageKind,
    MessagePayload,
    NewMessage,
    Sender,
    channel_id_int,
    decode_batch,
    decode_payload,
    encode,
    encode_payload,
)
from .results import BatchResult, IngestResult, IngestStatus

__all__ = [
    "Base",
    "BatchResult",
    "DeletedMessage",
    "EditedMessage",
    "Forward",
    "IngestBatch",
    "IngestResult",
    "IngestStatus",
    "MessageKey",
    "MessageKind",
    "MessagePayload",
    "NewMessage",
    "Sender",
    "channel_id_int",
    "decode_batch",
    "decode_payload",
    "encode",
    "encode_payload",
    "idempotency_key",
]
