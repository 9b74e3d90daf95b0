"""Reading a Telegram Desktop channel export (`result.json`) into contract payloads, streamed.

Telegram Desktop ("Export chat history", machine-readable JSON) writes the chat's `name`, `type`
and `id` (without the `-100` prefix the bot API and Telethon's marked ids carry) and `messages[]`:
`id`, `type` (`message` or `service`), `date` (the exporter's local time, no zone),
`date_unixtime` (UTC epoch seconds as a string), `text` (a string, or a list mixing strings and
entity objects such as `{"type": "bold", "text": "…"}`), newer versions also `text_entities` (the
same text as a flat list of `{"type", "text"}`), for edited posts `edited` / `edited_unixtime`, and
for replies `reply_to_message_id` (plus `reply_to_peer_id` when the replied-to message is in
another chat). Service messages (pins, joins) carry no content and are skipped.

An edited post becomes an edit event (original date + edit date, full text after the edit): the
export holds only the final text, and the API creates the message from an edit it has not seen
before. Re-importing produces the same payloads, hence the same idempotency keys: the API answers
"duplicate" and stores nothing twice.

Streaming: a channel's export can hold millions of messages (hundreds of MB). The file is read
with ijson's event parser (`basic_parse`, C backend, linear in the input) and each message is
built on its own, so memory stays flat whatever the file's size. ijson's `items()` is not used: it
keeps the path prefix of every open level, which is quadratic in the nesting depth (50,000 levels
of `[` cost it 6 GB). Nesting is bounded instead: a message nested deeper than
`MAX_MESSAGE_DEPTH` is not a Telegram Desktop export and stops the import with one line.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO

import ijson
import msgspec

from contracts import EditedMessage, Forward, MessagePayload, NewMessage, Sender

# A message is a map (1) whose `text` is a list (2) of entity maps (3) holding text (4); real
# exports stay there. Deeper nesting is refused instead of being built.
MAX_MESSAGE_DEPTH = 32


class ExportError(ValueError):
    """The file is not a Telegram Desktop chat export (the message says what is wrong)."""


class _Message(msgspec.Struct):
    id: int
    type: str = "message"
    date: str | None = None
    date_unixtime: str | int | None = None
    edited: str | None = None
    edited_unixtime: str | int | None = None
    # msgspec field names cannot be Python keywords: `from` is read through rename.
    sender_name: str | None = msgspec.field(default=None, name="from")
    from_id: str | None = None
    forwarded_from: str | None = None
    photo: str | None = None
    width: int | None = None
    height: int | None = None
    reply_to_message_id: int | None = None
    reply_to_peer_id: str | int | None = None


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


def flatten_text(text: Any) -> str:
    """The plain text of a message: a string as it is; an entity list joined in order (strings,
    and the `text` of entity objects, however they nest). Anything else contributes nothing."""
    parts: list[str] = []
    pending: list[Any] = [text]  # a stack, walked without recursion
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            parts.append(item)
        elif isinstance(item, list):
            pending.extend(reversed(item))
        elif isinstance(item, dict):
            pending.append(item.get("text"))
    return "".join(parts)


def _message_text(raw: dict[str, Any]) -> str:
    text = raw.get("text", "")
    if isinstance(text, str):
        return text
    # `text_entities` is the same text as a flat list; older exports have only `text`.
    entities = raw.get("text_entities")
    return flatten_text(entities if isinstance(entities, list) and entities else text)


def _moment(unixtime: str | int | None, local: str | None, what: str, message_id: int) -> datetime:
    if unixtime not in (None, ""):
        try:
            return datetime.fromtimestamp(int(unixtime), timezone.utc)
        except (TypeError, ValueError, OverflowError, OSError):
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


def _reply_to(message: _Message, export_id: int) -> int | None:
    """The replied-to message id when it is in this chat; None for a reply to another chat (its
    id means nothing here), whose peer the export names as `channel123` / `chat123` / `user123`."""
    reply = message.reply_to_message_id
    if reply is None or not 1 <= reply < 2**63:
        return None
    peer = message.reply_to_peer_id
    if peer is not None:
        # `channel1649127710`, or a marked id: compare the bare ids (-100… marks a channel).
        digits = str(peer).lstrip("abcdefghijklmnopqrstuvwxyz-")
        if not digits.isdigit() or int(digits) % 10**12 != abs(export_id) % 10**12:
            return None
    return reply


def _payload(message: _Message, text: str, channel_id: int, export_id: int,
             channel_name: str | None) -> MessagePayload:
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
        text=text.replace("\x00", ""),  # PostgreSQL text cannot hold NUL (the contract refuses it)
        photos=photos,
        sender=_sender(message),
        forward=Forward(from_name=message.forwarded_from) if message.forwarded_from else None,
        channel_name=channel_name,
        reply_to_message_id=_reply_to(message, export_id),
    )
    if message.edited or message.edited_unixtime:
        edit_date = _moment(message.edited_unixtime, message.edited, "edited", message.id)
        return EditedMessage(**common, edit_date=max(edit_date, timestamp))
    return NewMessage(**common)


# -- the event stream ----------------------------------------------------------------------------

_SCALARS = {"null", "boolean", "integer", "double", "number", "string"}


class _TooDeep(Exception):
    pass


class _CountingReader(io.RawIOBase):
    """The file, counting the bytes the parser has taken (the progress bar's position)."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self.consumed = 0

    def readable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._raw.fileno()

    def readinto(self, buffer: Any) -> int:
        count = self._raw.readinto(buffer) or 0
        self.consumed += count
        return count

    def close(self) -> None:
        self._raw.close()
        super().close()


def _skip(events: Iterator[tuple[str, Any]], event: str) -> None:
    """Consume the value that started with `event` (a counter, not a stack: any depth, O(1) memory)."""
    if event not in ("start_map", "start_array"):
        return
    depth = 1
    for event, _ in events:
        if event in ("start_map", "start_array"):
            depth += 1
        elif event in ("end_map", "end_array"):
            depth -= 1
            if depth == 0:
                return


def _build(events: Iterator[tuple[str, Any]], event: str, value: Any, max_depth: int) -> Any:
    """The value that started with (`event`, `value`), as dicts/lists, at most `max_depth` deep.
    (The hot loop of an import: one pass per event, the current container kept at hand.)"""
    if event != "start_map" and event != "start_array":
        return value
    root: Any = {} if event == "start_map" else []
    stack = [root]
    container = root
    in_list = event == "start_array"
    key = None  # a map key is always followed at once by its value
    for event, value in events:
        if event == "map_key":
            key = value
        elif event == "end_map" or event == "end_array":
            stack.pop()
            if not stack:
                return root
            container = stack[-1]
            in_list = type(container) is list
        elif event == "start_map" or event == "start_array":
            if len(stack) >= max_depth:
                raise _TooDeep
            child: Any = {} if event == "start_map" else []
            if in_list:
                container.append(child)
            else:
                container[key] = child
            stack.append(child)
            container = child
            in_list = event == "start_array"
        elif in_list:
            container.append(value)
        else:
            container[key] = value
    raise ijson.IncompleteJSONError("the file ends inside a value")


def _parse(path: Path) -> tuple[_CountingReader, Iterator[tuple[str, Any]]]:
    try:
        raw = open(path, "rb")
    except OSError as exc:
        raise ExportError(f"cannot read {path}: {exc.strerror or exc}") from None
    reader = _CountingReader(raw)
    return reader, ijson.basic_parse(reader, buf_size=256 * 1024, use_float=True)


def _chat_fields(path: Path, events: Iterator[tuple[str, Any]], *, skip_messages: bool) -> dict[str, Any]:
    """The chat's own scalar fields (`name`, `type`, `id`, …), read up to `messages` (the stream
    is then on its first element; `"messages"` is in the result) or, with `skip_messages`, to the end."""
    fields: dict[str, Any] = {}
    try:
        event, _ = next(events, ("end of file", None))
        if event != "start_map":
            raise ExportError(f"{path} is not a Telegram Desktop chat export: the top level is not an object")
        for event, key in events:
            if event == "end_map":
                break
            event, value = next(events)
            if key == "messages" and not skip_messages:
                if event != "start_array":
                    raise ExportError(f"{path} is not a Telegram Desktop chat export: `messages` is not a list")
                fields["messages"] = True
                break
            if event in _SCALARS:
                fields[key] = value
            else:
                _skip(events, event)
    except (ijson.JSONError, UnicodeDecodeError, StopIteration) as exc:
        raise ExportError(f"{path} is not JSON: {_json_problem(exc)}") from None
    return fields


class ExportReader:
    """One pass over an export: `summary` once opened, then `payloads()` streams the messages.

    Opening reads only the head of the file (the chat's `name`, `type`, `id`, up to `messages`);
    a file whose chat id comes after its messages is read once more for it, skipping them. Errors
    are ExportError with one line naming the file and, inside `messages`, the message."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._reader, self._stream = _parse(self.path)
        try:
            self.size = os.fstat(self._reader.fileno()).st_size
            fields = _chat_fields(self.path, self._stream, skip_messages=False)
            if "messages" not in fields:
                raise ExportError(f"{self.path} is not a Telegram Desktop chat export: no `messages` list")
            if "id" not in fields:
                reader, events = _parse(self.path)
                with reader:
                    fields = {**_chat_fields(self.path, events, skip_messages=True), **fields}
            export_id = fields.get("id")
            if not isinstance(export_id, int) or isinstance(export_id, bool) or not -(2**63) <= export_id < 2**63:
                what = "no chat `id`" if export_id is None else f"the chat `id` {export_id!r} is not an integer"
                raise ExportError(f"{self.path} is not a Telegram Desktop chat export: {what}")
        except BaseException:
            self.close()
            raise
        name, chat_type = fields.get("name"), fields.get("type")
        self.export_id = export_id
        self.name = name if isinstance(name, str) else None
        self.chat_type = chat_type if isinstance(chat_type, str) else None
        self.summary = ExportSummary(channel_id=marked_channel_id(export_id, self.chat_type), channel_name=self.name)

    @property
    def bytes_read(self) -> int:
        return self._reader.consumed

    def payloads(self) -> Iterator[MessagePayload]:
        """Every message's payload, in file order; service messages are counted and skipped."""
        complete = 0  # messages read whole
        try:
            for event, value in self._stream:
                if event == "end_array":
                    return
                try:
                    raw = _build(self._stream, event, value, MAX_MESSAGE_DEPTH)
                except _TooDeep:
                    raise ExportError(f"{self.path}: message #{complete + 1} of `messages` is nested more than "
                                      f"{MAX_MESSAGE_DEPTH} levels deep (not a Telegram Desktop export)") from None
                complete += 1
                payload = self._payload(raw, complete)
                if payload is not None:
                    yield payload
        except (ijson.JSONError, UnicodeDecodeError) as exc:
            problem = _json_problem(exc)
            if "premature EOF" not in problem:
                raise ExportError(f"{self.path}: message #{complete + 1} of `messages` is not JSON: {problem}") from None
        raise ExportError(f"{self.path}: the file ends inside `messages`, after message #{complete} (a cut-off file?)")

    def _payload(self, raw: Any, position: int) -> MessagePayload | None:
        if not isinstance(raw, dict):
            raise ExportError(f"{self.path}: message #{position} of `messages` is not an object")
        try:
            message = msgspec.convert(raw, type=_Message)
        except msgspec.ValidationError as exc:
            raise ExportError(f"{self.path}: message #{position} of `messages`: {exc}") from None
        if message.type != "message" or message.id < 1:
            self.summary.skipped += 1  # pins, joins and other service messages carry no post
            return None
        try:
            payload = _payload(message, _message_text(raw), self.summary.channel_id, self.export_id, self.name)
        except ExportError as exc:
            raise ExportError(f"{self.path}: {exc}") from None
        self.summary.messages += 1
        if isinstance(payload, EditedMessage):
            self.summary.edited += 1
        return payload

    def close(self) -> None:
        self._reader.close()

    def __enter__(self) -> "ExportReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _json_problem(exc: BaseException) -> str:
    """The parser's message, first line only (yajl adds lines pointing at the spot)."""
    detail = exc.args[0] if exc.args else ""
    if isinstance(detail, bytes):
        detail = detail.decode("utf-8", "backslashreplace")
    lines = str(detail).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def read_export(path: Path | str) -> tuple[ExportSummary, list[MessagePayload]]:
    """The whole export in memory (small files, tests); `gateway import` streams with ExportReader."""
    with ExportReader(path) as reader:
        payloads = list(reader.payloads())
        return reader.summary, payloads
