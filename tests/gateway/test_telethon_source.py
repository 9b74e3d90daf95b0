"""TelethonSource on real telethon.tl.types objects and Telethon's own event builders, with a fake
client (Telegram is unreachable here: nothing below talks to Telegram)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st
from telethon.sessions import StringSession
from telethon.tl import types

from contracts import DeletedMessage, EditedMessage, NewMessage, decode_payload, encode_payload
from gateway.cursors import CursorStore
from gateway.queue import DurableQueue
from gateway.service import Gateway
from gateway.settings import TelegramSettings
from gateway.source import SourceBatch
from gateway.source.telethon_source import (ChannelNotFound, TelethonSource, _GatewayClient, deleted_payloads,
                                            message_to_payload)

from tests.support.telethon_fakes import (CHANNEL_ID, MARKED_ID, OTHER_ID, OTHER_MARKED, T0, FakeTelegramClient, SleepRecorder,
                             channel, message, photo, service, user)


def make_source(fake: FakeTelegramClient, *, channels: tuple[str, ...] = (str(MARKED_ID),), **kw: Any) -> tuple[TelethonSource, SleepRecorder]:
    sleep = SleepRecorder()
    settings = TelegramSettings(api_id=1, api_hash="x", channels=channels, backfill_initial_limit=kw.pop("limit", 100))
    return TelethonSource(settings, client_factory=lambda s: fake, sleep=sleep, **kw), sleep


async def next_batch(source: TelethonSource, timeout: float = 1.0) -> SourceBatch:
    agen = source.events()
    try:
        return await asyncio.wait_for(agen.__anext__(), timeout)
    finally:
        await agen.aclose()


def drained(source: TelethonSource) -> list[Any]:
    items = []
    while not source._inbox.empty():
        items.append(source._inbox.get_nowait())
    return items


# -- conversion -------------------------------------------------------------------------------

def test_new_message_keeps_telegram_date_and_marked_channel_id() -> None:
    msg = message(42, "ATIVO: PETR4\nCOMPRA: 25.50 A 26.00", date=T0)
    payload = message_to_payload(msg, MARKED_ID, "TP Capital")
    assert isinstance(payload, NewMessage)
    assert payload.timestamp == T0 and payload.timestamp.utcoffset() == timedelta(0)
    assert payload.message_id == 42 and payload.text.startswith("ATIVO: PETR4")
    wire = msgspec.json.decode(encode_payload(payload))
    assert wire["channelId"] == MARKED_ID == -1001649127710
    assert wire["timestamp"] == "2025-10-07T17:25:59Z" and wire["channelName"] == "TP Capital"
    assert "sender" not in wire  # an anonymous channel post
    assert decode_payload(encode_payload(payload)) == payload


def test_media_only_photo_message_has_empty_text_and_photo_reference() -> None:
    msg = message(43, "", media=photo(5_123_456_789_012_345_678), grouped_id=99)
    payload = message_to_payload(msg, MARKED_ID)
    assert payload is not None and payload.text == ""
    assert payload.photos == [{"id": "5123456789012345678", "kind": "photo", "groupedId": "99"}]
    # No file reference on the wire: it expires, the id does not.
    assert b"ref" not in encode_payload(payload)


def test_forward_and_sender_metadata_from_real_headers() -> None:
    fake = FakeTelegramClient(users=[user(4242)], channels=[channel(), channel(OTHER_ID, "Origem", "origem")])
    msg = message(44, "repost", from_id=types.PeerUser(4242), post_author="Ana L.",
                  fwd_from=types.MessageFwdHeader(date=T0 - timedelta(days=1), from_id=types.PeerChannel(OTHER_ID),
                                                  channel_post=7))
    msg._finish_init(fake, dict(fake.entities), None)
    payload = message_to_payload(msg, MARKED_ID)
    assert payload is not None and payload.sender is not None and payload.forward is not None
    assert (payload.sender.id, payload.sender.username, payload.sender.display_name) == (4242, "analima", "Ana Lima")
    assert payload.forward.from_id == OTHER_MARKED and payload.forward.channel_post == 7
    assert payload.forward.from_name == "Origem" and payload.forward.date == T0 - timedelta(days=1)


def test_service_and_empty_messages_give_no_payload() -> None:
    assert message_to_payload(service(45), MARKED_ID) is None
    assert message_to_payload(types.MessageEmpty(id=46, peer_id=types.PeerChannel(CHANNEL_ID)), MARKED_ID) is None


def test_edit_needs_an_edit_date() -> None:
    edited = message(47, "ALVO 1: 28.00", date=T0, edit_date=T0 + timedelta(hours=2))
    payload = message_to_payload(edited, MARKED_ID, edited=True)
    assert isinstance(payload, EditedMessage)
    assert payload.timestamp == T0 and payload.edit_date == T0 + timedelta(hours=2)
    # A reaction or view change on a never-edited post arrives as an "edit" without edit_date.
    assert message_to_payload(message(48, "x"), MARKED_ID, edited=True) is None


def test_deletions_carry_the_original_date_when_known() -> None:
    known = {(MARKED_ID, 5): T0}
    payloads = deleted_payloads([5, 6], MARKED_ID, known, now=T0 + timedelta(days=1))
    assert [(p.message_id, p.timestamp, p.deleted_at) for p in payloads] == [
        (5, T0, T0 + timedelta(days=1)), (6, None, T0 + timedelta(days=1))]


def wire(msg: types.Message) -> types.Message:
    """The message as Telethon decodes it off the network: serialized to TL bytes and read back."""
    from telethon.extensions import BinaryReader

    return BinaryReader(bytes(msg)).tgread_object()


REPLIES = {
    "a reply in the channel": (types.MessageReplyHeader(reply_to_msg_id=42), 42),
    "the channel named as the peer": (types.MessageReplyHeader(reply_to_msg_id=42,
                                                               reply_to_peer_id=types.PeerChannel(CHANNEL_ID)), 42),
    "a reply to another chat": (types.MessageReplyHeader(reply_to_msg_id=42,
                                                         reply_to_peer_id=types.PeerChannel(OTHER_ID)), None),
    "a quote from another chat": (types.MessageReplyHeader(
        reply_to_msg_id=42, reply_from=types.MessageFwdHeader(date=T0, from_id=types.PeerChannel(OTHER_ID))), None),
    "posted in a forum topic, replying to nothing": (types.MessageReplyHeader(reply_to_msg_id=7, forum_topic=True), None),
    "a reply inside a forum topic": (types.MessageReplyHeader(reply_to_msg_id=42, forum_topic=True,
                                                              reply_to_top_id=7), 42),
    "a reply to a scheduled message": (types.MessageReplyHeader(reply_to_msg_id=42, reply_to_scheduled=True), None),
    "a reply to a story": (types.MessageReplyStoryHeader(peer=types.PeerUser(4242), story_id=5), None),
    "no reply": (None, None),
}


@pytest.mark.parametrize("case", sorted(REPLIES))
@pytest.mark.parametrize("edited", [False, True])
def test_reply_to_message_id_only_for_replies_in_the_same_chat(case: str, edited: bool) -> None:
    header, expected = REPLIES[case]
    msg = wire(message(43, "Alvo 2 batido ✅ +41%", reply_to=header, edit_date=T0 + timedelta(hours=1)))
    payload = message_to_payload(msg, MARKED_ID, edited=edited)
    assert isinstance(payload, EditedMessage if edited else NewMessage)
    assert payload.reply_to_message_id == expected
    on_the_wire = msgspec.json.decode(encode_payload(payload))
    assert on_the_wire.get("replyToMessageId") == expected  # absent (not null) when there is none
    assert decode_payload(encode_payload(payload)) == payload


# -- live events through Telethon's builders and chat filter -------------------------------------

async def test_live_new_edit_delete_become_one_batch_of_contract_payloads() -> None:
    fake = FakeTelegramClient()
    source, _ = make_source(fake)
    await source.connect()
    try:
        assert source.channels() == [MARKED_ID] and source.connected
        await fake.dispatch(types.UpdateNewChannelMessage(message(42, "ATIVO: VALE3", date=T0), pts=1, pts_count=1))
        await fake.dispatch(types.UpdateEditChannelMessage(
            message(42, "ATIVO: VALE3 COMPRA: 50", date=T0, edit_date=T0 + timedelta(minutes=3)), pts=2, pts_count=1))
        await fake.dispatch(types.UpdateDeleteChannelMessages(channel_id=CHANNEL_ID, messages=[42, 41], pts=3, pts_count=2))
        batch = await next_batch(source)
    finally:
        await source.close()
    assert batch.checkpoint is None  # live events never move a cursor
    keys = [key for key, _ in batch.items]
    assert keys == [f"{MARKED_ID}:42", f"{MARKED_ID}:42:edited:{int((T0 + timedelta(minutes=3)).timestamp() * 1_000_000)}",
                    f"{MARKED_ID}:42:deleted", f"{MARKED_ID}:41:deleted"]
    new, edit, deleted, deleted_unknown = (decode_payload(raw) for _, raw in batch.items)
    assert isinstance(new, NewMessage) and new.timestamp == T0 and new.channel_name == "TP Capital"
    assert isinstance(edit, EditedMessage) and edit.timestamp == T0 and edit.text.endswith("COMPRA: 50")
    assert isinstance(deleted, DeletedMessage) and deleted.timestamp == T0 and deleted.deleted_at is not None
    assert isinstance(deleted_unknown, DeletedMessage) and deleted_unknown.timestamp is None


async def test_live_reply_and_edited_reply_carry_the_replied_message_id() -> None:
    fake = FakeTelegramClient()
    source, _ = make_source(fake)
    await source.connect()
    try:
        reply = types.MessageReplyHeader(reply_to_msg_id=42)
        await fake.dispatch(types.UpdateNewChannelMessage(wire(message(43, "Alvo 1 batido", reply_to=reply)),
                                                          pts=1, pts_count=1))
        await fake.dispatch(types.UpdateEditChannelMessage(
            wire(message(43, "Alvo 1 batido ✅", reply_to=reply, edit_date=T0 + timedelta(hours=1))), pts=2, pts_count=1))
        await fake.dispatch(types.UpdateNewChannelMessage(
            wire(message(44, "de outro canal", reply_to=types.MessageReplyHeader(
                reply_to_msg_id=42, reply_to_peer_id=types.PeerChannel(OTHER_ID)))), pts=3, pts_count=1))
        batch = await next_batch(source)
    finally:
        await source.close()
    new, edit, cross = (decode_payload(raw) for _, raw in batch.items)
    assert (type(new), new.reply_to_message_id) == (NewMessage, 42)
    assert (type(edit), edit.reply_to_message_id) == (EditedMessage, 42)
    assert cross.message_id == 44 and cross.reply_to_message_id is None
    assert b'"replyToMessageId":42' in batch.items[0][1] and b"replyToMessageId" not in batch.items[2][1]


async def test_backfilled_replies_carry_the_replied_message_id() -> None:
    fake = FakeTelegramClient()
    fake.history[MARKED_ID] = [message(1, "🟢Swing Trade Ativo: BOVAW32"),
                               message(2, "Alvo 2 batido ✅", reply_to=types.MessageReplyHeader(reply_to_msg_id=1))]
    source, _ = make_source(fake)
    await source.connect()
    pages = [page async for page in source.history(MARKED_ID, 0)]
    await source.close()
    assert [(p.message_id, p.reply_to_message_id) for page in pages for p in page.payloads] == [(1, None), (2, 1)]


async def test_other_chats_and_service_messages_are_not_queued() -> None:
    fake = FakeTelegramClient(channels=[channel(), channel(OTHER_ID, "Other", "other")])
    source, _ = make_source(fake)
    await source.connect()
    try:
        await fake.dispatch(types.UpdateNewChannelMessage(message(1, "not ours", channel_id=OTHER_ID), pts=1, pts_count=1))
        await fake.dispatch(types.UpdateDeleteChannelMessages(channel_id=OTHER_ID, messages=[1], pts=2, pts_count=1))
        await fake.dispatch(types.UpdateNewChannelMessage(service(2), pts=3, pts_count=1))
        # A non-channel deletion has no chat: Telethon's chat filter drops it.
        await fake.dispatch(types.UpdateDeleteMessages(messages=[3], pts=4, pts_count=1))
        await fake.dispatch(types.UpdateNewChannelMessage(message(4, "", media=photo()), pts=5, pts_count=1))
        queued = drained(source)
    finally:
        await source.close()
    assert [(type(p).__name__, p.message_id, p.photos != []) for p in queued if p is not None] == [("NewMessage", 4, True)]


async def test_channels_resolve_from_usernames_and_bare_ids() -> None:
    fake = FakeTelegramClient(channels=[channel(), channel(OTHER_ID, "Other", None)], ids_need_dialogs=True)
    source, _ = make_source(fake, channels=("@tpcapital", str(OTHER_ID)))
    await source.connect()
    await source.close()
    assert source.channels() == [MARKED_ID, OTHER_MARKED]
    assert fake.dialogs_loaded  # the id was not in the entity cache until the dialogs were listed


async def test_unauthorized_session_stops_with_login_hint() -> None:
    from gateway.session import SessionError

    source, _ = make_source(FakeTelegramClient(authorized=False))
    with pytest.raises(SessionError, match="gateway login"):
        await source.connect()


async def test_unknown_channel_is_a_clear_error() -> None:
    source, _ = make_source(FakeTelegramClient(), channels=("nosuchchannel",))
    with pytest.raises(ChannelNotFound, match="TELEGRAM_CHANNELS: cannot find 'nosuchchannel'") as raised:
        await source.connect()
    # A configuration problem: the gateway exits 2, which systemd does not restart in a loop.
    assert raised.value.exit_code == 2


async def test_flood_wait_while_resolving_is_slept_then_resolved() -> None:
    fake = FakeTelegramClient()
    fake.entity_floods = [90]
    source, sleep = make_source(fake, channels=("tpcapital",))
    await source.connect()
    await source.close()
    assert sleep.waits == [90] and source.channels() == [MARKED_ID]


# -- history / backfill -----------------------------------------------------------------------

async def test_history_pages_from_cursor_oldest_first_and_last_id_covers_service_messages() -> None:
    fake = FakeTelegramClient()
    fake.history[MARKED_ID] = [message(i, f"m{i}") for i in range(1, 13)] + [service(13)]
    source, _ = make_source(fake, page_size=5)
    await source.connect()
    pages = [page async for page in source.history(MARKED_ID, 3)]
    await source.close()
    assert fake.iter_calls == [dict(entity=MARKED_ID, limit=None, min_id=3, offset_id=0, reverse=True)]
    assert [[p.message_id for p in page.payloads] for page in pages] == [[4, 5, 6, 7, 8], [9, 10, 11, 12]]
    assert [page.last_id for page in pages] == [8, 13]  # the pin (service message) still moves the cursor
    assert all(p.timestamp == T0 + timedelta(minutes=p.message_id) for page in pages for p in page.payloads)


async def test_first_backfill_takes_the_newest_messages_in_order() -> None:
    fake = FakeTelegramClient()
    fake.history[MARKED_ID] = [message(i, f"m{i}") for i in range(1, 21)]
    source, _ = make_source(fake, limit=4)
    await source.connect()
    pages = [page async for page in source.history(MARKED_ID, None)]
    await source.close()
    assert [[p.message_id for p in page.payloads] for page in pages] == [[17, 18, 19, 20]]
    assert pages[-1].last_id == 20


async def test_first_backfill_with_limit_zero_only_sets_the_cursor() -> None:
    fake = FakeTelegramClient()
    fake.history[MARKED_ID] = [message(i) for i in range(1, 6)]
    source, _ = make_source(fake, limit=0)
    await source.connect()
    pages = [page async for page in source.history(MARKED_ID, None)]
    await source.close()
    assert [(page.payloads, page.last_id) for page in pages] == [([], 5)]


async def test_flood_wait_mid_history_sleeps_as_told_and_resumes_without_loss_or_repeat() -> None:
    fake = FakeTelegramClient()
    fake.history[MARKED_ID] = [message(i, f"m{i}") for i in range(11, 31)]
    fake.floods = [(7, 120), (3, 75)]  # first call fails after 7 messages, the resumed one after 3
    source, sleep = make_source(fake, page_size=100)
    await source.connect()
    pages = [page async for page in source.history(MARKED_ID, 10)]
    await source.close()
    assert sleep.waits == [120, 75]
    assert [call["min_id"] for call in fake.iter_calls] == [10, 17, 20]
    ids = [p.message_id for page in pages for p in page.payloads]
    assert ids == list(range(11, 31)) and pages[-1].last_id == 30


async def test_flood_wait_during_first_backfill_continues_below_what_was_read() -> None:
    fake = FakeTelegramClient()
    fake.history[MARKED_ID] = [message(i) for i in range(1, 11)]
    fake.floods = [(2, 61)]
    source, sleep = make_source(fake, limit=5)
    await source.connect()
    pages = [page async for page in source.history(MARKED_ID, None)]
    await source.close()
    assert sleep.waits == [61]
    assert [call["offset_id"] for call in fake.iter_calls] == [0, 9]
    assert [p.message_id for page in pages for p in page.payloads] == [6, 7, 8, 9, 10]


class _Wakeable:
    def __init__(self) -> None:
        self.wakes = 0

    def wake(self) -> None:
        self.wakes += 1


async def test_backfill_after_a_gap_queues_the_missed_messages_once(tmp_path: Path) -> None:
    """Cursor 10, the gateway was away for 11..14, a live event for 15 arrived on reconnect: the
    backfill (real Gateway, queue and cursor file) queues 11..14 and skips the live 15."""
    fake = FakeTelegramClient()
    fake.history[MARKED_ID] = [message(i, f"m{i}") for i in range(1, 16)] + [service(16)]
    source, _ = make_source(fake)
    cursors = CursorStore(tmp_path / "cursors.json")
    cursors.advance(MARKED_ID, 10)
    queue = DurableQueue(tmp_path / "failure-queue.jsonl")
    queue.open()
    gateway = Gateway(source, queue, publisher=None, drainer=_Wakeable(), cursors=cursors)  # type: ignore[arg-type]
    await source.connect()
    try:
        await fake.dispatch(types.UpdateNewChannelMessage(message(15, "m15"), pts=1, pts_count=1))
        await gateway.enqueue(await next_batch(source))
        queued = await gateway.backfill()
    finally:
        await source.close()
    assert queued == 4
    assert [decode_payload(r.payload).message_id for r in queue.pending()] == [15, 11, 12, 13, 14]
    assert CursorStore(tmp_path / "cursors.json").load() == {MARKED_ID: 16}
    queue.close()


async def test_events_still_queued_at_close_are_yielded_before_the_stream_ends() -> None:
    fake = FakeTelegramClient()
    source, _ = make_source(fake)
    await source.connect()
    for i in (1, 2, 3):
        await fake.dispatch(types.UpdateNewChannelMessage(message(i, f"m{i}"), pts=i, pts_count=1))
    await source.close()
    batches = [batch async for batch in source.events()]
    assert [key for batch in batches for key, _ in batch.items] == [f"{MARKED_ID}:{i}" for i in (1, 2, 3)]
    assert not source.connected and not fake.connected


async def test_real_telethon_client_dispatch_reaches_the_queue() -> None:
    """The installed Telethon's own `_dispatch_update`, on a real client built offline (its network
    calls replaced): the handlers TelethonSource registers receive and convert the update."""
    client = _GatewayClient(StringSession(), 1, "0" * 32, catch_up=False)
    entity = channel()

    async def offline(*args: Any, **kwargs: Any) -> Any:
        return None

    async def authorized() -> bool:
        return True

    async def get_entity(target: Any) -> Any:
        return entity

    client.connect = offline  # type: ignore[method-assign]
    client.disconnect = offline  # type: ignore[method-assign]
    client.get_me = offline  # type: ignore[method-assign]
    client.is_user_authorized = authorized  # type: ignore[method-assign]
    client.get_entity = get_entity  # type: ignore[method-assign]
    client.is_connected = lambda: True  # type: ignore[method-assign]
    source, _ = make_source(client)  # type: ignore[arg-type]
    await source.connect()
    try:
        update = types.UpdateNewChannelMessage(message(9, "ATIVO: ITUB4", date=T0), pts=1, pts_count=1)
        update._entities = {MARKED_ID: entity}
        await client._dispatch_update(update)
        other = types.UpdateNewChannelMessage(message(10, "x", channel_id=OTHER_ID), pts=2, pts_count=1)
        other._entities = {}
        await client._dispatch_update(other)
        batch = await next_batch(source)
    finally:
        await source.close()
    assert [key for key, _ in batch.items] == [f"{MARKED_ID}:9"]
    payload = decode_payload(batch.items[0][1])
    assert payload.timestamp == T0 and payload.text == "ATIVO: ITUB4" and payload.channel_name == "TP Capital"


# -- reconnects -------------------------------------------------------------------------------

async def test_transport_reconnect_fires_the_callbacks() -> None:
    fake = FakeTelegramClient()
    source, _ = make_source(fake)
    fired: list[str] = []
    source.on_reconnect(lambda: fired.append("backfill"))
    await source.connect()
    fake.transport_reconnected()
    await source.close()
    assert fired == ["backfill"] and source.reconnects == 1


async def test_watcher_reconnects_after_telethon_gave_up_and_fires_the_callbacks() -> None:
    fake = FakeTelegramClient()
    source, _ = make_source(fake, watch_interval=0.01, reconnect_backoff_max=0.02)
    fired = asyncio.Event()
    source.on_reconnect(fired.set)
    await source.connect()
    try:
        fake.connected = False      # Telethon's own retries are exhausted
        fake.connect_failures = 2   # and the network is still down for two attempts
        await asyncio.sleep(0.03)
        assert not source.connected
        await asyncio.wait_for(fired.wait(), 5)
    finally:
        await source.close()
    assert fake.connect_calls == 1 + 3 and source.reconnects == 1


async def test_real_client_chains_telethons_auto_reconnect_hook() -> None:
    """Offline check against the installed Telethon: its sender still calls the client's
    `_handle_auto_reconnect` after a reconnect, and ours notifies the listeners."""
    client = _GatewayClient(StringSession(), 1, "0" * 32, catch_up=False)
    fired: list[bool] = []
    client.reconnect_listeners.append(lambda: fired.append(True))
    callback = client._sender._auto_reconnect_callback
    assert getattr(callback, "__func__", None) is _GatewayClient._handle_auto_reconnect

    async def offline_get_me(*args: Any, **kwargs: Any) -> None:
        raise ConnectionError("offline")  # Telethon logs and swallows this after a reconnect

    client.get_me = offline_get_me  # type: ignore[method-assign]
    await callback()
    assert fired == [True]


async def test_reconnect_with_a_revoked_session_stays_disconnected_without_backfill() -> None:
    fake = FakeTelegramClient()
    source, _ = make_source(fake, watch_interval=0.01)
    fired: list[bool] = []
    source.on_reconnect(lambda: fired.append(True))
    await source.connect()
    try:
        fake.authorized = False     # e.g. AUTH_KEY_DUPLICATED: Telegram revoked the key
        fake.connected = False
        for _ in range(200):
            await asyncio.sleep(0.01)
            if fake.connect_calls > 1:
                break
        await asyncio.sleep(0.05)
    finally:
        await source.close()
    assert fake.connect_calls == 2 and fired == [] and not source.connected


def test_default_client_uses_the_string_session_with_catch_up_off(tmp_path: Path) -> None:
    from telethon.crypto import AuthKey

    from gateway.source.telethon_source import default_client_factory

    string = StringSession()
    string.set_dc(2, "149.154.167.51", 443)
    string.auth_key = AuthKey(bytes(255 - i for i in range(256)))
    client = default_client_factory(TelegramSettings(api_id=1, api_hash="x", string_session=string.save(),
                                                     session_path=tmp_path / "unused.session"))
    assert isinstance(client, _GatewayClient) and isinstance(client.session, StringSession)
    assert client._catch_up is False and client.flood_sleep_threshold == 60
    assert not (tmp_path / "unused.session").exists()


def test_default_client_refuses_a_missing_session_file_instead_of_creating_one(tmp_path: Path) -> None:
    from gateway.session import SessionError
    from gateway.source.telethon_source import default_client_factory

    with pytest.raises(SessionError, match="gateway login"):
        default_client_factory(TelegramSettings(api_id=1, api_hash="x", session_path=tmp_path / "gateway.session"))
    assert list(tmp_path.iterdir()) == []


# -- properties -------------------------------------------------------------------------------

texts = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=300)
dates = st.datetimes(min_value=T0.replace(tzinfo=None) - timedelta(days=3650),
                     max_value=T0.replace(tzinfo=None) + timedelta(days=3650))


@hsettings(max_examples=200, deadline=None)
@given(message_id=st.integers(1, 2**31 - 1), text=texts, date=dates, channel_bare=st.integers(1, 2**40))
def test_any_message_converts_to_a_valid_payload_with_its_own_date(message_id: int, text: str, date: Any,
                                                                   channel_bare: int) -> None:
    from datetime import timezone

    marked = int(f"-100{channel_bare}")
    msg = message(message_id, text, channel_id=channel_bare, date=date.replace(tzinfo=timezone.utc))
    payload = message_to_payload(msg, marked)
    assert payload is not None
    again = decode_payload(encode_payload(payload))  # the contract's own validation
    assert again.timestamp == date.replace(tzinfo=timezone.utc) and again.message_id == message_id
    assert again.channel_id == marked and again.text == text.replace("\x00", "")


@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ids=st.sets(st.integers(1, 400), max_size=60), services=st.sets(st.integers(1, 400), max_size=10),
       cursor=st.integers(0, 400), page_size=st.integers(1, 25),
       floods=st.lists(st.tuples(st.integers(0, 30), st.integers(61, 3600)), max_size=3))
def test_backfill_yields_every_message_above_the_cursor_once_in_order(ids: set[int], services: set[int], cursor: int,
                                                                      page_size: int, floods: list[tuple[int, int]]) -> None:
    async def scenario() -> None:
        fake = FakeTelegramClient()
        fake.history[MARKED_ID] = [message(i) for i in ids - services] + [service(i) for i in services]
        fake.floods = list(floods)
        source, sleep = make_source(fake, page_size=page_size)
        await source.connect()
        pages = [page async for page in source.history(MARKED_ID, cursor)]
        await source.close()
        got = [p.message_id for page in pages for p in page.payloads]
        assert got == sorted(i for i in ids - services if i > cursor)
        above = [i for i in ids | services if i > cursor]
        assert (pages[-1].last_id if pages else None) == (max(above) if above else None)
        assert [page.last_id for page in pages] == sorted({page.last_id for page in pages})
        # Every FloodWait that fired was slept in full, none skipped.
        assert sum(sleep.waits) == sum(s for _, s in floods[:len(sleep.waits)])

    asyncio.run(scenario())


# -- a damaged cursors.json: backfill conservatively, never from "now" ---------------------------

DAMAGED_CURSORS = {
    "cut off": b'{"-1001649127710": 58',
    "not JSON": b"cursors: -1001649127710=5810\n",
    "nested 5,000 levels": b'{"-1001649127710":' + b"[" * 5000 + b"]" * 5000 + b"}",
    "a string cursor": b'{"-1001649127710": "5810"}',
    "a negative cursor": b'{"-1001649127710": -1}',
    "a list, not an object": b"[5810]",
    "a channel that is not a number": b'{"tp-capital": 5810}',
    "invalid UTF-8": b'{"-100164912771\xff": 5810}',
}


def _recovering_gateway(tmp_path: Path, fake: FakeTelegramClient, *, initial: int = 5,
                        recovery: int = 30) -> Gateway:
    from gateway.status import last_known_cursors

    settings = TelegramSettings(api_id=1, api_hash="x", channels=(str(MARKED_ID), str(OTHER_MARKED)),
                                backfill_initial_limit=initial)
    source = TelethonSource(settings, client_factory=lambda s: fake, sleep=SleepRecorder())
    cursors = CursorStore(tmp_path / "cursors.json", recovery_limit=recovery,
                          last_known=lambda: last_known_cursors(tmp_path))
    queue = DurableQueue(tmp_path / "failure-queue.jsonl")
    queue.open()
    return Gateway(source, queue, publisher=None, drainer=_Wakeable(), cursors=cursors)  # type: ignore[arg-type]


def _two_channels() -> FakeTelegramClient:
    fake = FakeTelegramClient(channels=[channel(), channel(OTHER_ID, "Origem", "origem")])
    fake.history[MARKED_ID] = [message(i, f"m{i}") for i in range(1, 61)]
    fake.history[OTHER_MARKED] = [message(i, f"o{i}", channel_id=OTHER_ID) for i in range(1, 101)]
    return fake


def _queued(gateway: Gateway) -> dict[int, list[int]]:
    by_channel: dict[int, list[int]] = {}
    for record in gateway.queue.pending():
        payload = decode_payload(record.payload)
        by_channel.setdefault(int(payload.channel_id), []).append(payload.message_id)
    return by_channel


@pytest.mark.parametrize("damage", sorted(DAMAGED_CURSORS))
async def test_a_damaged_cursor_file_backfills_from_the_last_known_positions(tmp_path: Path, damage: str,
                                                                             caplog: pytest.LogCaptureFixture) -> None:
    """Channel A's last known position is in gateway-status.json (cursor 40, written by the last run);
    channel B has none: it is backfilled 30 messages deep (the recovery limit), not 5 (the first-start
    limit), and nothing is taken from "now"."""
    from gateway.status import GatewayStatus, status_path, write_status

    write_status(status_path(tmp_path), GatewayStatus(command="run", cursors={str(MARKED_ID): 40}))
    (tmp_path / "cursors.json").write_bytes(DAMAGED_CURSORS[damage])
    fake = _two_channels()
    gateway = _recovering_gateway(tmp_path, fake)
    with caplog.at_level("ERROR", logger="gateway.cursors"):
        assert gateway.cursors.load() == {MARKED_ID: 40}
    [kept] = tmp_path.glob("cursors.json.damaged-*")
    assert kept.read_bytes() == DAMAGED_CURSORS[damage]  # kept aside as it was, for a look
    [error] = [r for r in caplog.records if r.levelname == "ERROR"]
    assert kept.name in error.getMessage() and f"{MARKED_ID} → 40" in error.getMessage()
    assert "30 message(s) deep" in error.getMessage() and "none is skipped" in error.getMessage()
    # The recovered positions are on disk at once: a crash now does not lose them.
    assert CursorStore(tmp_path / "cursors.json").read() == {MARKED_ID: 40}
    await gateway.source.connect()
    try:
        await gateway.backfill()
    finally:
        await gateway.source.close()
    assert _queued(gateway) == {MARKED_ID: list(range(41, 61)), OTHER_MARKED: list(range(71, 101))}
    assert CursorStore(tmp_path / "cursors.json").read() == {MARKED_ID: 60, OTHER_MARKED: 100}
    gateway.queue.close()


async def test_the_previous_cursor_file_is_a_last_known_position_too(tmp_path: Path) -> None:
    store = CursorStore(tmp_path / "cursors.json")
    store.advance(MARKED_ID, 20)
    store.advance(MARKED_ID, 25)  # cursors.json says 25, cursors.json.previous 20
    assert CursorStore(tmp_path / "cursors.json.previous").read() == {MARKED_ID: 20}
    (tmp_path / "cursors.json").write_bytes(b'{"-1001649127710": 2')  # cut off in place
    fake = _two_channels()
    gateway = _recovering_gateway(tmp_path, fake)  # no status file: the previous version only
    assert gateway.cursors.load() == {MARKED_ID: 20}
    await gateway.source.connect()
    try:
        await gateway.backfill()
    finally:
        await gateway.source.close()
    assert _queued(gateway)[MARKED_ID] == list(range(21, 61))  # 21..25 again: duplicates, not gaps
    assert len(_queued(gateway)[OTHER_MARKED]) == 30
    gateway.queue.close()


async def test_a_crash_during_the_recovery_backfill_does_not_turn_it_into_a_first_start(tmp_path: Path) -> None:
    (tmp_path / "cursors.json").write_bytes(b"\x00garbage")
    fake = _two_channels()
    first = _recovering_gateway(tmp_path, fake)
    assert first.cursors.load() == {}
    await first.source.connect()
    # Killed after channel A's backfill, before channel B's: only A has a cursor on disk.
    async for page in first.source.history(MARKED_ID, None, depth=first.cursors.depth_without_cursor()):
        first.enqueue_payloads(page.payloads)
        first.cursors.advance(MARKED_ID, page.last_id)
    await first.source.close()
    first.queue.close()

    again = _recovering_gateway(tmp_path, fake)
    assert again.cursors.load() == {MARKED_ID: 60}  # a valid file now
    await again.source.connect()
    try:
        await again.backfill()
    finally:
        await again.source.close()
    # B still gets the recovery depth (30) while the damaged file is kept, not the first-start 5.
    assert _queued(again)[OTHER_MARKED] == list(range(71, 101))
    again.queue.close()
    # Once the operator removed the damaged copy, a channel without a cursor is a first start again.
    for kept in tmp_path.glob("cursors.json.damaged-*"):
        kept.unlink()
    assert CursorStore(tmp_path / "cursors.json").depth_without_cursor() is None


def test_a_cursor_file_that_cannot_be_read_stops_instead_of_guessing(tmp_path: Path) -> None:
    import os

    from gateway.cursors import CursorsUnreadable

    if os.geteuid() == 0:
        pytest.skip("root reads any file")
    path = tmp_path / "cursors.json"
    path.write_bytes(b'{"-1001649127710": 5810}')
    path.chmod(0)
    with pytest.raises(CursorsUnreadable, match="cannot read") as raised:
        CursorStore(path).load()
    assert raised.value.exit_code == 2 and path.exists()
