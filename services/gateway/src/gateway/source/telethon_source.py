"""The Telegram source: a Telethon user client on the channels in TELEGRAM_CHANNELS.

What it relies on from Telethon (1.x), and why:

- `events.NewMessage`, `events.MessageEdited`, `events.MessageDeleted` with `chats=` the resolved
  channel ids (marked, `-100…`), so Telethon's own filter drops every other chat.
- `iter_messages(entity, min_id=cursor, reverse=True)` for backfill: oldest first, ids above the
  cursor. Live events never move the cursor (see cursors.py); backfill does, page by page, and a
  page's `last_id` also covers service messages, which produce no payload.
- Telethon's catch-up is off (`catch_up=False`): it skips long gaps and a StringSession keeps no
  update state. The gateway backfills instead, at start, on a timer and after every reconnect.
- Reconnects: Telethon retries a dropped connection by itself and then calls the client's
  `_handle_auto_reconnect` (a private hook; `_GatewayClient` chains onto it, and a test checks
  the hook is still wired in the installed Telethon). When Telethon gives up, `is_connected()`
  turns False; a watcher task then reconnects with capped backoff. Both paths fire the
  `on_reconnect` callbacks.
- Replies: `message.reply_to` (`MessageReplyHeader`) becomes the payload's `replyToMessageId` only
  for a reply to a message of the same chat (see `reply_to_message_id` for cross-chat replies,
  forum topics, scheduled messages and stories).
- FloodWait: Telethon sleeps through waits up to `flood_sleep_threshold` (60 s) itself; longer
  ones raise `FloodWaitError`, which is slept (logged, counted) and the same work resumes from
  where it stopped. Nothing is dropped.

Edits and deletions have no history to backfill: one that arrives while the gateway is down is
not seen (new messages are, through the cursor).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timezone
from typing import Any

from telethon import TelegramClient, errors, events, utils
from telethon.tl import types

from contracts import (DeletedMessage, EditedMessage, Forward, MessagePayload, NewMessage, Sender,
                       encode_payload, idempotency_key)

from .. import metrics
from ..settings import TelegramSettings
from . import HistoryPage, SourceBatch

log = logging.getLogger(__name__)

ClientFactory = Callable[[TelegramSettings], Any]
Sleep = Callable[[float], Awaitable[Any]]

_NUMERIC = re.compile(r"^-?[0-9]+$")
# Original dates of recently seen messages: a deletion carries ids only, and the payload should
# carry the original date when we know it.
_KNOWN_DATES = 20_000
_MAX_BATCH = 500


# -- the Telethon client ----------------------------------------------------------------------


class ChannelNotFound(ValueError):
    """A configured channel this account cannot see: a configuration problem, so the gateway exits 2
    (systemd does not restart it in a loop; the operator fixes TELEGRAM_CHANNELS or joins the channel)."""

    exit_code = 2

class _GatewayClient(TelegramClient):
    """TelegramClient that tells listeners when Telethon re-established a dropped connection."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.reconnect_listeners: list[Callable[[], None]] = []
        super().__init__(*args, **kwargs)

    async def _handle_auto_reconnect(self) -> None:  # Telethon's hook, called after a reconnect
        await super()._handle_auto_reconnect()
        for listener in list(self.reconnect_listeners):
            listener()


def default_client_factory(settings: TelegramSettings) -> TelegramClient:
    """The real client: TELEGRAM_SESSION (string) when set, else the session file."""
    from telethon.sessions import StringSession

    from ..session import check_session

    # Before Telethon opens the file: it would create an empty (unauthorized) session otherwise,
    # and a corrupt one is moved aside with a clear message.
    check_session(settings)
    session: Any = StringSession(settings.string_session) if settings.string_session else str(settings.session_file)
    return _GatewayClient(
        session, settings.api_id, settings.api_hash,
        device_model="tradingsystem-gateway",
        catch_up=False,            # not relied on: the gateway backfills from its own cursors
        sequential_updates=False,  # handlers only convert and enqueue in memory
        flood_sleep_threshold=60,  # Telethon sleeps through shorter waits; longer ones are ours
        auto_reconnect=True,
        connection_retries=5,      # then is_connected() turns False and the watcher takes over
        retry_delay=2,
    )


# -- conversion (pure, on real Telethon objects) -----------------------------------------------

def _aware(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def _clean_text(text: str | None) -> str:
    # PostgreSQL text cannot hold NUL; Telegram never sends it, but the contract forbids it.
    return (text or "").replace("\x00", "")


def _display_name(entity: Any) -> str | None:
    if entity is None:
        return None
    return utils.get_display_name(entity) or None


def _photos(message: types.Message) -> list[dict[str, Any]]:
    """Photo references as the old payload's `photos` list: ids only (file references expire;
    a later download refetches the message by id)."""
    media = message.media
    found: list[dict[str, Any]] = []
    if isinstance(media, types.MessageMediaPhoto) and isinstance(media.photo, types.Photo):
        found.append({"id": str(media.photo.id), "kind": "photo"})
    elif isinstance(media, types.MessageMediaDocument) and isinstance(media.document, types.Document):
        if (media.document.mime_type or "").startswith("image/"):
            found.append({"id": str(media.document.id), "kind": "document", "mimeType": media.document.mime_type})
    if found and message.grouped_id:
        for item in found:
            item["groupedId"] = str(message.grouped_id)
    return found


def _sender(message: types.Message) -> Sender | None:
    sender_entity = getattr(message, "sender", None) if message.from_id is not None else None
    if message.from_id is None and not message.post_author:
        return None  # an anonymous channel post
    return Sender(
        id=utils.get_peer_id(message.from_id) if message.from_id is not None else None,
        username=getattr(sender_entity, "username", None),
        display_name=_display_name(sender_entity) or message.post_author,
    )


def _forward(message: types.Message) -> Forward | None:
    header = message.fwd_from
    if header is None:
        return None
    name = header.from_name or header.post_author
    if name is None:
        custom = getattr(message, "forward", None)  # Telethon's Forward, with cached entities
        if custom is not None:
            name = _display_name(custom.chat or custom.sender)
    return Forward(
        from_id=utils.get_peer_id(header.from_id) if header.from_id is not None else None,
        from_name=name,
        channel_post=header.channel_post,
        date=_aware(header.date),
    )


def reply_to_message_id(message: types.Message, channel_id: int) -> int | None:
    """The id of the message this one replies to, only when that message is in the same chat.

    Telethon hands over Telegram's `MessageReplyHeader` as `message.reply_to`:
    - `reply_to_peer_id` / `reply_from` name another chat for a reply across chats (quoting a
      post of another channel): that id means nothing in this channel, so nothing is sent;
    - forum topics: every message posted in a topic has `forum_topic` set and, when it replies
      to nothing, `reply_to_msg_id` = the topic's first (service) message; only with
      `reply_to_top_id` also set is `reply_to_msg_id` a real reply. A topic is not a reply.
      (Broadcast channels such as TP Capital have no topics; groups with topics do.)
    - replies to scheduled or ephemeral messages and to stories (`MessageReplyStoryHeader`) point
      outside the channel's message ids: nothing is sent.
    """
    header = getattr(message, "reply_to", None)
    if not isinstance(header, types.MessageReplyHeader) or not header.reply_to_msg_id:
        return None
    if header.reply_to_scheduled or getattr(header, "reply_to_ephemeral", None):
        return None
    if header.reply_from is not None:
        return None
    if header.reply_to_peer_id is not None and utils.get_peer_id(header.reply_to_peer_id) != int(channel_id):
        return None
    if header.forum_topic and header.reply_to_top_id is None:
        return None
    return header.reply_to_msg_id if 1 <= header.reply_to_msg_id < 2**63 else None


def message_to_payload(message: Any, channel_id: int, channel_name: str | None = None,
                       *, edited: bool = False) -> NewMessage | EditedMessage | None:
    """A Telegram message as a contract payload; None for service/empty messages (no content)."""
    if not isinstance(message, types.Message) or message.date is None:
        return None
    fields: dict[str, Any] = dict(
        channel_id=channel_id,
        message_id=message.id,
        timestamp=_aware(message.date),  # Telegram's original date, not the time we saw it
        text=_clean_text(message.message),
        photos=_photos(message),
        sender=_sender(message),
        forward=_forward(message),
        channel_name=channel_name,
        reply_to_message_id=reply_to_message_id(message, channel_id),
    )
    if edited:
        if message.edit_date is None:
            # Channels also send "edits" for reaction/view changes of never-edited posts: no new text.
            return None
        return EditedMessage(edit_date=_aware(message.edit_date), **fields)
    return NewMessage(**fields)


def deleted_payloads(deleted_ids: list[int], channel_id: int,
                     known_dates: dict[tuple[int, int], datetime] | None = None,
                     *, now: datetime | None = None) -> list[DeletedMessage]:
    moment = now or datetime.now(timezone.utc)
    known = known_dates or {}
    return [DeletedMessage(channel_id=channel_id, message_id=message_id,
                           timestamp=known.get((channel_id, message_id)), deleted_at=moment)
            for message_id in deleted_ids if message_id > 0]


# -- the source --------------------------------------------------------------------------------

class TelethonSource:
    kind = "telegram"

    def __init__(self, settings: TelegramSettings, *, client_factory: ClientFactory | None = None,
                 sleep: Sleep = asyncio.sleep, watch_interval: float = 5.0, page_size: int = 100,
                 reconnect_backoff_max: float = 60.0) -> None:
        self.settings = settings
        self._client_factory = client_factory or default_client_factory
        self._sleep = sleep
        self.watch_interval = watch_interval
        self.page_size = page_size
        self.reconnect_backoff_max = reconnect_backoff_max
        self.client: Any = None
        self._entities: dict[int, Any] = {}
        self._names: dict[int, str | None] = {}
        self._inbox: asyncio.Queue[MessagePayload | None] = asyncio.Queue()
        self._callbacks: list[Callable[[], None]] = []
        self._known_dates: OrderedDict[tuple[int, int], datetime] = OrderedDict()
        self._connected = False
        self._closed = asyncio.Event()
        self._watcher: asyncio.Task[None] | None = None
        self.reconnects = 0

    # -- connection ---------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._connected

    def _set_connected(self, value: bool) -> None:
        self._connected = value
        metrics.CONNECTION_STATUS.set(1 if value else 0)

    async def connect(self) -> None:
        self.client = self._client_factory(self.settings)
        listeners = getattr(self.client, "reconnect_listeners", None)
        if listeners is not None:
            listeners.append(self._reconnected)
        await self.client.connect()
        if not await self.client.is_user_authorized():
            await self.client.disconnect()
            from ..session import SessionError

            raise SessionError("the Telegram session is not authorized (logged out or revoked): "
                               "run `uv run gateway login`")
        await self._resolve_channels()
        chats = list(self._entities)
        self.client.add_event_handler(self._on_new, events.NewMessage(chats=chats))
        self.client.add_event_handler(self._on_edit, events.MessageEdited(chats=chats))
        self.client.add_event_handler(self._on_delete, events.MessageDeleted(chats=chats))
        self._set_connected(True)
        self._watcher = asyncio.create_task(self._watch(), name="telegram-connection-watch")
        log.info("connected to Telegram; following %s",
                 ", ".join(f"{self._names[c] or '?'} ({c})" for c in chats))

    async def _resolve_one(self, spec: str) -> Any:
        if _NUMERIC.match(spec):
            number = int(spec)
            # A bare positive number is a channel id without the -100 prefix (Telethon would read
            # it as a user id).
            target: Any = number if number < 0 else types.PeerChannel(number)
        else:
            target = spec.lstrip("@")
        try:
            return await self._flood_safe(f"resolving {spec}", lambda: self.client.get_entity(target))
        except ValueError:
            # Ids resolve only from the session's entity cache: listing the dialogs fills it.
            await self._flood_safe("listing dialogs", lambda: self.client.get_dialogs())
            return await self._flood_safe(f"resolving {spec}", lambda: self.client.get_entity(target))

    async def _resolve_channels(self) -> None:
        for spec in self.settings.channels:
            try:
                entity = await self._resolve_one(spec)
            except ValueError as exc:
                raise ChannelNotFound(f"TELEGRAM_CHANNELS: cannot find {spec!r} ({exc}); use the channel's "
                                 "username or its -100… id, and make sure this account has joined it") from None
            channel_id = utils.get_peer_id(entity)
            self._entities[channel_id] = entity
            self._names[channel_id] = getattr(entity, "title", None) or getattr(entity, "username", None)

    async def close(self) -> None:
        self._closed.set()
        self._inbox.put_nowait(None)  # wakes events()
        if self._watcher is not None:
            self._watcher.cancel()
            await asyncio.gather(self._watcher, return_exceptions=True)
        if self.client is not None:
            await self.client.disconnect()
        self._set_connected(False)

    def on_reconnect(self, callback: Callable[[], None]) -> None:
        self._callbacks.append(callback)

    def _reconnected(self) -> None:
        self.reconnects += 1
        self._set_connected(True)
        log.info("Telegram connection is back: backfilling from the cursors (Telethon's catch-up is off)")
        for callback in list(self._callbacks):
            try:
                callback()
            except Exception:  # noqa: BLE001 - one listener must not stop the others
                log.exception("reconnect callback %r failed", callback)

    async def _wait_closed(self, seconds: float) -> bool:
        try:
            await asyncio.wait_for(self._closed.wait(), seconds)
            return True
        except asyncio.TimeoutError:
            return False

    async def _watch(self) -> None:
        """Reconnect when Telethon gave up on its own reconnect attempts."""
        while not await self._wait_closed(self.watch_interval):
            if self.client.is_connected():
                continue
            self._set_connected(False)
            log.warning("Telegram connection lost and Telethon stopped retrying: reconnecting")
            delay = 1.0
            while not self._closed.is_set():
                try:
                    await self.client.connect()
                except (OSError, ConnectionError, asyncio.TimeoutError) as exc:
                    log.warning("reconnect failed (%s); next attempt in %.0f s", exc, delay)
                else:
                    if self.client.is_connected():
                        if await self._still_authorized():
                            self._reconnected()
                        break
                if await self._wait_closed(delay):
                    return
                delay = min(delay * 2, self.reconnect_backoff_max)

    async def _still_authorized(self) -> bool:
        try:
            authorized = await self.client.is_user_authorized()
        except Exception as exc:  # noqa: BLE001 - the next watch round tries again
            log.warning("reconnected, but could not check the authorization: %s", exc)
            return True
        if not authorized:
            # Revoked, or AUTH_KEY_DUPLICATED: retrying cannot fix it; stay "disconnected" so the
            # GatewayDisconnected alert fires (runbook: docs/runbooks/telegram-reauth.md).
            log.error("the Telegram session is no longer authorized: run `gateway login` "
                      "(docs/runbooks/telegram-reauth.md)")
            self._set_connected(False)
        return authorized

    # -- FloodWait ----------------------------------------------------------------------------

    async def _flood_wait(self, exc: errors.FloodWaitError, what: str) -> None:
        seconds = max(int(exc.seconds or 0), 1)
        log.warning("Telegram asked to wait %d s (FloodWait) while %s: sleeping, then continuing", seconds, what)
        metrics.FLOOD_WAITS.inc(seconds)
        await self._sleep(seconds)

    async def _flood_safe(self, what: str, call: Callable[[], Awaitable[Any]]) -> Any:
        while True:
            try:
                return await call()
            except errors.FloodWaitError as exc:
                await self._flood_wait(exc, what)

    # -- live events --------------------------------------------------------------------------

    def _remember(self, payload: NewMessage | EditedMessage) -> None:
        key = (int(payload.channel_id), payload.message_id)
        self._known_dates[key] = payload.timestamp
        self._known_dates.move_to_end(key)
        while len(self._known_dates) > _KNOWN_DATES:
            self._known_dates.popitem(last=False)

    def _accept(self, payload: MessagePayload) -> None:
        if isinstance(payload, (NewMessage, EditedMessage)):
            self._remember(payload)
        metrics.MESSAGES_RECEIVED.labels(channel_id=str(payload.channel_id)).inc()
        self._inbox.put_nowait(payload)

    async def _on_new(self, event: Any) -> None:
        payload = message_to_payload(event.message, event.chat_id, self._names.get(event.chat_id))
        if payload is not None:
            self._accept(payload)

    async def _on_edit(self, event: Any) -> None:
        payload = message_to_payload(event.message, event.chat_id, self._names.get(event.chat_id), edited=True)
        if payload is not None:
            self._accept(payload)
        else:
            log.debug("edit event without edit date for %s/%s (reactions or views): ignored",
                      event.chat_id, getattr(event.message, "id", "?"))

    async def _on_delete(self, event: Any) -> None:
        for payload in deleted_payloads(list(event.deleted_ids or []), event.chat_id, self._known_dates):
            self._accept(payload)

    async def events(self) -> AsyncIterator[SourceBatch]:
        while True:
            first = await self._inbox.get()
            payloads = [] if first is None else [first]
            while len(payloads) < _MAX_BATCH and not self._inbox.empty():
                item = self._inbox.get_nowait()
                if item is not None:
                    payloads.append(item)
            if payloads:
                # No checkpoint: live events do not move cursors (backfill does).
                yield SourceBatch(items=[(str(idempotency_key(p)), encode_payload(p)) for p in payloads])
            if self._closed.is_set() and self._inbox.empty():
                return

    async def commit(self, checkpoint: Any) -> None:
        pass  # live events carry no checkpoint

    # -- history ------------------------------------------------------------------------------

    def channels(self) -> list[int]:
        return list(self._entities)

    def _history_payload(self, message: Any, channel_id: int) -> MessagePayload | None:
        payload = message_to_payload(message, channel_id, self._names.get(channel_id))
        if payload is not None:
            self._remember(payload)
        return payload

    async def history(self, channel_id: int, min_id: int | None, *,
                      depth: int | None = None) -> AsyncIterator[HistoryPage]:
        """Messages with id > min_id, oldest first, page by page; min_id None: the newest `depth`
        messages (default `backfill_initial_limit`: a channel's first backfill; after a damaged
        cursor file, the recovery limit)."""
        entity = self._entities[channel_id]
        if min_id is None:
            limit = self.settings.backfill_initial_limit if depth is None else depth
            async for page in self._recent(channel_id, entity, limit):
                yield page
            return
        highest = min_id
        payloads: list[MessagePayload] = []
        seen = 0
        while True:
            try:
                async for message in self.client.iter_messages(entity, min_id=highest, reverse=True):
                    highest = max(highest, message.id)
                    payload = self._history_payload(message, channel_id)
                    if payload is not None:
                        payloads.append(payload)
                    seen += 1
                    if seen >= self.page_size:
                        yield HistoryPage(channel_id, payloads, highest)
                        payloads, seen = [], 0
                break
            except errors.FloodWaitError as exc:
                # Resume right after the last message already read (kept in `payloads`).
                await self._flood_wait(exc, f"reading the history of {channel_id} after {highest}")
        if seen:
            yield HistoryPage(channel_id, payloads, highest)

    async def _recent(self, channel_id: int, entity: Any, limit: int) -> AsyncIterator[HistoryPage]:
        # limit 0 still reads the newest id, so the cursor starts at "now" and later backfills
        # only bring what is new.
        wanted = max(limit, 1)
        collected: dict[int, Any] = {}
        offset_id = 0
        while len(collected) < wanted:
            try:
                async for message in self.client.iter_messages(entity, limit=wanted - len(collected),
                                                               offset_id=offset_id):
                    collected[message.id] = message
                    offset_id = message.id  # newest first: the next request continues below it
                break
            except errors.FloodWaitError as exc:
                await self._flood_wait(exc, f"reading the recent history of {channel_id}")
        ordered = [collected[i] for i in sorted(collected)]
        if limit == 0:
            if ordered:
                yield HistoryPage(channel_id, [], ordered[-1].id)
            return
        for start in range(0, len(ordered), self.page_size):
            chunk = ordered[start:start + self.page_size]
            payloads = [p for p in (self._history_payload(m, channel_id) for m in chunk) if p is not None]
            yield HistoryPage(channel_id, payloads, chunk[-1].id)
