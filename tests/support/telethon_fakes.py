"""Real Telethon objects and a small fake client for the Telegram adapter tests.

Telegram is unreachable here. The fake implements only the client calls TelethonSource makes
(connect / is_connected / disconnect / is_user_authorized / get_entity / get_dialogs /
add_event_handler / iter_messages). It is not Telegram: what it shows is that the adapter handles
the real `telethon.tl.types` objects and Telethon's own event builders and chat filters (dispatch
goes through Telethon's `EventBuilderDict`, as `TelegramClient._dispatch_update` does).
"""

from __future__ import annotations

import inspect
from datetime import datetime, timedelta, timezone
from typing import Any

from telethon import errors, utils
from telethon._updates import EntityCache
from telethon.client.updates import EventBuilderDict
from telethon.tl import types

CHANNEL_ID = 1649127710                  # Telegram's bare channel id
MARKED_ID = -1001649127710               # the same channel as Telethon/Bot API "marked" id
OTHER_ID = 1111111111
OTHER_MARKED = -1001111111111
T0 = datetime(2025, 10, 7, 17, 25, 59, tzinfo=timezone.utc)


def channel(channel_id: int = CHANNEL_ID, title: str = "TP Capital", username: str | None = "tpcapital") -> types.Channel:
    return types.Channel(id=channel_id, title=title, photo=types.ChatPhotoEmpty(), date=T0,
                         broadcast=True, access_hash=987654321 + channel_id, username=username)


def user(user_id: int = 4242, first: str = "Ana", last: str | None = "Lima", username: str | None = "analima") -> types.User:
    return types.User(id=user_id, access_hash=1234, first_name=first, last_name=last, username=username)


def message(message_id: int, text: str = "", *, channel_id: int = CHANNEL_ID, date: datetime | None = None,
            **fields: Any) -> types.Message:
    return types.Message(id=message_id, peer_id=types.PeerChannel(channel_id),
                         date=date or T0 + timedelta(minutes=message_id), message=text, post=True, **fields)


def service(message_id: int, *, channel_id: int = CHANNEL_ID) -> types.MessageService:
    return types.MessageService(id=message_id, peer_id=types.PeerChannel(channel_id),
                                date=T0 + timedelta(minutes=message_id),
                                action=types.MessageActionPinMessage())


def photo(photo_id: int = 5_123_456_789_012_345_678) -> types.MessageMediaPhoto:
    return types.MessageMediaPhoto(photo=types.Photo(
        id=photo_id, access_hash=77, file_reference=b"\x01ref", date=T0,
        sizes=[types.PhotoSize(type="x", w=800, h=600, size=12345)], dc_id=4))


def flood(seconds: int) -> errors.FloodWaitError:
    return errors.FloodWaitError(request=None, capture=seconds)


class FakeTelegramClient:
    """Only the calls TelethonSource makes; history and entities are plain dicts."""

    def __init__(self, *, channels: list[types.Channel] | None = None, users: list[types.User] | None = None,
                 authorized: bool = True, ids_need_dialogs: bool = False) -> None:
        self._self_id = 777
        self._mb_entity_cache = EntityCache()
        self._event_builders: list[tuple[Any, Any]] = []
        self.reconnect_listeners: list[Any] = []
        self.channels = channels if channels is not None else [channel()]
        self.users = users or []
        self.entities: dict[int, Any] = {utils.get_peer_id(e): e for e in [*self.channels, *self.users]}
        self.history: dict[int, list[Any]] = {}
        self.authorized = authorized
        self.ids_need_dialogs = ids_need_dialogs
        self.dialogs_loaded = False
        self.connected = False
        self.connect_calls = 0
        self.connect_failures = 0          # the next N connect() calls raise OSError
        self.iter_calls: list[dict[str, Any]] = []
        self.floods: list[tuple[int, int]] = []   # (after N messages in a call, FloodWait seconds), consumed
        self.entity_floods: list[int] = []        # FloodWait seconds raised by the next get_entity calls

    # -- connection --------------------------------------------------------------------------
    async def connect(self) -> None:
        self.connect_calls += 1
        if self.connect_failures:
            self.connect_failures -= 1
            raise OSError("network unreachable (fake)")
        self.connected = True

    def is_connected(self) -> bool:
        return self.connected

    async def disconnect(self) -> None:
        self.connected = False

    async def is_user_authorized(self) -> bool:
        return self.authorized

    def transport_reconnected(self) -> None:
        """What _GatewayClient does after Telethon re-established a dropped connection."""
        for listener in list(self.reconnect_listeners):
            listener()

    # -- entities ----------------------------------------------------------------------------
    async def get_entity(self, target: Any) -> Any:
        if self.entity_floods:
            raise flood(self.entity_floods.pop(0))
        if isinstance(target, str):
            for entity in self.channels:
                if entity.username and entity.username.lower() == target.lower():
                    return entity
            raise ValueError(f'No user has "{target}" as username')
        if self.ids_need_dialogs and not self.dialogs_loaded:
            raise ValueError(f"Could not find the input entity for {target!r}")
        marked = utils.get_peer_id(target) if not isinstance(target, int) else target
        if marked in self.entities:
            return self.entities[marked]
        raise ValueError(f"Could not find the input entity for {target!r}")

    async def get_dialogs(self) -> list[Any]:
        self.dialogs_loaded = True
        return list(self.channels)

    # -- events ------------------------------------------------------------------------------
    def add_event_handler(self, callback: Any, event: Any) -> None:
        self._event_builders.append((event, callback))

    async def dispatch(self, update: Any) -> None:
        """The loop of TelegramClient._dispatch_update, with Telethon's own builders and filters."""
        update._entities = dict(self.entities)
        built = EventBuilderDict(self, update, None)
        for builder, callback in self._event_builders:
            event = built[type(builder)]
            if not event:
                continue
            if not builder.resolved:
                await builder.resolve(self)
            verdict = builder.filter(event)
            if inspect.isawaitable(verdict):
                verdict = await verdict
            if verdict:
                await callback(event)

    async def get_input_entity(self, peer: Any) -> Any:  # used by Telethon only for non-id chat filters
        return utils.get_input_peer(await self.get_entity(peer))

    # -- history -----------------------------------------------------------------------------
    async def iter_messages(self, entity: Any, limit: int | None = None, *, min_id: int = 0, offset_id: int = 0,
                            reverse: bool = False, **rest: Any):
        self.iter_calls.append(dict(entity=utils.get_peer_id(entity), limit=limit, min_id=min_id,
                                    offset_id=offset_id, reverse=reverse, **rest))
        stored = sorted(self.history.get(utils.get_peer_id(entity), []), key=lambda m: m.id)
        if reverse:
            chosen = [m for m in stored if m.id > max(min_id, offset_id)]
        else:
            chosen = [m for m in reversed(stored) if m.id > min_id and (not offset_id or m.id < offset_id)]
        if limit is not None:
            chosen = chosen[:limit]
        flood_after = self.floods.pop(0) if self.floods else None
        for n, item in enumerate(chosen):
            if flood_after is not None and n == flood_after[0]:
                raise flood(flood_after[1])
            if isinstance(item, types.Message):
                item._finish_init(self, dict(self.entities), None)
            yield item
        if flood_after is not None and flood_after[0] >= len(chosen):
            raise flood(flood_after[1])


class SleepRecorder:
    """Stands in for asyncio.sleep: records the waits, never waits."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
