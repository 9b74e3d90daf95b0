"""Reading the old LowDB `library.json` and checking every entry (no database here).

The file is `{"items": [...], "categories": [...]}` with the API's camelCase item fields plus
`id`, `createdAt` and `updatedAt`. Categories come in the old service's shapes: the API's
fields in snake_case or camelCase (`display_name`, `icon`, `created_by`, …), the LowDB defaults'
`active` and `display_order`, an `id` equal to the name (the old key; a category without a
`name` is named by its `id`). Each bad entry is reported by its index and field; the good ones
are kept, so one bad item never stops the others.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from uuid import UUID

from .errors import FieldProblem
from .validation import display_name_for, validate_category, validate_item

# The old files were written by hand and by several versions of the Node service; these are
# the spellings the API itself does not accept (it takes snake_case and camelCase).
CATEGORY_ALIASES = {"label": "display_name", "order": "display_order", "active": "is_active",
                    "createdAt": "created_at", "updatedAt": "updated_at"}


class LibraryError(Exception):
    """The file cannot be used at all (not JSON, wrong shape); the message says why."""


@dataclass
class Problem:
    where: str  # items[3]
    problem: FieldProblem

    def __str__(self) -> str:
        return f"{self.where}.{self.problem.text}"


@dataclass
class CheckedLibrary:
    items: list[dict[str, Any]] = field(default_factory=list)  # column → value, ready for SQL
    categories: list[dict[str, Any]] = field(default_factory=list)
    item_count: int = 0  # entries in the file
    category_count: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def invalid_items(self) -> int:
        return len({p.where for p in self.problems if p.where.startswith("items[")})

    @property
    def invalid_categories(self) -> int:
        return len({p.where for p in self.problems if p.where.startswith("categories[")})


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


def _uuid(raw: dict[str, Any], problems: list[FieldProblem], required: bool) -> UUID | None:
    value = raw.get("id")
    if value is None:
        if required:
            problems.append(FieldProblem("id", "is required (a UUID)"))
        return None
    if isinstance(value, str):
        try:
            return UUID(value)
        except ValueError:
            pass
    problems.append(FieldProblem("id", "must be a UUID string"))
    return None


def check_library(raw_items: list[Any], raw_categories: list[Any], known_categories: set[str],
                  now: datetime | None = None) -> CheckedLibrary:
    """Check every entry; `known_categories` are those already in the database."""
    now = now or datetime.now(timezone.utc)
    checked = CheckedLibrary(item_count=len(raw_items), category_count=len(raw_categories))
    names: set[str] = set()
    for index, raw in enumerate(raw_categories):
        where = f"categories[{index}]"
        if not isinstance(raw, dict):
            checked.problems.append(Problem(where, FieldProblem("entry", "must be an object")))
            continue
        raw = {CATEGORY_ALIASES.get(k, k): v for k, v in raw.items()}
        # The old key: `id` was the name (LowDB's defaults have both, equal). A uuid id, from
        # an earlier version of this service, names nothing and is ignored.
        if raw.get("name") is None and isinstance(raw.get("id"), str) and not _is_uuid(raw["id"]):
            raw["name"] = raw["id"]
        problems: list[FieldProblem] = []
        values, more = validate_category(raw, partial=False)
        problems += more
        created, updated = _moment(raw, "created_at", problems), _moment(raw, "updated_at", problems)
        if not problems and values["name"] in names:
            problems.append(FieldProblem("name", f"'{values['name']}' appears twice in the file"))
        if problems:
            checked.problems += [Problem(where, p) for p in problems]
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
    for index, raw in enumerate(raw_items):
        where = f"items[{index}]"
        if not isinstance(raw, dict):
            checked.problems.append(Problem(where, FieldProblem("entry", "must be an object")))
            continue
        problems = []
        item_id = _uuid(raw, problems, required=True)
        values, more = validate_item(raw, partial=False)
        problems += more
        created, updated = _moment(raw, "createdAt", problems), _moment(raw, "updatedAt", problems)
        category = values.get("category")
        if isinstance(category, str) and not any(p.field == "category" for p in problems) and category not in usable:
            problems.append(FieldProblem("category", f"'{category}' is not a known category"))
        if item_id is not None and item_id in seen:
            problems.append(FieldProblem("id", f"duplicates items[{seen[item_id]}] (the first one is imported)"))
        if problems:
            checked.problems += [Problem(where, p) for p in problems]
            continue
        seen[item_id] = index  # type: ignore[index]
        values["id"] = item_id
        values["created_at"] = created or now
        values["updated_at"] = updated or values["created_at"]
        checked.items.append(values)
    return checked
