"""From a request body (or a LowDB entry) to column values, with every bad field named at once.

The field rules are the request structs' Meta constraints (schemas.py), checked by msgspec and
worded by ts_runtime.api_core.problems. What a constraint cannot say is here: a title or display
name that is only blank, an item's metadata (an object jsonb can hold, at most
METADATA_MAX_BYTES), lone surrogates (only a LowDB file, read by Python's json, can carry them),
and a category field sent under two spellings with different values. What needs the database
("must be an active category") is the services'.

Problems use the old API's field names: an element of `tags` is reported on `tags` as
`[1] must be …` (what its clients highlight).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import msgspec
from msgspec import UNSET

from ts_runtime.api_core.problems import decode_struct, fields_of, problems_in

from .errors import ApiError, FieldProblem, validation_failed
from .schemas import (CATEGORY_NAME_MAX, DEFAULT_COLOR, METADATA_MAX_BYTES, PRIORITIES, SEARCH_MAX, STATUSES,
                      CategoryCreate, CategoryUpdate, ItemCreate, ItemQuery, ItemUpdate, Slug)

__all__ = ["CATEGORY_NAME_MAX", "CATEGORY_ORDERS", "PRIORITIES", "SEARCH_MAX", "SLUG", "STATUSES",
           "category_from_body", "check_slug", "display_name_for", "item_filter_problems", "item_from_body",
           "metadata_problem", "validate_category", "validate_item"]

# For code that checks a slug itself (the importer reading old ids): always with fullmatch().
SLUG = re.compile(r"[a-z0-9-]+")
CATEGORY_ORDERS = ("display_order", "name", "created_at", "updated_at")

ITEM_FIELDS = ("title", "description", "category", "priority", "status", "tags", "metadata")
# A JSON null stands for "empty" in these fields (the old forms sent it for description and tags).
_EMPTY_WHEN_NULL: dict[str, Any] = {"description": "", "tags": [], "metadata": {}}

# Category column → the JSON names a client may send it under: the old API's snake_case first,
# then today's camelCase and the old PUT's `sort_order`.
CATEGORY_NAMES = {
    "name": ("name",),
    "display_name": ("display_name", "displayName"),
    "description": ("description",),
    "color": ("color",),
    "icon": ("icon",),
    "display_order": ("display_order", "displayOrder", "sort_order"),
    "is_active": ("is_active", "isActive"),
    "created_by": ("created_by", "createdBy"),
}
# Left out of a create: display_name is derived from the name, display_order None places it last.
CATEGORY_DEFAULTS: dict[str, Any] = {"description": "", "color": DEFAULT_COLOR, "icon": None,
                                     "display_order": None, "is_active": True, "created_by": None}
# The columns a client may send under more than one name.
_SPELLINGS = tuple(names for names in CATEGORY_NAMES.values() if len(names) > 1)
_NOT_BLANK = ("title", "display_name", "displayName")

_json = msgspec.json.Encoder()


# -- items -----------------------------------------------------------------------------------

def item_from_body(body: bytes, *, partial: bool) -> dict[str, Any]:
    """The column values of a POST (partial=False) or PUT body, or ApiError 400."""
    return _from_body(_ITEM, body, partial)


def validate_item(raw: dict[str, Any], *, partial: bool) -> tuple[dict[str, Any], list[FieldProblem]]:
    """An already decoded item (a LowDB entry): its column values, or the problems."""
    return _from_raw(_ITEM, raw, partial)


def _item_values(item: ItemCreate | ItemUpdate, partial: bool,
                 from_json: bool) -> tuple[dict[str, Any], list[FieldProblem]]:
    given = {name: value for name in ITEM_FIELDS if (value := getattr(item, name)) is not UNSET}
    problems = _item_rules(given, set(), from_json=from_json)
    if problems:
        return {}, _old_paths(problems)
    values = {name: _fresh(_EMPTY_WHEN_NULL[name]) if value is None else value for name, value in given.items()}
    if partial and not values:
        return {}, [FieldProblem("body", f"must contain at least one of {', '.join(ITEM_FIELDS)}")]
    return values, []


def _item_rules(fields: Mapping[str, Any], named: set[str], *, from_json: bool) -> list[FieldProblem]:
    problems = _text_rules(fields, named, from_json)
    metadata = fields.get("metadata")
    if "metadata" not in named and metadata is not None:
        message = metadata_problem(metadata)
        if message:
            problems.append(FieldProblem("metadata", message))
    return problems


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


def item_filter_problems(category: str | None, search: str | None) -> list[FieldProblem]:
    """The free-text list filters of GET /api/items (an empty value means "any")."""
    query = {name: value for name, value in (("category", category), ("search", search)) if value}
    return problems_in(ItemQuery, query) if query else []


# -- categories ------------------------------------------------------------------------------

def category_from_body(body: bytes, *, partial: bool) -> dict[str, Any]:
    """The column values of a POST (partial=False) or PUT body, or ApiError 400."""
    return _from_body(_CATEGORY, body, partial)


def validate_category(raw: dict[str, Any], *, partial: bool) -> tuple[dict[str, Any], list[FieldProblem]]:
    """An already decoded category (a LowDB entry): its column values, or the problems."""
    return _from_raw(_CATEGORY, raw, partial)


def _category_values(category: CategoryCreate | CategoryUpdate, partial: bool,
                     from_json: bool) -> tuple[dict[str, Any], list[FieldProblem]]:
    given = {name: value for name in category.__struct_fields__
             if (value := getattr(category, name)) is not UNSET}
    problems = _category_rules(given, set(), from_json=from_json)
    if problems:
        return {}, problems
    values: dict[str, Any] = {}
    for column, names in CATEGORY_NAMES.items():
        sent = [given[name] for name in names if name in given]
        if sent:
            values[column] = "" if sent[0] is None and column == "description" else sent[0]
        elif not partial:
            values[column] = CATEGORY_DEFAULTS.get(column)
    if not partial and values["display_name"] is None:
        values["display_name"] = display_name_for(values["name"])
    if partial and not values:
        names = [f.name for f in fields_of(CategoryUpdate) if f.name in CATEGORY_NAMES]
        return {}, [FieldProblem("body", f"must contain at least one of {', '.join(sorted(names, key=_column_order))}")]
    return values, []


def _column_order(name: str) -> int:
    return list(CATEGORY_NAMES).index(name)


def _category_rules(fields: Mapping[str, Any], named: set[str], *, from_json: bool) -> list[FieldProblem]:
    """Two spellings of one column must carry the same value (a body that re-sends a whole
    category has both, which is fine); two different values are refused rather than guessed."""
    problems = _text_rules(fields, named, from_json)
    for names in _SPELLINGS:
        sent = [(name, fields[name]) for name in names if name in fields and name not in named]
        for name, value in sent[1:]:
            first_name, first = sent[0]
            if value != first or type(value) is not type(first):
                problems.append(FieldProblem(name, f"disagrees with {first_name}; send one of them"))
                break
    return problems


def display_name_for(slug: str) -> str:
    """`coleta-dados` → `Coleta Dados`: the default label of a category created without one."""
    return " ".join(part.capitalize() for part in slug.split("-") if part) or slug


def check_slug(raw: str, field: str = "name") -> list[FieldProblem]:
    """A slug from a path or a query string: no problems, or one naming `field`."""
    return problems_in(Slug, raw, at=field)


# -- shared ----------------------------------------------------------------------------------

def _text_rules(fields: Mapping[str, Any], named: set[str], from_json: bool) -> list[FieldProblem]:
    """Not blank (title, display name); no lone surrogate in any text. msgspec's JSON decoder
    refuses the escape of one, so only a LowDB file (read by Python's json) can carry one."""
    problems = []
    for name in _NOT_BLANK if from_json else fields:
        if name in named or name not in fields:
            continue
        value = fields[name]
        unencodable = None if from_json else _unencodable(name, value)
        if unencodable:
            problems.append(FieldProblem(unencodable, "must be valid Unicode (no lone surrogates)"))
        elif name in _NOT_BLANK and isinstance(value, str) and value and not value.strip():
            problems.append(FieldProblem(name, "must not be blank"))
    return problems


def _unencodable(name: str, value: Any) -> str | None:
    """The path of the first text in `value` that UTF-8 cannot encode, or None."""
    if isinstance(value, str):
        return None if _encodable(value) else name
    if isinstance(value, list):
        for index, text in enumerate(value):
            if isinstance(text, str) and not _encodable(text):
                return f"{name}[{index}]"
    return None


def _problems(struct_type: Any, raw: dict[str, Any], rules) -> list[FieldProblem]:
    """The struct's problems, plus the rules' on the fields the struct had no quarrel with."""
    found = problems_in(struct_type, raw)
    return _old_paths([*found, *rules(_known(struct_type, raw), _top_fields(found), from_json=False)])


def _with_rules(exc: ApiError, body: bytes, struct_type: Any, rules) -> ApiError:
    try:
        raw = msgspec.json.decode(body)
    except (msgspec.DecodeError, RecursionError):
        raw = None
    found = exc.errors or []
    more = rules(_known(struct_type, raw), _top_fields(found), from_json=True) if isinstance(raw, dict) else []
    return validation_failed(_old_paths([*found, *more]))


def _known(struct_type: Any, raw: dict[str, Any]) -> dict[str, Any]:
    names = {f.encode_name for f in fields_of(struct_type)}
    return {name: value for name, value in raw.items() if name in names}


def _top_fields(problems: Iterable[FieldProblem]) -> set[str]:
    return {p.field.partition("[")[0].partition(".")[0] for p in problems}


def _old_paths(problems: list[FieldProblem]) -> list[FieldProblem]:
    """`tags[1]` → `tags` with `[1] must be …`: the field names the old API answered."""
    out = []
    for problem in problems:
        head, bracket, rest = problem.field.partition("[")
        out.append(FieldProblem(head, f"[{rest} {problem.message}") if bracket and head else problem)
    return out


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _fresh(default: Any) -> Any:
    """A default that is a list or a dict, copied: the caller may change it."""
    return type(default)(default) if isinstance(default, (list, dict)) else default


# -- one path for both kinds ------------------------------------------------------------------

@dataclass(frozen=True)
class _Kind:
    """What differs between items and categories: their request Structs, the rules a Struct
    cannot state, and how the decoded fields become column values."""

    create: type[msgspec.Struct]
    update: type[msgspec.Struct]
    rules: Callable[..., list[FieldProblem]]
    values: Callable[..., tuple[dict[str, Any], list[FieldProblem]]]

    def struct(self, partial: bool) -> type[msgspec.Struct]:
        return self.update if partial else self.create


_ITEM = _Kind(ItemCreate, ItemUpdate, _item_rules, _item_values)
_CATEGORY = _Kind(CategoryCreate, CategoryUpdate, _category_rules, _category_values)


def _from_body(kind: _Kind, body: bytes, partial: bool) -> dict[str, Any]:
    struct_type = kind.struct(partial)
    try:
        decoded = decode_struct(struct_type, body)
    except ApiError as exc:
        raise _with_rules(exc, body, struct_type, kind.rules) from None
    values, problems = kind.values(decoded, partial, from_json=True)
    if problems:
        raise validation_failed(problems)
    return values


def _from_raw(kind: _Kind, raw: dict[str, Any], partial: bool) -> tuple[dict[str, Any], list[FieldProblem]]:
    struct_type = kind.struct(partial)
    try:
        decoded = msgspec.convert(raw, struct_type)
    except msgspec.ValidationError:
        return {}, _problems(struct_type, raw, kind.rules)
    return kind.values(decoded, partial, from_json=False)
