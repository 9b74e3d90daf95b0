"""The request structs (schemas.py) and validation.py without a server: the API's decode path and
the importer's convert path give the same answer, every bad field is named, patterns match the
whole value, and the OpenAPI request bodies are the structs' own schemas."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ts_runtime.api_core import ApiError
from workspace_api import openapi, schemas
from workspace_api.validation import (category_from_body, check_slug, item_filter_problems, item_from_body,
                                      validate_category, validate_item)


def api_answer(parse, body: dict, partial: bool) -> tuple[dict[str, Any], dict[str, str]]:
    try:
        return parse(msgspec.json.encode(body), partial=partial), {}
    except ApiError as exc:
        assert exc.status_code == 400 and exc.errors
        return {}, {p.field: p.message for p in exc.errors}


def import_answer(validate, body: dict, partial: bool) -> tuple[dict[str, Any], dict[str, str]]:
    values, problems = validate(body, partial=partial)
    return values, {p.field: p.message for p in problems}


@pytest.mark.parametrize("value", ["nl-x\n", "bug\n", "\nbug", "Bug", "a b", ""])
def test_slug_is_matched_whole(value: str) -> None:
    assert set(import_answer(validate_item, {"title": "t", "category": value}, False)[1]) == {"category"}
    assert list(check_slug(value)) and check_slug(value)[0].field == "name"
    assert [p.field for p in item_filter_problems(value, None)] == (["category"] if value else [])


@pytest.mark.parametrize("value", ["#3B82F6\n", "#3B82F", "blue", 7])
def test_colour_is_matched_whole(value: object) -> None:
    assert import_answer(validate_category, {"name": "x", "color": value}, False)[1] == {
        "color": "must be a colour like #3B82F6"}


def test_rules_outside_the_struct_are_named_with_the_struct_problems() -> None:
    # A blank title is not a constraint; it is still named beside the priority msgspec refuses.
    body = {"title": "   ", "category": "bug", "priority": "urgent", "tags": ["ok", "", 3],
            "metadata": {"a": "\x00"}}
    expected = {"title": "must not be blank", "priority": "must be one of low, medium, high, critical",
                "tags": "[1] must be 1 to 100 characters", "metadata": "must not contain NUL characters (\\u0000)"}
    api = api_answer(item_from_body, body, False)[1]
    # Only the first bad element of tags is kept per field name in the old envelope's dict.
    assert {k: v for k, v in api.items() if k != "tags"} == {k: v for k, v in expected.items() if k != "tags"}
    assert api["tags"] in ("[1] must be 1 to 100 characters", "[2] must be a string")
    differ = {"name": "x", "display_name": "A", "displayName": "B", "color": "red"}
    assert api_answer(category_from_body, differ, False)[1] == {
        "displayName": "disagrees with display_name; send one of them", "color": "must be a colour like #3B82F6"}


def test_a_lowdb_entry_with_a_lone_surrogate_is_refused() -> None:
    # Python's json reads "\ud800"; msgspec's JSON decoder refuses it, so only the importer sees one.
    problems = import_answer(validate_item, {"title": "a\ud800", "category": "bug", "tags": ["ok", "\udc00"]}, False)[1]
    assert problems == {"title": "must be valid Unicode (no lone surrogates)",
                        "tags": "[1] must be valid Unicode (no lone surrogates)"}


def test_partial_updates_keep_what_was_not_sent() -> None:
    assert api_answer(item_from_body, {"description": None, "ignored": 1}, True)[0] == {"description": ""}
    assert api_answer(item_from_body, {}, True)[1] == {
        "body": "must contain at least one of title, description, category, priority, status, tags, metadata"}
    assert api_answer(category_from_body, {"sort_order": 3, "icon": None}, True)[0] == {"display_order": 3, "icon": None}
    # created_by is set once: an update ignores it, like any unknown field.
    assert api_answer(category_from_body, {"createdBy": "x"}, True)[1] == {
        "body": "must contain at least one of name, display_name, description, color, icon, display_order, is_active"}
    created = api_answer(category_from_body, {"name": "coleta-dados"}, False)[0]
    assert created == {"name": "coleta-dados", "display_name": "Coleta Dados", "description": "", "color": "#6B7280",
                       "icon": None, "display_order": None, "is_active": True, "created_by": None}


def test_openapi_request_bodies_are_the_structs_schemas() -> None:
    _, components = msgspec.json.schema_components([schemas.ItemCreate, schemas.CategoryUpdate])
    create = components["ItemCreate"]
    assert openapi.ITEM_CREATE.to_schema() == create
    assert openapi.CATEGORY_UPDATE.to_schema()["properties"] == components["CategoryUpdate"]["properties"]
    assert create["properties"]["category"]["pattern"] == schemas.SLUG_PATTERN
    assert create["properties"]["tags"]["anyOf"][0]["maxItems"] == schemas.TAGS_MAX


_values = st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.text(max_size=6) | st.sampled_from(
    ["bug", "feature", "nl-x\n", "low", "high", "done", "#3B82F6", "#3B82F6\n", "  ", "x" * 201]) | st.lists(
    st.text(max_size=4) | st.integers(), max_size=3) | st.dictionaries(st.text(max_size=3), st.integers(), max_size=2)
_item_keys = st.sampled_from(["title", "category", "description", "priority", "status", "tags", "metadata", "other"])
_category_keys = st.sampled_from(["name", "display_name", "displayName", "description", "color", "icon",
                                  "display_order", "displayOrder", "sort_order", "is_active", "isActive",
                                  "created_by", "createdBy", "other"])


@settings(max_examples=300, deadline=None)
@given(body=st.dictionaries(_item_keys, _values, max_size=7), partial=st.booleans())
def test_the_api_and_the_importer_agree_on_items(body: dict, partial: bool) -> None:
    assert api_answer(item_from_body, body, partial) == import_answer(validate_item, body, partial)


@settings(max_examples=300, deadline=None)
@given(body=st.dictionaries(_category_keys, _values, max_size=8), partial=st.booleans())
def test_the_api_and_the_importer_agree_on_categories(body: dict, partial: bool) -> None:
    assert api_answer(category_from_body, body, partial) == import_answer(validate_category, body, partial)
