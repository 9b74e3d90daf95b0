"""Plain-SQL migration runner (`uv run migrate`).

Files live in `db/sql/<schema>/<NNN>_<name>.sql` and are applied in order (schema folder, then
number), each in its own transaction, while a PostgreSQL advisory lock keeps two runners from
racing. `public.schema_migrations` records each file's SHA-256; a file edited after it was applied
is refused with a clear message (write a new migration instead). A second run does nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import asyncpg

from .settings import database_url_from_env, describe_url

# Any constant works; it only has to be the same for every runner of this project.
ADVISORY_LOCK_ID = 7_340_405_001
_FILE_PATTERN = re.compile(r"^(\d{3,})_[a-z0-9_]+\.sql$")


class MigrationError(RuntimeError):
    """A migration cannot be applied; the message says which file and why."""


@dataclass(frozen=True)
class Migration:
    version: str  # "<schema>/<file name>", e.g. "tp_capital/001_messages.sql"
    path: Path
    sql: str
    checksum: str


def default_migrations_dir() -> Path:
    configured = os.environ.get("MIGRATIONS_DIR")
    if configured:
        return Path(configured)
    # Source checkout (uv installs workspace members in editable mode): <repo>/db/sql.
    repo_dir = Path(__file__).resolve().parents[3] / "db" / "sql"
    if repo_dir.is_dir():
        return repo_dir
    return Path.cwd() / "db" / "sql"


def discover(directory: Path | None = None) -> list[Migration]:
    directory = directory or default_migrations_dir()
    if not directory.is_dir():
        raise MigrationError(f"migrations folder {directory} does not exist (set MIGRATIONS_DIR)")
    found: list[tuple[str, int, Migration]] = []
    for schema_dir in sorted(p for p in directory.iterdir() if p.is_dir()):
        for path in sorted(schema_dir.glob("*.sql")):
            match = _FILE_PATTERN.match(path.name)
            if not match:
                raise MigrationError(f"{path}: migration files are named NNN_lowercase_name.sql")
            data = path.read_bytes()
            migration = Migration(
                version=f"{schema_dir.name}/{path.name}",
                path=path,
                sql=data.decode("utf-8"),
                checksum=hashlib.sha256(data).hexdigest(),
            )
            found.append((schema_dir.name, int(match.group(1)), migration))
    found.sort(key=lambda item: (item[0], item[1]))
    return [migration for _, _, migration in found]


_CREATE_LEDGER = """
CREATE TABLE IF NOT EXISTS public.schema_migrations (
    version      text PRIMARY KEY,
    checksum     text NOT NULL,
    applied_at   timestamptz NOT NULL DEFAULT now(),
    execution_ms integer NOT NULL
)
"""


async def apply_migrations(
    conn: asyncpg.Connection,
    directory: Path | None = None,
    report: Callable[[str], None] = lambda line: None,
) -> list[str]:
    """Apply pending migrations on `conn`; return the versions applied (empty when up to date)."""
    migrations = discover(directory)
    await conn.execute("SELECT pg_advisory_lock($1)", ADVISORY_LOCK_ID)
    try:
        await conn.execute(_CREATE_LEDGER)
        applied = {
            row["version"]: row["checksum"]
            for row in await conn.fetch("SELECT version, checksum FROM public.schema_migrations")
        }
        for migration in migrations:
            recorded = applied.get(migration.version)
            if recorded is not None and recorded != migration.checksum:
                raise MigrationError(
                    f"{migration.version} was edited after it was applied "
                    f"(recorded sha256 {recorded[:12]}…, file now {migration.checksum[:12]}…); "
                    "restore the file and put the change in a new migration"
                )
        done: list[str] = []
        for migration in migrations:
            if migration.version in applied:
                continue
            started = time.monotonic()
            try:
                async with conn.transaction():
                    await conn.execute(migration.sql)
                    elapsed_ms = int((time.monotonic() - started) * 1000)
                    await conn.execute(
                        "INSERT INTO public.schema_migrations (version, checksum, execution_ms) VALUES ($1, $2, $3)",
                        migration.version,
                        migration.checksum,
                        elapsed_ms,
                    )
            except asyncpg.PostgresError as exc:
                raise MigrationError(f"{migration.version} failed and was rolled back: {exc}") from exc
            report(f"applied {migration.version} ({elapsed_ms} ms)")
            done.append(migration.version)
        return done
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", ADVISORY_LOCK_ID)


async def migrate_url(url: str, directory: Path | None = None, report: Callable[[str], None] = print) -> list[str]:
    conn = await connect(url)
    try:
        return await apply_migrations(conn, directory, report)
    finally:
        await conn.close()


async def connect(url: str, timeout: float = 5.0) -> asyncpg.Connection:
    """Connect or raise `MigrationError` with one line saying where and why."""
    try:
        return await asyncpg.connect(url, timeout=timeout)
    except (OSError, asyncio.TimeoutError, asyncpg.PostgresError, ValueError) as exc:
        reason = str(exc) or type(exc).__name__
        raise MigrationError(f"cannot connect to {describe_url(url)}: {reason}") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="migrate", description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="defaults to DATABASE_URL or the TIMESCALEDB_* variables")
    parser.add_argument("--dir", type=Path, help="migrations folder (default: db/sql of this checkout)")
    args = parser.parse_args(argv)
    url = args.database_url or database_url_from_env()
    if not url:
        print("migrate: DATABASE_URL is not set (nor TIMESCALEDB_HOST)", file=sys.stderr)
        return 2
    try:
        applied = asyncio.run(migrate_url(url, args.dir))
    except MigrationError as exc:
        print(f"migrate: {exc}", file=sys.stderr)
        return 1
    if applied:
        print(f"migrate: applied {len(applied)} migration(s) to {describe_url(url)}")
    else:
        print(f"migrate: {describe_url(url)} is up to date")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
