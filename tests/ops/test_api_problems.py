"""ts_runtime.api_core.problems: a body is either exactly what msgspec decodes, or a 400 naming every
bad field by its wire path, and nothing else ever comes out (no 500 for a client's mistake)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any, Literal, Union

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ts_runtime.api_core import ApiError
from ts_runtime.api_core.problems import convert_struct, decode_struct, problems_in

Short = Annotated[str, msgspec.Meta(min_length=1, max_length=8)]
Slug = Annotated[str, msgspec.Meta(pattern="^[a-z0-9-]+(?!\n)$",
                                   extra={"problem": "must be a slug (lower-case letters, digits and '-')"})]


class Base(msgspec.Struct, kw_only=True, rename="camel"):
    pass


class Line(Base):
    id: Annotated[int, msgspec.Meta(ge=1, le=1000)]
    text: Short = "x"


class Form(Base):
    channel_id: Union[Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)],
                      Annotated[str, msgspec.Meta(pattern=r"^-?[0-9]{1,19}$")]]
    title: Short
    slug: Slug = "a"
    count: Annotated[int, msgspec.Meta(ge=0, le=100)] = 0
    ratio: float = 0.0
    flag: bool = False
    level: Literal["low", "high"] = "low"
    tags: Annotated[list[Short], msgspec.Meta(max_length=3)] = []
    line: Line | None = None
    lines: list[Line] = []
    when: Annotated[datetime, msgspec.Meta(tz=True)] | None = None
    counts: dict[str, int] = {}


class Closed(Base, forbid_unknown_fields=True):
    name: Short


class Added(Base, tag="added", tag_field="kind"):
    id: int


class Removed(Base, tag="removed", tag_field="kind"):
    id: int
    reason: Short = "gone"


Change = Union[Added, Removed]


class Batch(Base):
    messages: Annotated[list[Line], msgspec.Meta(min_length=1, max_length=5)]


def problems(struct_type: Any, body: bytes | str) -> dict[str, str]:
    with pytest.raises(ApiError) as caught:
        decode_struct(struct_type, body)
    error = caught.value
    assert error.status_code == 400 and error.error == "Validation failed"
    assert error.errors and error.details == [p.text for p in error.errors]
    return {p.field: p.message for p in error.errors}


def test_a_good_body_decodes_exactly_as_msgspec() -> None:
    body = b'{"channelId": "-1001649127710", "title": "t", "lines": [{"id": 3}], "when": "2024-01-02T03:04:05Z"}'
    form = decode_struct(Form, body)
    assert form == msgspec.json.decode(body, type=Form)
    assert form.lines == [Line(id=3)] and form.when == datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


def test_every_bad_field_is_named_at_once_by_its_wire_path() -> None:
    body = (b'{"channelId": "12a", "title": "", "slug": "Ab", "count": 101, "ratio": "1", "flag": 1,'
            b' "level": "mid", "tags": ["ok", "", "a", "b"], "line": {"text": 5},'
            b' "lines": [{"id": 1}, {"id": 0, "text": "much too long"}], "when": "2024-01-02T03:04:05",'
            b' "counts": {"a": 1, "b": "2"}, "unknown": 1}')
    assert problems(Form, body) == {
        "channelId": "must match the pattern '^-?[0-9]{1,19}$'",
        "title": "must be 1 to 8 characters",
        "slug": "must be a slug (lower-case letters, digits and '-')",
        "count": "must be an integer between 0 and 100",
        "ratio": "must be a number",
        "flag": "must be true or false",
        "level": "must be one of low, high",
        "tags": "must have at most 3 items",
        "tags[1]": "must be 1 to 8 characters",
        "line.id": "is required",
        "line.text": "must be a string",
        "lines[1].id": "must be an integer between 1 and 1000",
        "lines[1].text": "must be 1 to 8 characters",
        "when": "must include a time zone",
        "counts.b": "must be an integer",
    }


def test_required_null_and_wrong_kind() -> None:
    assert problems(Form, b'{"title": null, "channelId": 1.5, "line": 3}') == {
        "title": "must not be null",
        "channelId": "must be an integer or a string",
        # Not null, so judged as a Line.
        "line": "must be an object",
    }
    assert problems(Form, b"{}") == {"channelId": "is required", "title": "is required"}


def test_the_body_itself() -> None:
    assert problems(Form, b'{"title": ')["body"].startswith("is not valid JSON (")
    assert problems(Form, b"1e400") == {"body": "is not valid JSON (Number out of range)"}
    assert problems(Form, b"[1, 2]") == {"body": "must be a JSON object"}
    assert problems(Form, b'"text"') == {"body": "must be a JSON object"}
    assert problems(Form, b"[" * 5000 + b"]" * 5000) == {"body": "is nested too deeply"}
    deep = b'{"channelId": 1, "title": "t", "counts": ' + b'{"a": ' * 5000 + b"1" + b"}" * 5001
    assert problems(Form, deep) == {"body": "is nested too deeply"}


def test_a_pattern_refuses_a_trailing_newline() -> None:
    # msgspec matches patterns with re.search, where `$` also matches before a final newline.
    assert problems(Form, b'{"channelId": 1, "title": "t", "slug": "abc\\n"}') == {
        "slug": "must be a slug (lower-case letters, digits and '-')"}
    assert decode_struct(Form, b'{"channelId": 1, "title": "t", "slug": "abc-1"}').slug == "abc-1"


class Worded(Base):
    # A Meta's sentence words the failures of its own constraints; one without any: the wrong type.
    tags: Annotated[list[Short], msgspec.Meta(extra={"problem": "must be a list of strings"}),
                    msgspec.Meta(max_length=2, extra={"problem": "must have at most 2 tags"})] | None = None
    colour: Annotated[str, msgspec.Meta(min_length=7),
                      msgspec.Meta(pattern="^#[0-9a-f]{6}$", extra={"problem": "must be a colour like #3b82f6"})] = "#000000"


def test_a_meta_words_its_own_failures() -> None:
    assert problems(Worded, b'{"tags": "a,b", "colour": "#12"}') == {
        "tags": "must be a list of strings", "colour": "must be at least 7 characters"}
    assert problems(Worded, b'{"tags": ["a", "b", ""], "colour": "#1234567"}') == {
        "tags": "must have at most 2 tags", "tags[2]": "must be 1 to 8 characters",
        "colour": "must be a colour like #3b82f6"}
    assert problems(Worded, b'{"colour": 7}') == {"colour": "must be a string"}
    assert decode_struct(Worded, b'{"tags": null}').tags is None


def test_unknown_fields_follow_the_struct() -> None:
    assert decode_struct(Form, b'{"channelId": 1, "title": "t", "extra": [1]}').title == "t"
    assert problems(Closed, b'{"name": "n", "extra": 1, "other": 2}') == {
        "extra": "is not a known field", "other": "is not a known field"}


def test_tagged_unions_are_judged_by_their_tag() -> None:
    assert decode_struct(Change, b'{"kind": "removed", "id": 1}') == Removed(id=1)
    assert problems(Change, b'{"id": 1}') == {"kind": "is required (one of added, removed)"}
    assert problems(Change, b'{"kind": "moved", "id": "x"}') == {"kind": "must be one of added, removed"}
    assert problems(Change, b'{"kind": "removed", "id": "x", "reason": ""}') == {
        "id": "must be an integer", "reason": "must be 1 to 8 characters"}
    # One tagged struct alone: the tag may be left out, but not be another one.
    assert problems(Added, b'{"kind": "removed", "id": 1}') == {"kind": 'must be "added"'}


def test_arrays_name_each_element_and_their_own_length() -> None:
    assert problems(Batch, b'{"messages": []}') == {"messages": "must have 1 to 5 items"}
    assert problems(Batch, b'{"messages": [{"id": 1}, {"id": 2}, {"id": 3}, {"id": 4, "text": 7}]}') == {
        "messages[3].text": "must be a string"}


def test_a_key_sent_twice_is_still_a_400() -> None:
    # The walk sees the last value (fine); the decoder refused the first: msgspec's reason is kept.
    found = problems(Closed, b'{"name": 1, "name": "n"}')
    assert list(found) == ["body"] and "Expected `str`, got `int`" in found["body"]


def test_convert_struct_and_a_path_prefix() -> None:
    assert convert_struct(Line, {"id": 5}) == Line(id=5)
    with pytest.raises(ApiError) as caught:
        convert_struct(Line, {"id": "5", "text": ""}, at="messages[3]")
    assert [p.text for p in caught.value.errors] == [
        "messages[3].id must be an integer", "messages[3].text must be 1 to 8 characters"]
    assert problems_in(Line, [1], at="messages[0]")[0].text == "messages[0] must be a JSON object"
    assert problems_in(Line, {"id": 1}) == []


# -- properties ---------------------------------------------------------------------------------

_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12) | st.sampled_from(["low", "high", "2024-01-02T03:04:05Z", "2024-01-02", "12", "a-b"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12)
_good_line = st.fixed_dictionaries({"id": st.integers(1, 1000)}, optional={"text": st.text(min_size=1, max_size=8)})
_good = {
    "channelId": st.integers(-(2**63), 2**63 - 1) | st.from_regex(r"\A-?[0-9]{1,19}\Z"),
    "title": st.text(min_size=1, max_size=8),
    "slug": st.from_regex(r"\A[a-z0-9-]+\Z"),
    "count": st.integers(0, 100),
    "ratio": st.floats(allow_nan=False, allow_infinity=False) | st.integers(-5, 5),
    "flag": st.booleans(),
    "level": st.sampled_from(["low", "high"]),
    "tags": st.lists(st.text(min_size=1, max_size=8), max_size=3),
    "line": st.none() | _good_line,
    "lines": st.lists(_good_line, max_size=3),
    "when": st.none() | st.datetimes(timezones=st.just(timezone.utc)).map(lambda d: d.isoformat()),
    "counts": st.dictionaries(st.text(max_size=5), st.integers(-9, 9), max_size=3),
}
# Values that break each field, and the paths they break (the field, or an element inside it).
_bad = {
    "channelId": [(1.5, ""), ("1x", ""), (2**64, ""), (None, "")],
    "title": [("", ""), ("123456789", ""), (3, "")],
    "slug": [("A", ""), ("a\n", ""), ("", "")],
    "count": [(-1, ""), (101, ""), (True, ""), ("3", "")],
    "ratio": [("1.0", ""), (False, "")],
    "flag": [(0, ""), ("true", "")],
    "level": [("mid", ""), (1, "")],
    "tags": [(["a", "b", "c", "d"], ""), (["a", ""], "[1]"), ("a", "")],
    "line": [({"id": 0}, ".id"), ({}, ".id"), ({"id": 1, "text": 2}, ".text"), ([], "")],
    "lines": [([{"id": 1}, {"id": "1"}], "[1].id"), ({"id": 1}, "")],
    "when": [("2024-01-02T03:04:05", ""), ("yesterday", ""), (5, "")],
    "counts": [({"a": "1"}, ".a"), ([], "")],
}
_forms = st.fixed_dictionaries({"channelId": _good["channelId"], "title": _good["title"]},
                               optional={k: v for k, v in _good.items() if k not in ("channelId", "title")})
_anything = st.dictionaries(st.sampled_from([*_good, "other"]), _json, max_size=8) | _forms
_settings = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_settings
@given(payload=st.one_of(_anything, _forms, _json))
def test_decode_is_msgspec_or_a_400(payload: Any) -> None:
    body = msgspec.json.encode(payload)
    try:
        expected = msgspec.json.decode(body, type=Form)
    except msgspec.ValidationError:
        expected = None
    try:
        got = decode_struct(Form, body)
    except ApiError as exc:
        assert expected is None, f"refused a body msgspec accepts: {exc.details}"
        assert exc.status_code == 400 and exc.errors
        # The same answer for the value already decoded (a batch item).
        with pytest.raises(ApiError):
            convert_struct(Form, msgspec.json.decode(body))
        return
    assert expected is not None and got == expected
    assert convert_struct(Form, msgspec.json.decode(body)) == expected


@_settings
@given(form=_forms, data=st.data())
def test_every_broken_field_is_named(form: dict, data: st.DataObject) -> None:
    assert decode_struct(Form, msgspec.json.encode(form))  # the starting point is valid
    broken = data.draw(st.lists(st.sampled_from(sorted(_bad)), min_size=1, unique=True))
    paths = set()
    for name in broken:
        value, inside = data.draw(st.sampled_from(_bad[name]))
        form[name] = value
        paths.add(name + inside)
    assert set(problems(Form, msgspec.json.encode(form))) == paths


def test_a_lone_surrogate_escape_is_named_as_such() -> None:
    """msgspec refuses `\\ud800` alone with "Input data was truncated"; the client is told the real cause."""
    for body, escape in ((rb'{"title": "a\ud800b"}', r"\ud800 at byte 12"),
                         (rb'{"title": "\udc00"}', r"\udc00 at byte 11"),
                         (rb'{"title": "\ud83d\ud83d\ude00"}', r"\ud83d at byte 11"),
                         (rb'{"title": "\ud83d\ude00\ud83d"}', r"\ud83d at byte 23")):
        message = problems(Form, body)["body"]
        assert message.startswith(f"is not valid JSON (a lone UTF-16 surrogate escape {escape}:"), message
    # a pair is a character, and an escaped backslash before "ud800" is only letters
    assert decode_struct(Form, rb'{"channelId": 1, "title": "\ud83d\ude00"}').title == "\U0001f600"
    assert decode_struct(Form, rb'{"channelId": 1, "title": "\\ud800"}').title == "\\ud800"
    # a truncated body with a good pair keeps msgspec's own words
    assert problems(Form, rb'{"title": "\ud83d\ude00')["body"] == "is not valid JSON (Input data was truncated)"
    # the scan is linear: a megabyte of backslashes and escapes answers at once
    assert problems(Form, b'{"title": "' + b"\\" * 1_000_001 + b'u')["body"].startswith("is not valid JSON (")
    assert "lone UTF-16" in problems(Form, b'{"title": "' + rb"\ud800\u0041" * 100_000 + b'"}')["body"]
