"""Telegram Desktop export (`result.json`) → contract payloads."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from contracts import EditedMessage, NewMessage, decode_payload, encode_payload, idempotency_key
from gateway.export import ExportError, flatten_text, marked_channel_id, read_export

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "samples/tp-capital-export/result.json"


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
