"""Validation of the ingest payloads: a request body (or one element of a batch) becomes a
`Prepared` message ready for SQL, or `Rejected` with one line per bad field.

The shared contract (contracts.decode_payload) decodes; this module adds what the wire types
cannot say (dates within Telegram's lifetime, no NUL characters PostgreSQL would refuse, a
channel id that fits in bigint) and explains a failed decode field by field, since msgspec
stops at the first problem. The body's UTF-8 is checked once, by the core plugin's request
(ts_runtime.api_core.checks.CoreRequest), before any of this runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import msgspec

from contracts import (
    DeletedMessage,
    EditedMessage,
    IngestBatch,
    MessagePayload,
    NewMessage,
    channel_id_int,
    decode_batch,
    decode_payload,
)
from ts_runtime.api_core.errors import FieldProblem
from ts_runtime.api_core.problems import json_syntax_reason, problems_in

from ..parser import FollowUp, Signal

TELEGRAM_LAUNCH = datetime(2013, 8, 1, tzinfo=timezone.utc)
MAX_FUTURE = timedelta(days=1)
_encoder = msgspec.json.Encoder()
_any_decoder = msgspec.json.Decoder()


class Rejected(Exception):
    """The payload is invalid; `details` name each bad field."""

    def __init__(self, details: list[str], message_id: int | None = None) -> None:
        super().__init__("; ".join(details))
        self.details = details
        self.message_id = message_id


@dataclass(slots=True)
class Prepared:
    """A validated message, ready for SQL (JSON columns already encoded)."""

    kind: str
    channel_id: int
    message_id: int
    original_timestamp: datetime | None
    text: str = ""
    photos: str = "[]"
    channel_name: str | None = None
    sender: str | None = None
    forward: str | None = None
    edit_date: datetime | None = None
    deleted_at: datetime | None = None
    reply_to_message_id: int | None = None
    # What the parser reads in `text`; set by `parse_prepared` (the writer parses what is not).
    parsed: Signal | FollowUp | None = None
    is_parsed: bool = False

    @property
    def channel(self) -> str:
        """The `channel` column of signal rows: the channel's name when known, else its id."""
        return self.channel_name or str(self.channel_id)

    @property
    def dedupe_key(self) -> tuple[Any, ...]:
        if self.kind == "deleted":
            return ("deleted", self.channel_id, self.message_id)
        return (self.kind, self.channel_id, self.message_id, self.original_timestamp, self.edit_date)


# Each kind's wire type, whose fields are checked one by one to explain a failed decode.
_KINDS: dict[str, type[msgspec.Struct]] = {"new": NewMessage, "edited": EditedMessage, "deleted": DeletedMessage}
_DATE_FIELDS = ("timestamp", "editDate", "deletedAt")


def _detail(problem: FieldProblem) -> str:
    # A date that is not one gets the wording the gateway's operators know (the helper's "must be
    # a valid RFC3339 encoded datetime" does not say that the zone is needed too).
    if problem.field in _DATE_FIELDS and "datetime" in problem.message:
        return f"{problem.field} must be valid ISO 8601 datetime with a time zone"
    return problem.text


def _fallback(error: msgspec.MsgspecError) -> str:
    """msgspec's own reason, when walking the fields finds nothing (e.g. a duplicated key)."""
    if isinstance(error, msgspec.ValidationError):
        return f"body: {error}"
    return f"body is not valid JSON: {error}"


def _explain(body: bytes, error: msgspec.MsgspecError) -> list[str]:
    """One detail per bad field (msgspec stops at the first problem), by the shared helper
    (ts_runtime.api_core.problems), which walks the wire type's fields with their constraints."""
    try:
        generic = _any_decoder.decode(body)
    except msgspec.DecodeError as exc:
        return [f"body is not valid JSON: {json_syntax_reason(body, exc)}"]
    if not isinstance(generic, dict):
        return [f"body must be a JSON object, got {type(generic).__name__}"]
    kind = generic.get("kind", "new")
    # isinstance first: `[] in _KINDS` would raise (unhashable) instead of answering 400.
    if not isinstance(kind, str) or kind not in _KINDS:
        return ["kind must be one of new, edited, deleted"]
    return [_detail(p) for p in problems_in(_KINDS[kind], generic)] or [_fallback(error)]


def decode_envelope(body: bytes) -> IngestBatch:
    """The batch envelope (elements left raw, validated one by one); raises `Rejected`."""
    try:
        return decode_batch(body)
    except msgspec.MsgspecError as exc:
        try:
            generic = _any_decoder.decode(body)
        except msgspec.DecodeError as decode_error:
            raise Rejected([f"body is not valid JSON: {json_syntax_reason(body, decode_error)}"]) from None
        except RecursionError:
            raise Rejected(["body is nested too deeply"]) from None
        raise Rejected([p.text for p in problems_in(IngestBatch, generic)] or [_fallback(exc)]) from None
    except RecursionError:
        # msgspec walks every element (even those it keeps raw) and gives up past ~1,000 levels:
        # the client's mistake, never a 500 (which the gateway would retry forever).
        raise Rejected(["body is nested too deeply"]) from None


def _find_nul(value: Any, path: str) -> str | None:
    # PostgreSQL text and jsonb cannot hold U+0000: refuse it with the field's name instead of
    # failing in the database.
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            found = _find_nul(key, path) or _find_nul(item, f"{path}.{key}")
            if found:
                return found
    if isinstance(value, list):
        for i, item in enumerate(value):
            found = _find_nul(item, f"{path}[{i}]")
            if found:
                return found
    return None


def _check_date(name: str, value: datetime | None, now: datetime, details: list[str]) -> None:
    if value is None:
        return
    if value < TELEGRAM_LAUNCH:
        details.append(f"{name} must not be before 2013-08-01 (Telegram did not exist)")
    elif value > now + MAX_FUTURE:
        details.append(f"{name} must not be more than 1 day in the future")


def validate(body: bytes | msgspec.Raw, now: datetime | None = None) -> Prepared:
    """Decode and check one payload with the shared contract; raises `Rejected`.

    `now` (for the "not in the future" check) may be passed once for a whole batch.
    """
    try:
        try:
            payload: MessagePayload = decode_payload(body)
        except msgspec.MsgspecError as exc:
            raise Rejected(_explain(bytes(body), exc)) from None
        return _prepare(payload, now or datetime.now(timezone.utc))
    except RecursionError:
        raise Rejected(["body is nested too deeply"]) from None


def _prepare(payload: MessagePayload, now: datetime) -> Prepared:
    details: list[str] = []
    channel_id = channel_id_int(payload.channel_id)
    if not -(2**63) <= channel_id < 2**63:
        details.append("channelId must fit in a signed 64-bit integer")
    _check_date("timestamp", payload.timestamp, now, details)
    if isinstance(payload, DeletedMessage):
        _check_date("deletedAt", payload.deleted_at, now, details)
        if details:
            raise Rejected(details, payload.message_id)
        return Prepared(
            kind="deleted",
            channel_id=channel_id,
            message_id=payload.message_id,
            original_timestamp=payload.timestamp,
            deleted_at=payload.deleted_at or now,
        )
    edit_date = None
    if isinstance(payload, EditedMessage):
        edit_date = payload.edit_date
        _check_date("editDate", edit_date, now, details)
        if edit_date < payload.timestamp:
            details.append("editDate must not be before timestamp")
    # The JSON columns are encoded once, here; the encoder writes U+0000 as the escape `\u0000`,
    # so only a value whose JSON holds that text is walked to name the field (which may also be a
    # literal backslash followed by "u0000": then the walk finds nothing).
    photos = _encoder.encode(payload.photos).decode() if payload.photos else "[]"
    sender = _encoder.encode(payload.sender).decode() if payload.sender is not None else None
    forward = _encoder.encode(payload.forward).decode() if payload.forward is not None else None
    for name, value, encoded in (("photos", payload.photos, photos), ("sender", payload.sender, sender),
                                 ("forward", payload.forward, forward)):
        if encoded is not None and "\\u0000" in encoded:
            found = _find_nul(msgspec.to_builtins(value), name)
            if found:
                details.append(f"{found} must not contain NUL characters")
    if payload.channel_name is not None and "\x00" in payload.channel_name:
        details.append("channelName must not contain NUL characters")
    if details:
        raise Rejected(details, payload.message_id)
    return Prepared(
        kind="edited" if edit_date is not None else "new",
        channel_id=channel_id,
        message_id=payload.message_id,
        original_timestamp=payload.timestamp,
        text=payload.text,
        photos=photos,
        channel_name=payload.channel_name,
        sender=sender,
        forward=forward,
        edit_date=edit_date,
        reply_to_message_id=payload.reply_to_message_id,
    )


__all__ = ["Prepared", "Rejected", "decode_envelope", "validate"]
