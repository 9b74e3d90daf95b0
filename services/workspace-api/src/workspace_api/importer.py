"""`uv run workspace-import [path] [--dry-run]`: move the old LowDB library.json into PostgreSQL.

1. A missing file is a clean no-op; otherwise the file is first copied to
   `library.json.backup-YYYYMMDD` (not in a dry run).
2. Every category and item is checked; bad ones are refused, each reported with its position,
   its id and every bad field. Old LowDB ids (`item-…`) get a UUID derived from them (the same
   on every run) and are kept as `legacy_id`.
3. Categories, then items, are inserted in ONE transaction with `ON CONFLICT DO NOTHING`, so a
   re-run (or a file overlapping what is already there) inserts only what is missing.
4. After the commit, every imported item id from the file is looked up again: the count and the
   ids must all be there, or the command fails.

Exit codes: 0 all imported, 3 imported but some entries were refused,
1 failure (unreadable file, database error, verification mismatch), 2 bad configuration.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any

import asyncpg
import msgspec

from ts_runtime.settings import ConfigError, database_url_from_env, describe_url

from .library import CheckedLibrary, LibraryError, check_library, read_library

DEFAULT_PATH = Path("backend/data/workspace/library.json")
BATCH = 500
EXIT_OK, EXIT_FAILED, EXIT_CONFIG, EXIT_PARTIAL = 0, 1, 2, 3

INSERT_CATEGORIES = """
INSERT INTO workspace.workspace_categories (name, display_name, description, color, icon, display_order, is_active,
                                            created_by, created_at, updated_at)
SELECT c.name, c.display_name, c.description, c.color, c.icon, c.display_order, c.is_active, c.created_by,
       c.created_at, c.updated_at
FROM jsonb_to_recordset($1::jsonb) AS c(name text, display_name text, description text, color text, icon text,
                                        display_order integer, is_active boolean, created_by text,
                                        created_at timestamptz, updated_at timestamptz)
ON CONFLICT (name) DO NOTHING
RETURNING name
"""
INSERT_ITEMS = """
INSERT INTO workspace.workspace_items (id, legacy_id, title, description, category, priority, status, tags, metadata,
                                       created_at, updated_at)
SELECT i.id, i.legacy_id, i.title, i.description, i.category, i.priority, i.status, i.tags, i.metadata,
       i.created_at, i.updated_at
FROM jsonb_to_recordset($1::jsonb) AS i(id uuid, legacy_id text, title text, description text, category text,
                                        priority text, status text, tags text[], metadata jsonb,
                                        created_at timestamptz, updated_at timestamptz)
-- No conflict target: an id or a legacy_id already there is "already present" either way (the
-- id is derived from the legacy id, so both name the same old item).
ON CONFLICT DO NOTHING
RETURNING id
"""
PRESENT_ITEMS = "SELECT id FROM workspace.workspace_items WHERE id = ANY($1::uuid[])"
PRESENT_CATEGORIES = "SELECT name FROM workspace.workspace_categories WHERE name = ANY($1::text[])"

_json = msgspec.json.Encoder()


class ImportFailed(Exception):
    pass


def backup_path(path: Path, today: date, now: datetime) -> Path:
    """`library.json.backup-YYYYMMDD`; a second backup the same day with other content gets a time."""
    candidate = path.with_name(f"{path.name}.backup-{today:%Y%m%d}")
    if candidate.exists() and candidate.read_bytes() != path.read_bytes():
        candidate = path.with_name(f"{path.name}.backup-{now:%Y%m%d-%H%M%S}")
    return candidate


def write_backup(path: Path, say: Callable[[str], None]) -> Path:
    target = backup_path(path, date.today(), datetime.now())
    if target.exists():
        say(f"backup       {target} already holds this content")
    else:
        shutil.copy2(path, target)
        say(f"backup       {target}")
    return target


async def _connect(database_url: str) -> asyncpg.Connection:
    try:
        conn = await asyncpg.connect(database_url, timeout=10)
    except (OSError, asyncio.TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise ImportFailed(f"cannot connect to {describe_url(database_url)}: {type(exc).__name__}: {exc}") from None
    if await conn.fetchval("SELECT to_regclass('workspace.workspace_items')") is None:
        await conn.close()
        raise ImportFailed("the workspace tables do not exist in that database: run `uv run migrate` first")
    return conn


async def _insert(conn: asyncpg.Connection, checked: CheckedLibrary, say: Callable[[str], None]) -> tuple[int, int]:
    """Categories then items, in one transaction; returns (categories inserted, items inserted)."""
    async with conn.transaction():
        categories = await conn.fetch(INSERT_CATEGORIES, _json.encode(checked.categories).decode())
        say(f"categories   {len(checked.categories)}/{len(checked.categories)} written ({len(categories)} new)")
        inserted = 0
        total = len(checked.items)
        for start in range(0, total, BATCH):
            batch = checked.items[start:start + BATCH]
            inserted += len(await conn.fetch(INSERT_ITEMS, _json.encode(batch).decode()))
            say(f"items        {start + len(batch):,}/{total:,} written ({inserted:,} new)")
    return len(categories), inserted


async def _present(conn: asyncpg.Connection, checked: CheckedLibrary) -> tuple[set[Any], set[str]]:
    ids = {r["id"] for r in await conn.fetch(PRESENT_ITEMS, [i["id"] for i in checked.items])}
    names = {r["name"] for r in await conn.fetch(PRESENT_CATEGORIES, [c["name"] for c in checked.categories])}
    return ids, names


def _report_checks(checked: CheckedLibrary, say: Callable[[str], None]) -> None:
    for refusal in checked.refused:
        say(f"refused      {refusal}")
    origins = checked.id_origins
    say(f"ids          {origins['old id']} old ids given a UUID derived from them (kept as legacy_id), "
        f"{origins['uuid']} UUIDs kept, {origins['no id']} items without an id given one derived from "
        "their createdAt and title")
    for name, count in sorted(checked.not_stored.items()):
        say(f"not stored   {name} ({count} item{'s' if count != 1 else ''}): the workspace has no such field; "
            "the backup keeps it")
    say(f"checked      items: {len(checked.items)} to import, {checked.refused_items} refused; "
        f"categories: {len(checked.categories)} to import, {checked.refused_categories} refused")


async def run(path: Path, database_url: str, dry_run: bool, say: Callable[[str], None]) -> int:
    raw_items, raw_categories = read_library(path)
    say(f"file         {len(raw_items):,} items, {len(raw_categories):,} categories")
    conn = await _connect(database_url)
    try:
        known = {r["name"] for r in await conn.fetch("SELECT name FROM workspace.workspace_categories")}
        checked = check_library(raw_items, raw_categories, known)
        _report_checks(checked, say)
        valid_items, valid_categories = len(checked.items), len(checked.categories)

        before_ids, before_names = await _present(conn, checked)
        if dry_run:
            say(f"dry run      would import {valid_items - len(before_ids)} items ({len(before_ids)} already present, "
                f"{checked.refused_items} refused) and {valid_categories - len(before_names)} categories "
                f"({len(before_names)} already present, {checked.refused_categories} refused); nothing written")
        else:
            new_categories, new_items = await _insert(conn, checked, say)
            say(f"summary      items: {checked.item_count:,} in file: {new_items:,} imported, "
                f"{valid_items - new_items:,} already present, {checked.refused_items:,} refused")
            say(f"             categories: {checked.category_count:,} in file: {new_categories:,} imported, "
                f"{valid_categories - new_categories:,} already present, {checked.refused_categories:,} refused")
            # Read back after the commit: every imported id (and category) must now be stored.
            after_ids, after_names = await _present(conn, checked)
            missing = [str(i["id"]) for i in checked.items if i["id"] not in after_ids]
            missing_categories = [c["name"] for c in checked.categories if c["name"] not in after_names]
            if missing or missing_categories:
                raise ImportFailed(f"verification failed: {len(missing)} items missing ({', '.join(missing[:10])}), "
                                   f"{len(missing_categories)} categories missing ({', '.join(missing_categories[:10])})")
            say(f"verified     {len(after_ids)}/{valid_items} items and {len(after_names)}/{valid_categories} "
                "categories from the file are in the database (count and ids)")
    finally:
        await conn.close()
    return EXIT_PARTIAL if checked.refused else EXIT_OK


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="workspace-import", description=__doc__.split("\n")[0])
    parser.add_argument("path", nargs="?", type=Path, default=DEFAULT_PATH,
                        help=f"the LowDB file (default {DEFAULT_PATH})")
    parser.add_argument("--dry-run", action="store_true", help="check and report; write nothing (no backup either)")
    parser.add_argument("--database-url", help="PostgreSQL URL (default DATABASE_URL or the TIMESCALEDB_* variables)")
    args = parser.parse_args(argv)

    def say(line: str) -> None:
        print(line, flush=True)

    path: Path = args.path
    if not path.exists():
        say(f"No LowDB file at {path}: nothing to import.")
        return EXIT_OK
    if not path.is_file():
        print(f"workspace-import: {path} is not a file", file=sys.stderr)
        return EXIT_FAILED
    try:
        database_url = args.database_url or database_url_from_env()
    except ConfigError as exc:
        print(f"workspace-import: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if not database_url:
        print("workspace-import: DATABASE_URL is not set (nor TIMESCALEDB_HOST); give --database-url", file=sys.stderr)
        return EXIT_CONFIG

    say(f"reading      {path} ({path.stat().st_size:,} bytes){'  [dry run]' if args.dry_run else ''}")
    try:
        if not args.dry_run:
            write_backup(path, say)
        return asyncio.run(run(path, database_url, args.dry_run, say))
    except (LibraryError, ImportFailed) as exc:
        print(f"workspace-import: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        print(f"workspace-import: {type(exc).__name__}: {exc} (nothing was committed)", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
