"""Reading a Telegram Desktop channel export (`result.json`) into contract payloads.

Telegram Desktop ("Export chat history", machine-readable JSON) writes the chat's `name`, `type`
and `id` (without the `-100` prefix the bot API and Telethon's marked ids carry) and `messages[]`:
`id`, `type` (`message` or `service`), `date` (the exporter's local time, no zone),
`date_unixtime` (UTC epoch seconds as a string), `text` (a string, or a list mixing strings and
entity objects such as `{"type": "bold", "text": "…"}`), and for edited posts `edited` /
`edited_unixtime`. Service messages (pins, joins) carry no content and are skipped.

An edited post becomes an edit event (original date + edit date, full text after the edit): the
export holds only the final text, and the API creates the message from an edit it has not seen
before. Re-importing produces the same payloads, hence the same idempotency keys: the API answers
"duplicate" and stores nothing twice.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import msgspec

from contracts import EditedMessage, Forward, MessagePayload, NewMessage, Sender


class ExportError(ValueError):
    """The file is not a Telegram Desktop chat export (the message says what is wrong)."""


class _Message(msgspec.Struct):
    id: int
    type: str = "message"
    date: str | None = None
    date_unixtime: str | int | None = None
    edited: str | None = None
    edited_unixtime: str | int | None = None
    text: str | list[Any] = ""
    # msgspec field names cannot be Python keywords: `from` is read through rename.
    sender_name: str | None = msgspec.field(default=None, name="from")
    from_id: str | None = None
    forwarded_from: str | None = None
    photo: str | None = None
    width: int | None = None
    height: int | None = None


class _Export(msgspec.Struct):
    id: int
    messages: list[_Message]
    name: str | None = None
    type: str | None = None


# Chats whose marked id (what the API and Telethon use) is -100<id>.
_CHANNEL_TYPES = {"public_channel", "private_channel", "public_supergroup", "private_supergroup"}


@dataclass
class ExportSummary:
    channel_id: int
    channel_name: str | None
    messages: int = 0
    edited: int = 0
    skipped: int = 0
    problems: list[str] = field(default_factory=list)


def marked_channel_id(export_id: int, chat_type: str | None) -> int:
    """1649127710 in a channel export → -1001649127710 (the id the gateway and the API use)."""
    if export_id < 0:
        return export_id  # already marked
    if chat_type in _CHANNEL_TYPES or chat_type is None:
        return -(10**12 + export_id)
    if chat_type == "private_group":
        return -export_id
    return export_id


def flatten_text(text: str | list[Any]) -> str:
    """The plain text of a message: entity lists are concatenated (strings and entities' `text`)."""
    if isinstance(text, str):
        return text
    parts = []
    for part in text:
        if isinstance(part, str):
            parts.append(part)
        elif isinstance(part, dict):
            parts.append(str(part.get("text", "")))
    return "".join(parts)


def _moment(unixtime: str | int | None, local: str | None, what: str, message_id: int) -> datetime:
    if unixtime not in (None, ""):
        try:
            return datetime.fromtimestamp(int(unixtime), timezone.utc)
        except (TypeError, ValueError, OverflowError):
            raise ExportError(f"message {message_id}: {what}_unixtime {unixtime!r} is not epoch seconds") from None
    # Old exports have no *_unixtime: their local time has no zone, so it is an approximation.
    if local:
        try:
            parsed = datetime.fromisoformat(local)
        except ValueError:
            raise ExportError(f"message {message_id}: {what} {local!r} is not an ISO date") from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
    raise ExportError(f"message {message_id}: no {what}")


def _sender(message: _Message) -> Sender | None:
    if not (message.sender_name or message.from_id):
        return None
    # `user123` is a person; `channel123` is the channel posting as itself (no separate sender id).
    sender_id = None
    if message.from_id and message.from_id.startswith("user") and message.from_id[4:].isdigit():
        sender_id = int(message.from_id[4:])
    return Sender(id=sender_id, display_name=message.sender_name)


def _payload(message: _Message, channel_id: int, channel_name: str | None) -> MessagePayload:
    timestamp = _moment(message.date_unixtime, message.date, "date", message.id)
    photos: list[Any] = []
    if message.photo:
        photo: dict[str, Any] = {"file": message.photo}
        if message.width and message.height:
            photo.update(width=message.width, height=message.height)
        photos.append(photo)
    common = dict(
        channel_id=str(channel_id),
        message_id=message.id,
        timestamp=timestamp,
        text=flatten_text(message.text),
        photos=photos,
        sender=_sender(message),
        forward=Forward(from_name=message.forwarded_from) if message.forwarded_from else None,
        channel_name=channel_name,
    )
    if message.edited or message.edited_unixtime:
        edit_date = _moment(message.edited_unixtime, message.edited, "edited", message.id)
        return EditedMessage(**common, edit_date=max(edit_date, timestamp))
    return NewMessage(**common)


def read_export(path: Path | str) -> tuple[ExportSummary, list[MessagePayload]]:
    """Parse `result.json`; raises ExportError (one line) when it is not a chat export."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ExportError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        export = msgspec.json.decode(data, type=_Export)
    except msgspec.ValidationError as exc:
        raise ExportError(f"{path} is not a Telegram Desktop chat export: {exc}") from None
    except msgspec.DecodeError as exc:
        raise ExportError(f"{path} is not JSON: {exc}") from None
    channel_id = marked_channel_id(export.id, export.type)
    summary = ExportSummary(channel_id=channel_id, channel_name=export.name)
    payloads = list(_payloads(export, channel_id, summary))
    return summary, payloads


def _payloads(export: _Export, channel_id: int, summary: ExportSummary) -> Iterator[MessagePayload]:
    for message in export.messages:
        if message.type != "message" or message.id < 1:
            summary.skipped += 1  # pins, joins and other service messages carry no post
            continue
        payload = _payload(message, channel_id, export.name)
        summary.messages += 1
        if isinstance(payload, EditedMessage):
            summary.edited += 1
        yield payload
