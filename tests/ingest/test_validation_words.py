"""The words of a 400 for a body that is not JSON point at the fix (ingest_api.ingest.validation)."""

from __future__ import annotations

import pytest

from ingest_api.ingest.validation import Rejected, decode_envelope, validate

MESSAGE = b'{"channelId": "-1001", "messageId": 1, "timestamp": "2026-01-05T12:00:00Z", "text": "%s"}'


def refused(check, body: bytes) -> list[str]:
    with pytest.raises(Rejected) as caught:
        check(body)
    return caught.value.details


def test_a_lone_surrogate_escape_is_named_not_called_truncated() -> None:
    # msgspec's own words for this are "Input data was truncated".
    for check, body in ((validate, MESSAGE % rb"Alvo \ud83c"),
                        (decode_envelope, b'{"messages": [' + MESSAGE % rb"\udc00" + b"]}")):
        (detail,) = refused(check, body)
        assert detail.startswith("body is not valid JSON: a lone UTF-16 surrogate escape \\ud"), detail
        assert "truncated" not in detail
    # the emoji itself, as an escaped pair, is a good message
    assert validate(MESSAGE % rb"\ud83c\udfaf Alvo 1").text == "\U0001f3af Alvo 1"


def test_a_truly_truncated_body_keeps_msgspec_words() -> None:
    assert refused(validate, (MESSAGE % b"x")[:-3]) == ["body is not valid JSON: Input data was truncated"]
