"""Field rules for items and categories, shared by the API and the LowDB importer.

Each validator reads a decoded JSON object, checks every field it knows (unknown fields are
ignored, as the old API did) and returns the clean values plus one problem per bad field, so a
client or an import report names all of them at once.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec

from .errors import FieldProblem

PRIORITIES = ("low", "medium", "high", "critical")
STATUSES = ("new", "review", "in-progress", "completed", "rejected")
# Always used with fullmatch(): Python's `$` also matches before a final newline, so
# `re.match(r"^[a-z0-9-]+$", "nl-x\n")` succeeds and the value would reach the database's CHECK.
SLUG = re.compile(r"[a-z0-9-]+")
COLOR = re.compile(r"#[0-9A-Fa-f]{6}")
# The same rules written for OpenAPI (ECMA-262, where `$` is the end of the string).
SLUG_PATTERN = "^[a-z0-9-]+$"
COLOR_PATTERN = "^#[0-9A-Fa-f]{6}$"

TITLE_MAX = 200
DESCRIPTION_MAX = 2000
TAGS_MAX = 50
TAG_MAX = 100
CATEGORY_NAME_MAX = 100
# 120: what the old dashboard's category form lets a user type.
DISPLAY_NAME_MAX = 120
CATEGORY_DESCRIPTION_MAX = 500
ICON_MAX = 100
CREATED_BY_MAX = 255
INT32 = 2**31 - 1
# An item's metadata: at most as much JSON as the API accepts in one request body.
METADATA_MAX_BYTES = 256 * 1024

# Item fields: JSON name → column name.
ITEM_FIELDS = {"title": "title", "description": "description", "category": "category",
               "priority": "priority", "status": "status", "tags": "tags", "metadata": "metadata"}

_json = msgspec.json.Encoder()


_NOT_NULL = object()


class BodyError(Exception):
    """The request body is not a JSON object."""

    def __init__(self, problem: FieldProblem) -> None:
        super().__init__(problem.text)
        self.problem = problem


def decode_object(body: bytes) -> dict[str, Any]:
    """A request body as a JSON object, or BodyError.

    The body is UTF-8 here: the core plugin's request (ts_runtime.api_core.CoreRequest.body) checked
    every byte of it before any handler could read it, and answered 400 naming the first bad one."""
    try:
        value = msgspec.json.decode(body)
    except msgspec.MsgspecError as exc:  # malformed, or a number out of range (1e400)
        raise BodyError(FieldProblem("body", f"is not valid JSON ({exc})")) from None
    except RecursionError:
        raise BodyError(FieldProblem("body", "is nested too deeply")) from None
    if not isinstance(value, dict):
        raise BodyError(FieldProblem("body", "must be a JSON object"))
    return value


def _text_problem(value: Any, min_len: int, max_len: int) -> str | None:
    if not isinstance(value, str):
        return "must be a string"
    if "\x00" in value:
        return "must not contain NUL characters"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "must be valid Unicode (no lone surrogates)"
    if not min_len <= len(value) <= max_len:
        if min_len == 0:
            return f"must be at most {max_len} characters"
        return f"must be {min_len} to {max_len} characters"
    return None


def _check(raw: dict[str, Any], field: str, problems: list[FieldProblem], rule) -> Any:
    message = rule(raw[field])
    if message:
        problems.append(FieldProblem(field, message))
    return raw[field]


def _title(value: Any) -> str | None:
    problem = _text_problem(value, 1, TITLE_MAX)
    if problem is None and not value.strip():
        return "must not be blank"
    return problem


def _slug(value: Any, max_len: int = CATEGORY_NAME_MAX) -> str | None:
    problem = _text_problem(value, 1, max_len)
    if problem is None and not SLUG.fullmatch(value):
        return "must be a slug (lower-case letters, digits and '-')"
    return problem


def _one_of(choices: tuple[str, ...]):
    def rule(value: Any) -> str | None:
        if value not in choices or not isinstance(value, str):
            return f"must be one of {', '.join(choices)}"
        return None

    return rule


def _tags(value: Any) -> str | None:
    if not isinstance(value, list):
        return "must be a list of strings"
    if len(value) > TAGS_MAX:
        return f"must have at most {TAGS_MAX} tags"
    for index, tag in enumerate(value):
        problem = _text_problem(tag, 1, TAG_MAX)
        if problem:
            return f"[{index}] {problem}"
    return None


def metadata_problem(value: Any) -> str | None:
    """Why an item's `metadata` cannot be stored in its jsonb column, or None: it must be an object
    holding no NUL (PostgreSQL's jsonb cannot), no lone surrogate, no NaN or Infinity (not JSON),
    and at most METADATA_MAX_BYTES of JSON. Shared by the API and the LowDB importer."""
    if not isinstance(value, dict):
        return f"must be an object, got {type(value).__name__}"
    if not value:  # what nearly every item holds
        return None
    # Walked without recursion: an imported file's nesting is bounded only by its JSON reader.
    pending: list[Any] = [value]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            pending.extend(node.keys())
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
        elif isinstance(node, str):
            if "\x00" in node:
                return "must not contain NUL characters (\\u0000)"
            if not _encodable(node):
                return "must be valid Unicode (no lone surrogates)"
        elif isinstance(node, float) and not math.isfinite(node):
            return "must not contain NaN or Infinity"
    size = len(_json.encode(value))
    if size > METADATA_MAX_BYTES:
        return f"must be at most {METADATA_MAX_BYTES // 1024} KiB of JSON, got {size:,} bytes"
    return None


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


ITEM_RULES = {
    "title": _title,
    "description": lambda v: _text_problem(v, 0, DESCRIPTION_MAX),
    "category": _slug,
    "priority": _one_of(PRIORITIES),
    "status": _one_of(STATUSES),
    "tags": _tags,
    "metadata": metadata_problem,
}
ITEM_DEFAULTS: dict[str, Any] = {"description": "", "priority": "medium", "status": "new", "tags": [], "metadata": {}}
# A JSON null stands for "empty" in these fields (the old forms sent it for description and tags).
_EMPTY_WHEN_NULL = {"description": "", "tags": [], "metadata": {}}
ITEM_REQUIRED = ("title", "category")


def validate_item(raw: dict[str, Any], *, partial: bool) -> tuple[dict[str, Any], list[FieldProblem]]:
    """Clean item values keyed by column, and the problems (empty when valid).

    `partial` (PUT): only the given fields are checked and returned. Otherwise (create, import)
    `title` and `category` are required and the others take their defaults. `metadata` is
    replaced whole when given (as the old API did), never merged.
    """
    problems: list[FieldProblem] = []
    values: dict[str, Any] = {}
    for field, column in ITEM_FIELDS.items():
        if field not in raw:
            if not partial:
                if field in ITEM_REQUIRED:
                    problems.append(FieldProblem(field, "is required"))
                else:
                    values[column] = _fresh(ITEM_DEFAULTS[field])
            continue
        value = raw[field]
        if value is None and field in _EMPTY_WHEN_NULL:
            values[column] = _fresh(_EMPTY_WHEN_NULL[field])
            continue
        if value is None:
            problems.append(FieldProblem(field, "must not be null"))
            continue
        values[column] = _check(raw, field, problems, ITEM_RULES[field])
    if partial and not values and not problems:
        problems.append(FieldProblem("body", f"must contain at least one of {', '.join(ITEM_FIELDS)}"))
    return values, problems


def _fresh(default: Any) -> Any:
    """A default that is a list or a dict, copied: the caller may change it."""
    return type(default)(default) if isinstance(default, (list, dict)) else default


SEARCH_MAX = 200


def item_filter_problems(category: str | None, search: str | None) -> list[FieldProblem]:
    """The free-text list filters of GET /api/items (an empty value means "any")."""
    problems: list[FieldProblem] = []
    if category:
        problems += check_slug(category, "category")
    if search:
        message = _text_problem(search, 0, SEARCH_MAX)
        if message:
            problems.append(FieldProblem("search", message))
    return problems


def _display_order(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int) or not -INT32 <= value <= INT32:
        return f"must be an integer between {-INT32} and {INT32}"
    return None


def _color(value: Any) -> str | None:
    if not isinstance(value, str) or not COLOR.fullmatch(value):
        return "must be a colour like #3B82F6"
    return None


def _display_name(value: Any) -> str | None:
    return _text_problem(value, 1, DISPLAY_NAME_MAX) or (None if value.strip() else "must not be blank")


def _boolean(value: Any) -> str | None:
    return None if isinstance(value, bool) else "must be true or false"


@dataclass(frozen=True)
class CategoryField:
    """One category column: the JSON names a client may send it under, its rule, what null means."""

    column: str
    names: tuple[str, ...]  # the old API's snake_case name first, then today's camelCase / old aliases
    rule: Callable[[Any], str | None]
    null: Any = _NOT_NULL  # the value a JSON null stands for (_NOT_NULL: null is refused)
    updatable: bool = True


CATEGORY_FIELDS = (
    CategoryField("name", ("name",), _slug),
    CategoryField("display_name", ("display_name", "displayName"), _display_name),
    CategoryField("description", ("description",), lambda v: _text_problem(v, 0, CATEGORY_DESCRIPTION_MAX), null=""),
    CategoryField("color", ("color",), _color),
    CategoryField("icon", ("icon",), lambda v: _text_problem(v, 1, ICON_MAX), null=None),
    # `sort_order` is what the old PUT read.
    CategoryField("display_order", ("display_order", "displayOrder", "sort_order"), _display_order),
    CategoryField("is_active", ("is_active", "isActive"), _boolean),
    # Who created it: set once, on create (the old API never changed it afterwards).
    CategoryField("created_by", ("created_by", "createdBy"), lambda v: _text_problem(v, 1, CREATED_BY_MAX),
                  null=None, updatable=False),
)
# Left out of a create: display_name is derived from the name, display_order places it last.
CATEGORY_DEFAULTS: dict[str, Any] = {"description": "", "color": "#6B7280", "icon": None, "is_active": True,
                                     "created_by": None}
CATEGORY_ORDERS = ("display_order", "name", "created_at", "updated_at")


def display_name_for(slug: str) -> str:
    """`coleta-dados` → `Coleta Dados`: the default label of a category created without one."""
    return " ".join(part.capitalize() for part in slug.split("-") if part) or slug


def _given(raw: dict[str, Any], spec: CategoryField, problems: list[FieldProblem]) -> tuple[str, Any] | None:
    """(name, value) of the field as the client sent it, or None when absent.

    A client may use either spelling; a body that re-sends a whole category carries both with
    the same value, which is fine. Two different values are refused rather than guessed between.
    """
    sent = [(name, raw[name]) for name in spec.names if name in raw]
    if not sent:
        return None
    first_name, first_value = sent[0]
    for name, value in sent[1:]:
        if value != first_value or type(value) is not type(first_value):
            problems.append(FieldProblem(name, f"disagrees with {first_name}; send one of them"))
            return None
    return first_name, first_value


def validate_category(raw: dict[str, Any], *, partial: bool) -> tuple[dict[str, Any], list[FieldProblem]]:
    """Clean category values keyed by column, and the problems (empty when valid).

    `partial` (PUT): only the given updatable fields. Otherwise (create, import) `name` is
    required, the rest take their defaults, and a missing `display_order` stays None (the
    service puts the category after the last one).
    """
    problems: list[FieldProblem] = []
    values: dict[str, Any] = {}
    for spec in CATEGORY_FIELDS:
        if partial and not spec.updatable:
            continue
        given = _given(raw, spec, problems)
        if given is None:
            if spec.column == "name" and not partial and not any(p.field == "name" for p in problems):
                problems.append(FieldProblem("name", "is required"))
            elif not partial:
                values[spec.column] = CATEGORY_DEFAULTS.get(spec.column)
            continue
        name, value = given
        if value is None:
            if spec.null is _NOT_NULL:
                problems.append(FieldProblem(name, "must not be null"))
            else:
                values[spec.column] = spec.null
            continue
        message = spec.rule(value)
        if message:
            problems.append(FieldProblem(name, message))
        values[spec.column] = value
    if not partial and values.get("display_name") is None and not problems:
        values["display_name"] = display_name_for(values["name"])
    if partial and not values and not problems:
        names = [spec.names[0] for spec in CATEGORY_FIELDS if spec.updatable]
        problems.append(FieldProblem("body", f"must contain at least one of {', '.join(names)}"))
    return values, problems


def check_slug(raw: str, field: str = "name") -> list[FieldProblem]:
    """A slug from a path or a query string: no problems, or one naming `field`."""
    message = _slug(raw)
    return [FieldProblem(field, message)] if message else []
