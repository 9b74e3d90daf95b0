"""Telegram Desktop export (`result.json`) → contract payloads."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings as hsettings, strategies as st

from contracts import EditedMessage, NewMessage, decode_payload, encode_payload, idempotency_key
from gateway.export import ExportError, ExportReader, flatten_text, marked_channel_id, read_export

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "samples/tp-capital-export/result.json"
CHANNEL_MARKED = -1001649127710


def write_export(tmp_path: Path, messages: list[dict], **chat) -> Path:
    path = tmp_path / "result.json"
    path.write_text(json.dumps({"name": "TP Capital", "type": "public_channel", "id": 1649127710, **chat,
                                "messages": messages}), encoding="utf-8")
    return path


def test_sample_export() -> None:
    summary, payloads = read_export(SAMPLE)
    assert summary.channel_id == -1001649127710 and summary.channel_name == "TP Capital"
    assert (summary.messages, summary.edited, summary.skipped) == (20, 2, 1)
    ids = [p.message_id for p in payloads]
    assert 5792 not in ids  # the pinned-message service entry
    assert ids == sorted(ids) and len(set(ids)) == 20
    by_id = {p.message_id: p for p in payloads}
    assert isinstance(by_id[5796], EditedMessage) and isinstance(by_id[5805], EditedMessage)
    assert by_id[5791].text.startswith("🟢Swing Trade\n\nAtivo: BOVAW32")
    assert by_id[5791].timestamp == datetime.fromtimestamp(1762175700, timezone.utc)
    assert by_id[5802].photos  # the photo placeholder travels
    # Every payload survives the wire format the API reads.
    for payload in payloads:
        assert decode_payload(encode_payload(payload)) == payload


def test_text_as_string_and_as_entity_list(tmp_path: Path) -> None:
    path = write_export(tmp_path, [
        {"id": 1, "type": "message", "date": "2025-11-03T10:00:00", "date_unixtime": "1762174800",
         "text": "Ativo: PETR4\nCompra: 38,50"},
        {"id": 2, "type": "message", "date": "2025-11-03T10:01:00", "date_unixtime": "1762174860",
         "text": [{"type": "bold", "text": "Day Trade"}, "\nAtivo: ", {"type": "hashtag", "text": "#VALE3"},
                  {"type": "link", "text": "https://t.me/x"}]},
        {"id": 3, "type": "message", "date": "2025-11-03T10:02:00", "date_unixtime": "1762174920", "text": ""},
    ])
    _, payloads = read_export(path)
    assert [p.text for p in payloads] == ["Ativo: PETR4\nCompra: 38,50", "Day Trade\nAtivo: #VALE3https://t.me/x", ""]
    assert all(isinstance(p, NewMessage) for p in payloads)


def test_edited_message_keeps_its_original_date_and_carries_the_edit_date(tmp_path: Path) -> None:
    path = write_export(tmp_path, [
        {"id": 7, "type": "message", "date": "2025-11-03T14:10:00", "date_unixtime": "1762189800",
         "edited": "2025-11-03T14:12:00", "edited_unixtime": "1762189920", "text": "Stop: 0,34"},
    ])
    [payload] = read_export(path)[1]
    assert isinstance(payload, EditedMessage)
    assert payload.timestamp == datetime.fromtimestamp(1762189800, timezone.utc)
    assert payload.edit_date == datetime.fromtimestamp(1762189920, timezone.utc)
    assert str(idempotency_key(payload)) == "-1001649127710:7:edited:1762189920000000"


def test_reading_twice_gives_the_same_keys() -> None:
    first = [str(idempotency_key(p)) for p in read_export(SAMPLE)[1]]
    second = [str(idempotency_key(p)) for p in read_export(SAMPLE)[1]]
    assert first == second


def test_export_without_unixtime_uses_the_local_date(tmp_path: Path) -> None:
    path = write_export(tmp_path, [{"id": 1, "type": "message", "date": "2020-01-02T03:04:05", "text": "x"}])
    [payload] = read_export(path)[1]
    assert payload.timestamp == datetime(2020, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


@pytest.mark.parametrize(("export_id", "chat_type", "marked"), [
    (1649127710, "public_channel", -1001649127710),
    (1649127710, "private_supergroup", -1001649127710),
    (-1001649127710, "public_channel", -1001649127710),
    (12345, "private_group", -12345),
    (777, "personal_chat", 777),
])
def test_marked_channel_id(export_id: int, chat_type: str, marked: int) -> None:
    assert marked_channel_id(export_id, chat_type) == marked


def test_flatten_text_ignores_unknown_parts() -> None:
    assert flatten_text(["a", {"type": "bold", "text": "b"}, {"type": "custom_emoji"}, 5]) == "ab"


@pytest.mark.parametrize(("content", "problem"), [
    ("not json", "is not JSON"),
    ('{"messages": []}', "is not a Telegram Desktop chat export"),
    ('{"id": 1, "messages": [{"id": 1, "type": "message", "text": "x"}]}', "message 1: no date"),
    ('{"id": 1, "messages": [{"id": 1, "date_unixtime": "soon", "text": "x"}]}', "not epoch seconds"),
])
def test_bad_files_are_one_line_errors(tmp_path: Path, content: str, problem: str) -> None:
    path = tmp_path / "result.json"
    path.write_text(content)
    with pytest.raises(ExportError, match=problem) as error:
        read_export(path)
    assert "\n" not in str(error.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="cannot read"):
        read_export(tmp_path / "nope.json")


# -- entity lists, replies, streaming (issue 16 item 7, issue 13) -----------------------------------

def message_at(i: int, **fields) -> dict:
    return {"id": i, "type": "message", "date": "2025-11-03T10:00:00", "date_unixtime": str(1762174800 + i), **fields}


def test_entity_lists_are_joined_not_stored_as_their_repr(tmp_path: Path) -> None:
    path = write_export(tmp_path, [
        message_at(1, text=["a", {"type": "bold", "text": "b"}]),  # Telegram Desktop's format
        message_at(2, text=["a", "b"]),
        # An entity whose text is itself a list (entities inside entities) is joined too.
        message_at(3, text=[{"type": "bold", "text": ["Alvo ", {"type": "italic", "text": "1"}]}, ": 1,15"]),
        # Newer exports add the flat `text_entities`; it is the same text, and it wins for lists.
        message_at(4, text=[{"type": "bold", "text": "x"}], text_entities=[{"type": "bold", "text": "Stop"},
                                                                           {"type": "plain", "text": ": 0,70"}]),
        message_at(5, text="plain wins", text_entities=[{"type": "plain", "text": "ignored"}]),
        message_at(6, text=[{"type": "custom_emoji", "document_id": 5}, {"type": "link", "text": 7}, None, "ok"]),
    ])
    _, payloads = read_export(path)
    assert [p.text for p in payloads] == ["ab", "ab", "Alvo 1: 1,15", "Stop: 0,70", "plain wins", "ok"]
    assert not any("{" in p.text or "[" in p.text for p in payloads)


def test_replies_in_the_same_chat_carry_the_replied_message_id(tmp_path: Path) -> None:
    path = write_export(tmp_path, [
        message_at(10, text="🟢Swing Trade Ativo: BOVAW32"),
        message_at(11, text="Alvo 2 batido ✅ +41%", reply_to_message_id=10),
        message_at(12, text="same chat, named", reply_to_message_id=10, reply_to_peer_id="channel1649127710"),
        message_at(13, text="a reply to another channel", reply_to_message_id=99, reply_to_peer_id="channel777"),
        message_at(14, text="edited reply", reply_to_message_id=10, edited="2025-11-03T11:00:00",
                   edited_unixtime="1762178400"),
    ])
    _, payloads = read_export(path)
    assert [(p.message_id, p.reply_to_message_id) for p in payloads] == [(10, None), (11, 10), (12, 10), (13, None),
                                                                         (14, 10)]
    assert isinstance(payloads[-1], EditedMessage)
    assert b'"replyToMessageId":10' in encode_payload(payloads[1])
    assert b"replyToMessageId" not in encode_payload(payloads[3])


def test_a_deeply_nested_text_is_a_one_line_error_in_linear_time(tmp_path: Path) -> None:
    """200,000 levels of `[`: ijson's items() would need its path prefix for every level
    (quadratic: gigabytes); the reader refuses the message after MAX_MESSAGE_DEPTH levels."""
    import time

    depth = 200_000
    path = tmp_path / "result.json"
    path.write_text('{"id": 1649127710, "type": "public_channel", "messages": [{"id": 1, "date_unixtime": "1", '
                    '"text": ' + "[" * depth + "]" * depth + "}]}")
    started = time.perf_counter()
    with pytest.raises(ExportError, match=r"message #1 of `messages` is nested more than 32 levels deep") as error:
        read_export(path)
    assert time.perf_counter() - started < 5
    assert "\n" not in str(error.value)


def test_the_chat_id_may_come_after_the_messages(tmp_path: Path) -> None:
    path = tmp_path / "result.json"
    path.write_text(json.dumps({"messages": [message_at(1, text="x")], "extra": {"deep": [[{}]]},
                                "id": 1649127710, "name": "Late", "type": "public_channel"}))
    summary, [payload] = read_export(path)
    assert (summary.channel_id, summary.channel_name, payload.channel_id) == (CHANNEL_MARKED, "Late", str(CHANNEL_MARKED))


@pytest.mark.parametrize(("content", "problem"), [
    ("", "is not JSON"),
    ("[1, 2]", "the top level is not an object"),
    ('{"id": 1, "messages": {}}', "`messages` is not a list"),
    ('{"id": "x", "messages": []}', "the chat `id` 'x' is not an integer"),
    ('{"id": 1, "messages": [7]}', "message #1 of `messages` is not an object"),
    ('{"id": 1, "messages": [{"id": "7"}]}', r"message #1 of `messages`: Expected `int`, got `str` - at `\$.id`"),
    ('{"id": 1, "messages": [{"id": 1, "date_unixtime": "1", "text": "x"}, {"id": 2, "date_un',
     r"the file ends inside `messages`, after message #1 \(a cut-off file\?\)"),
    ('{"id": 1, "messages": [{"id": 1, "date_unixtime": "1", "text": "x"}', "after message #1 .a cut-off file"),
    (b'{"id": 1, "messages": [{"id": 1, "text": "\xff"}]}', "message #1 of `messages` is not JSON: lexical error"),
    ('{"id": 1, "messages": [{"id": 1, "date_unixtime": "1"} {"id": 2}]}', "message #2 of `messages` is not JSON"),
])
def test_more_bad_files_are_one_line_errors_naming_the_message(tmp_path: Path, content, problem: str) -> None:
    path = tmp_path / "result.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(ExportError, match=problem) as error:
        read_export(path)
    assert "\n" not in str(error.value) and str(path) in str(error.value)


def test_a_cut_off_file_yields_every_message_before_the_cut(tmp_path: Path) -> None:
    path = write_export(tmp_path, [message_at(i, text=f"m{i}") for i in range(1, 6)])
    path.write_bytes(path.read_bytes()[:-30])  # the last message and the closing brackets are gone
    reader = ExportReader(path)
    seen = []
    with pytest.raises(ExportError, match="cut-off"):
        for payload in reader.payloads():
            seen.append(payload.message_id)
    reader.close()
    assert seen == [1, 2, 3, 4]


def _peak_while_streaming(path: Path) -> int:
    import tracemalloc

    tracemalloc.start()
    try:
        with ExportReader(path) as reader:
            for _ in reader.payloads():
                pass
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_does_not_grow_with_the_export(tmp_path: Path) -> None:
    """Streaming: ten times the messages, the same peak (the old reader held the whole file, then
    every message decoded, then every payload: memory grew with the export)."""
    (tmp_path / "small").mkdir()
    (tmp_path / "large").mkdir()
    text = "🟢Swing Trade\n\nAtivo: PETR4\n\nCompra: 38,50 a 38,70\n\nAlvo 1: 39,20\nStop: 38,00"
    small = write_export(tmp_path / "small", [message_at(i, text=text) for i in range(1, 2_001)])
    large = write_export(tmp_path / "large", [message_at(i, text=text) for i in range(1, 20_001)])
    assert large.stat().st_size > 9 * small.stat().st_size
    small_peak, large_peak = _peak_while_streaming(small), _peak_while_streaming(large)
    assert large_peak < 1.5 * small_peak + 64 * 1024, (small_peak, large_peak)


def _reference_text(text) -> str:
    """What the text of a message is, written the obvious (recursive) way."""
    if isinstance(text, str):
        return text
    if isinstance(text, list):
        return "".join(_reference_text(part) for part in text)
    if isinstance(text, dict):
        return _reference_text(text.get("text"))
    return ""


entity = st.fixed_dictionaries({"type": st.sampled_from(["bold", "italic", "link", "hashtag"]),
                                "text": st.text(max_size=12)})
texts = st.one_of(st.text(max_size=40), st.lists(st.one_of(st.text(max_size=12), entity), max_size=5))
messages = st.lists(st.tuples(texts, st.booleans(), st.none() | st.integers(1, 50), st.booleans()), max_size=12)


@hsettings(max_examples=80, deadline=None)
@given(messages=messages, indent=st.sampled_from([None, 0, 1, 4]), id_last=st.booleans())
def test_streamed_export_equals_the_whole_file_read_at_once(messages, indent, id_last: bool) -> None:
    """Any export (any whitespace, the chat id before or after the messages, service messages
    between posts) streams to the payloads a whole-file json.loads reading describes."""
    import tempfile

    records = []
    for i, (text, service, reply, edited) in enumerate(messages, start=1):
        record = message_at(i, text=text)
        if service:
            record.update(type="service", action="pin_message")
        if reply is not None:
            record["reply_to_message_id"] = reply
        if edited:
            record.update(edited="2025-11-03T12:00:00", edited_unixtime="1762200000")
        records.append(record)
    chat = {"name": "TP Capital", "type": "public_channel", "id": 1649127710}
    document = {"messages": records, **chat} if id_last else {**chat, "messages": records}
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "result.json"
        path.write_text(json.dumps(document, indent=indent, ensure_ascii=bool(indent)), encoding="utf-8")
        summary, payloads = read_export(path)
    expected = [m for m in json.loads(json.dumps(records)) if m["type"] == "message"]
    assert [p.message_id for p in payloads] == [m["id"] for m in expected]
    assert [p.text for p in payloads] == [_reference_text(m["text"]).replace("\x00", "") for m in expected]
    assert [p.reply_to_message_id for p in payloads] == [m.get("reply_to_message_id") for m in expected]
    assert [isinstance(p, EditedMessage) for p in payloads] == ["edited" in m for m in expected]
    assert summary.skipped == len(records) - len(expected) and summary.channel_id == CHANNEL_MARKED
    for payload in payloads:
        assert decode_payload(encode_payload(payload)) == payload
