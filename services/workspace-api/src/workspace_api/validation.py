"""Field rules for items and categories, shared by the API and the LowDB importer.

Each validator reads a decoded JSON object, checks every field it knows (unknown fields are
ignored, as the old API did) and returns the clean values plus one problem per bad field, so a
client or an import report names all of them at once.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from .errors import FieldProblem

PRIORITIES = ("low", "medium", "high", "critical")
STATUSES = ("new", "review", "in-progress", "completed", "rejected")
SLUG = re.compile(r"^[a-z0-9-]+$")
COLOR = re.compile(r"^#[0-9A-Fa-f]{6}$")

TITLE_MAX = 200
DESCRIPTION_MAX = 2000
TAGS_MAX = 50
TAG_MAX = 100
CATEGORY_NAME_MAX = 100
DISPLAY_NAME_MAX = 100
CATEGORY_DESCRIPTION_MAX = 500
INT32 = 2**31 - 1

# Item fields: JSON name → column name.
ITEM_FIELDS = {"title": "title", "description": "description", "category": "category",
               "priority": "priority", "status": "status", "tags": "tags"}
CATEGORY_FIELDS = {"name": "name", "displayName": "display_name", "description": "description",
                   "color": "color", "displayOrder": "display_order", "isActive": "is_active"}


class BodyError(Exception):
    """The request body is not a JSON object."""

    def __init__(self, problem: FieldProblem) -> None:
        super().__init__(problem.text)
        self.problem = problem


def decode_object(body: bytes) -> dict[str, Any]:
    """A request body as a JSON object, or BodyError."""
    try:
        # msgspec checks UTF-8 only in the strings it decodes, raising UnicodeDecodeError (a 500);
        # the whole body is checked first, so a bad byte anywhere is a 400 naming it.
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad = exc.object[exc.start:exc.end].hex(" ")
        raise BodyError(FieldProblem("body", f"is not valid UTF-8 ({exc.reason}: byte {bad} at offset {exc.start})")) from None
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
    if problem is None and not SLUG.match(value):
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


ITEM_RULES = {
    "title": _title,
    "description": lambda v: _text_problem(v, 0, DESCRIPTION_MAX),
    "category": _slug,
    "priority": _one_of(PRIORITIES),
    "status": _one_of(STATUSES),
    "tags": _tags,
}
ITEM_DEFAULTS: dict[str, Any] = {"description": "", "priority": "medium", "status": "new", "tags": []}
ITEM_REQUIRED = ("title", "category")


def validate_item(raw: dict[str, Any], *, partial: bool) -> tuple[dict[str, Any], list[FieldProblem]]:
    """Clean item values keyed by column, and the problems (empty when valid).

    `partial` (PUT): only the given fields are checked and returned. Otherwise (create, import)
    `title` and `category` are required and the others take their defaults.
    """
    problems: list[FieldProblem] = []
    values: dict[str, Any] = {}
    for field, column in ITEM_FIELDS.items():
        if field not in raw:
            if not partial:
                if field in ITEM_REQUIRED:
                    problems.append(FieldProblem(field, "is required"))
                else:
                    values[column] = list(ITEM_DEFAULTS[field]) if field == "tags" else ITEM_DEFAULTS[field]
            continue
        value = raw[field]
        # null means "empty" for the optional text/list fields (the old forms sent it).
        if value is None and field in ("description", "tags"):
            values[column] = "" if field == "description" else []
            continue
        if value is None:
            problems.append(FieldProblem(field, "must not be null"))
            continue
        values[column] = _check(raw, field, problems, ITEM_RULES[field])
    if partial and not values and not problems:
        problems.append(FieldProblem("body", f"must contain at least one of {', '.join(ITEM_FIELDS)}"))
    return values, problems


def _display_order(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int) or not -INT32 <= value <= INT32:
        return f"must be an integer between {-INT32} and {INT32}"
    return None


def _color(value: Any) -> str | None:
    if not isinstance(value, str) or not COLOR.match(value):
        return "must be a colour like #3B82F6"
    return None


CATEGORY_RULES = {
    "name": _slug,
    "displayName": lambda v: _text_problem(v, 1, DISPLAY_NAME_MAX) or (None if v.strip() else "must not be blank"),
    "description": lambda v: _text_problem(v, 0, CATEGORY_DESCRIPTION_MAX),
    "color": _color,
    "displayOrder": _display_order,
    "isActive": lambda v: None if isinstance(v, bool) else "must be true or false",
}
CATEGORY_DEFAULTS: dict[str, Any] = {"description": "", "color": "#6B7280", "displayOrder": 0, "isActive": True}


def display_name_for(slug: str) -> str:
    """`coleta-dados` → `Coleta Dados`: the default label of a category created without one."""
    return " ".join(part.capitalize() for part in slug.split("-") if part) or slug


def validate_category(raw: dict[str, Any], *, partial: bool) -> tuple[dict[str, Any], list[FieldProblem]]:
    """Clean category values keyed by column, and the problems (empty when valid)."""
    problems: list[FieldProblem] = []
    values: dict[str, Any] = {}
    for field, column in CATEGORY_FIELDS.items():
        if field not in raw or (raw[field] is None and field == "description"):
            if field not in raw and partial:
                continue
            if field == "name":
                problems.append(FieldProblem(field, "is required"))
            elif field == "displayName":
                pass  # derived from the name below
            else:
                values[column] = "" if field == "description" else CATEGORY_DEFAULTS[field]
            continue
        if raw[field] is None:
            problems.append(FieldProblem(field, "must not be null"))
            continue
        values[column] = _check(raw, field, problems, CATEGORY_RULES[field])
    if not partial and "display_name" not in values and "name" in values and not problems:
        values["display_name"] = display_name_for(values["name"])
    if partial and not values and not problems:
        problems.append(FieldProblem("body", f"must contain at least one of {', '.join(CATEGORY_FIELDS)}"))
    return values, problems
