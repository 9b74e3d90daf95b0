"""Reading the old LowDB `library.json` and checking every entry (no database here).

The file is `{"items": [...], "categories": [...]}` with the API's camelCase item fields plus
`id`, `createdAt`, `updatedAt` and `metadata`. Item ids come in the old system's three eras: a
UUID (its first routes), none at all (a week when neither the route nor the LowDB client set
one), and `item-<epoch ms>-<up to 7 random base-36 characters>` (its LowDB client's, since the
old API dropped any id a client sent).
A UUID is kept; any other id gets a UUID derived from it (`derived_item_id`, UUIDv5, so every run
gives the same one) and is kept as the item's `legacy_id`; an item without an id gets a UUID
derived from its `createdAt` and `title`.

Categories come in the old service's shapes: the API's fields in snake_case or camelCase
(`display_name`, `icon`, `created_by`, …), the LowDB defaults' `active` and `display_order`, an
`id` equal to the name (the old key; a category without a usable `name` is named by its `id`).

Each bad entry is refused with its position, its id and every bad field; the good ones are
kept, so one bad item never stops the others.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from uuid import UUID, uuid5

from .errors import FieldProblem
from .validation import SLUG, display_name_for, validate_category, validate_item

# The namespace of every id derived from an old id. Fixed forever: changing it would give the
# same old item another UUID, and a re-run would import it twice.
# uuid5(NAMESPACE_URL, "urn:tradingsystem:workspace:lowdb-item-id"):
LEGACY_NAMESPACE = UUID("ebaf62e3-4f85-54cc-89f1-9bb2ec205191")
LEGACY_ID_MAX = 255  # the legacy_id column's limit
# The item fields that are stored. Any other field holding a value is reported as not stored
# (the old service wrote `createdBy`/`updatedBy` from a user it never had: always null, so
# those are quiet in a real file).
KNOWN_ITEM_FIELDS = {"id", "title", "description", "category", "priority", "status", "tags", "createdAt",
                     "updatedAt", "metadata"}

# The old files were written by hand and by several versions of the Node service; these are
# the spellings the API itself does not accept (it takes snake_case and camelCase).
CATEGORY_ALIASES = {"label": "display_name", "order": "display_order", "active": "is_active",
                    "createdAt": "created_at", "updatedAt": "updated_at"}


class LibraryError(Exception):
    """The file cannot be used at all (not JSON, wrong shape); the message says why."""


@dataclass
class Refusal:
    """One entry that is not imported: where it is, what names it, and every bad field."""

    where: str  # items[3]
    label: str  # id "item-1730812345678-k3j9x2a"
    problems: list[FieldProblem]

    def __str__(self) -> str:
        return f"{self.where} ({self.label}): {'; '.join(p.text for p in self.problems)}"


@dataclass
class CheckedLibrary:
    items: list[dict[str, Any]] = field(default_factory=list)  # column → value, ready for SQL
    categories: list[dict[str, Any]] = field(default_factory=list)
    item_count: int = 0  # entries in the file
    category_count: int = 0
    refused: list[Refusal] = field(default_factory=list)
    # How the imported items got their UUID: "uuid" kept, "old id" derived, "no id" derived.
    id_origins: Counter[str] = field(default_factory=Counter)
    # Item fields that held a value this service does not store → how many items.
    not_stored: Counter[str] = field(default_factory=Counter)

    @property
    def refused_items(self) -> int:
        return sum(1 for r in self.refused if r.where.startswith("items["))

    @property
    def refused_categories(self) -> int:
        return sum(1 for r in self.refused if r.where.startswith("categories["))


def read_library(path: Path) -> tuple[list[Any], list[Any]]:
    """The raw item and category lists of a library file; LibraryError if unusable."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise LibraryError(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LibraryError(f"{path} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from None
    except RecursionError:
        raise LibraryError(f"{path} is not usable: JSON nested too deeply") from None
    except ValueError as exc:  # e.g. an integer longer than Python's 4,300-digit limit
        raise LibraryError(f"{path} is not usable: {exc}") from None
    if isinstance(data, list):  # a bare list of items
        return data, []
    if not isinstance(data, dict):
        raise LibraryError(f'{path} must hold a JSON object with "items" and "categories" lists')
    items, categories = data.get("items", []), data.get("categories", [])
    for name, value in (("items", items), ("categories", categories)):
        if not isinstance(value, list):
            raise LibraryError(f'{path}: "{name}" must be a list, got {type(value).__name__}')
    return items, categories


def _moment(raw: dict[str, Any], name: str, problems: list[FieldProblem]) -> datetime | None:
    value = raw.get(name)
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):  # epoch ms (Date.now())
        try:
            return datetime.fromtimestamp(value / 1000, timezone.utc)
        except (OverflowError, ValueError, OSError):
            problems.append(FieldProblem(name, "is out of range"))
            return None
    if not isinstance(value, str):
        problems.append(FieldProblem(name, "must be an ISO 8601 date-time"))
        return None
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        problems.append(FieldProblem(name, "must be an ISO 8601 date-time"))
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _is_uuid(value: str) -> bool:
    try:
        UUID(value)
    except ValueError:
        return False
    return True


def derived_item_id(old_id: str) -> UUID:
    """The UUID an item imported under a non-UUID old id gets, the same on every run."""
    return uuid5(LEGACY_NAMESPACE, old_id)


def _quoted(value: Any, limit: int = 60) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _item_label(raw: dict[str, Any]) -> str:
    if raw.get("id") not in (None, ""):
        return f"id {_quoted(raw['id'])}"
    return f"no id, title {_quoted(raw.get('title'))}"


def _item_id(raw: dict[str, Any], problems: list[FieldProblem],
             no_id_seen: Counter[str]) -> tuple[UUID | None, str | None, str]:
    """(UUID, legacy id or None, origin) of an item; origin is "uuid", "old id" or "no id"."""
    value = raw.get("id")
    if isinstance(value, int) and not isinstance(value, bool):  # the old API's id rule also allowed integers
        value = str(value)
    if value is None or value == "":  # the old client's `if (!item.id)`: no id
        # Derived from what the old system showed of the item; the n-th entry with the same
        # createdAt and title (refused ones counted too, so fixing one changes no other's id)
        # gets its own, so two identical entries both arrive. Stable for the same file.
        key = json.dumps(["no id", raw.get("createdAt"), raw.get("title")], ensure_ascii=False)
        occurrence = no_id_seen[key]
        no_id_seen[key] += 1
        return uuid5(LEGACY_NAMESPACE, f"{key}#{occurrence}"), None, "no id"
    if not isinstance(value, str):
        problems.append(FieldProblem(
            "id", "must be a string (a UUID or an old LowDB id such as item-1730812345678-k3j9x2a)"))
        return None, None, ""
    try:
        return UUID(value), None, "uuid"
    except ValueError:
        pass
    if len(value) > LEGACY_ID_MAX or "\x00" in value or not _encodable(value):
        problems.append(FieldProblem("id", f"must be a UUID or an old id of at most {LEGACY_ID_MAX} characters "
                                           "(no NUL, valid Unicode)"))
        return None, None, ""
    return derived_item_id(value), value, "old id"


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _not_stored(raw: dict[str, Any]) -> list[str]:
    """The item's fields that hold a value and are not kept."""
    return [name for name, value in raw.items()
            if name not in KNOWN_ITEM_FIELDS and value not in (None, "", [], {})]


def _category_name_from_id(raw: dict[str, Any]) -> None:
    """The old key: `id` was the name (LowDB's defaults have both, equal)."""
    old_id, name = raw.get("id"), raw.get("name")
    # A uuid id, from an earlier version of this service, names nothing and is ignored.
    if not isinstance(old_id, str) or _is_uuid(old_id) or not SLUG.fullmatch(old_id):
        return
    if name is None:
        raw["name"] = old_id
    elif isinstance(name, str) and not SLUG.fullmatch(name) and old_id != name:
        # The first LowDB defaults: {"id": "improvement", "name": "Melhoria"}; the name was a label.
        raw.setdefault("display_name", name)
        raw["name"] = old_id


def check_library(raw_items: list[Any], raw_categories: list[Any], known_categories: set[str],
                  now: datetime | None = None) -> CheckedLibrary:
    """Check every entry; `known_categories` are those already in the database."""
    now = now or datetime.now(timezone.utc)
    checked = CheckedLibrary(item_count=len(raw_items), category_count=len(raw_categories))
    names: set[str] = set()
    for index, raw in enumerate(raw_categories):
        where = f"categories[{index}]"
        if not isinstance(raw, dict):
            checked.refused.append(Refusal(where, type(raw).__name__, [FieldProblem("entry", "must be an object")]))
            continue
        label = (f"name {_quoted(raw['name'])}" if raw.get("name") is not None
                 else f"id {_quoted(raw['id'])}" if raw.get("id") is not None else "no name")
        raw = {CATEGORY_ALIASES.get(k, k): v for k, v in raw.items()}
        _category_name_from_id(raw)
        problems: list[FieldProblem] = []
        values, more = validate_category(raw, partial=False)
        problems += more
        created, updated = _moment(raw, "created_at", problems), _moment(raw, "updated_at", problems)
        if not problems and values["name"] in names:
            problems.append(FieldProblem("name", f"'{values['name']}' appears twice in the file"))
        if problems:
            checked.refused.append(Refusal(where, label, problems))
            continue
        values.setdefault("display_name", display_name_for(values["name"]))
        if values["display_order"] is None:  # the old service ordered these by their place in the file
            values["display_order"] = index + 1
        values["created_at"] = created or now
        values["updated_at"] = updated or values["created_at"]
        names.add(values["name"])
        checked.categories.append(values)

    usable = known_categories | names
    seen: dict[UUID, int] = {}
    no_id_seen: Counter[str] = Counter()
    for index, raw in enumerate(raw_items):
        where = f"items[{index}]"
        if not isinstance(raw, dict):
            checked.refused.append(Refusal(where, type(raw).__name__, [FieldProblem("entry", "must be an object")]))
            continue
        problems = []
        item_id, legacy_id, origin = _item_id(raw, problems, no_id_seen)
        # metadata too: the API's own rule (an object jsonb can hold), {} when absent or null.
        values, more = validate_item(raw, partial=False)
        problems += more
        created, updated = _moment(raw, "createdAt", problems), _moment(raw, "updatedAt", problems)
        category = values.get("category")
        if isinstance(category, str) and not any(p.field == "category" for p in problems) and category not in usable:
            problems.append(FieldProblem("category", f"'{category}' is not a known category"))
        if item_id is not None and item_id in seen:
            problems.append(FieldProblem("id", f"duplicates items[{seen[item_id]}] (the first one is imported)"))
        if problems:
            checked.refused.append(Refusal(where, _item_label(raw), problems))
            continue
        seen[item_id] = index  # type: ignore[index]
        values["id"] = item_id
        values["legacy_id"] = legacy_id
        values["created_at"] = created or now
        values["updated_at"] = updated or values["created_at"]
        checked.items.append(values)
        checked.id_origins[origin] += 1
        checked.not_stored.update(_not_stored(raw))
    return checked
