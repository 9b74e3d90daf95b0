"""Plain-SQL migration runner (`uv run migrate`).

Files live in `db/sql/<schema>/<NNN>_<name>.sql` and are applied in order (schema folder, then
number), each in its own transaction, while a PostgreSQL advisory lock keeps two runners from
racing. `public.schema_migrations` records each file's SHA-256; a file edited after it was applied
is refused with a clear message (write a new migration instead). A second run does nothing.

Amendments: a file that cannot stay as it was (it breaks on some servers) may be changed if it
says so in a line `-- migrate: amends sha256:<the checksum it had>`. A database that applied that
older text accepts the new one without running it again; the ledger then holds the new checksum
and keeps the old one in `amended_from`. Only for changes that leave a database migrated by the
old text in a state the new text and the later migrations expect.

After the files, `ts_ops.timescaledb.reconcile` makes the tables planned as hypertables into
hypertables where the server allows it (`--hypertables` also converts tables holding rows).
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

from . import timescaledb
from ts_runtime.settings import database_url_from_env, describe_url

# Any constant works; it only has to be the same for every runner of this project.
ADVISORY_LOCK_ID = 7_340_405_001
_FILE_PATTERN = re.compile(r"^(\d{3,})_[a-z0-9_]+\.sql$")
_AMENDS_PATTERN = re.compile(r"^-- migrate: amends sha256:([0-9a-f]{64})\s*$", re.MULTILINE)


class MigrationError(RuntimeError):
    """A migration cannot be applied; the message says which file and why."""


@dataclass(frozen=True)
class Migration:
    version: str  # "<schema>/<file name>", e.g. "tp_capital/001_messages.sql"
    path: Path
    sql: str
    checksum: str
    # Checksums of earlier texts of this file that a database may have applied (amendments).
    amends: frozenset[str] = frozenset()


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
            sql = data.decode("utf-8")
            migration = Migration(
                version=f"{schema_dir.name}/{path.name}",
                path=path,
                sql=sql,
                checksum=hashlib.sha256(data).hexdigest(),
                amends=frozenset(_AMENDS_PATTERN.findall(sql)),
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
);
-- Checksums this version had before amendments were accepted (oldest first).
ALTER TABLE public.schema_migrations ADD COLUMN IF NOT EXISTS amended_from text[] NOT NULL DEFAULT '{}';
"""


async def apply_migrations(
    conn: asyncpg.Connection,
    directory: Path | None = None,
    report: Callable[[str], None] = lambda line: None,
    *,
    warn: Callable[[str], None] | None = None,
    hypertables: bool = False,
) -> list[str]:
    """Apply pending migrations on `conn`; return the versions applied (empty when up to date).

    `report` gets progress lines, `warn` (default: `report`) lines that need the operator's
    attention; `hypertables` converts planned tables that hold rows (`migrate --hypertables`).
    A connection lost on the way is a `MigrationError` saying what was being done.
    """
    migrations = discover(directory)
    step = "taking the migration lock"
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", ADVISORY_LOCK_ID)
        try:
            step = "reading public.schema_migrations"
            await conn.execute(_CREATE_LEDGER)
            await conn.execute(timescaledb.CREATE_PLAN_TABLE)
            applied = {
                row["version"]: row["checksum"]
                for row in await conn.fetch("SELECT version, checksum FROM public.schema_migrations")
            }
            await _accept_amendments(conn, migrations, applied, report)
            done: list[str] = []
            for migration in migrations:
                if migration.version in applied:
                    continue
                step = f"applying {migration.version}"
                elapsed_ms = await _apply_one(conn, migration)
                report(f"applied {migration.version} ({elapsed_ms} ms)")
                done.append(migration.version)
            step = "setting up TimescaleDB hypertables"
            try:
                await timescaledb.reconcile(conn, report, warn or report, convert=hypertables)
            except timescaledb.TimescaleError as exc:
                raise MigrationError(str(exc)) from None
            return done
        finally:
            # A dead connection took its session's advisory lock with it.
            if not conn.is_closed():
                await conn.execute("SELECT pg_advisory_unlock($1)", ADVISORY_LOCK_ID)
    except (asyncpg.InterfaceError, asyncpg.PostgresError, OSError) as exc:
        if not conn.is_closed():
            raise
        raise MigrationError(f"lost the connection to the server while {step}: {_root_reason(exc)}; "
                             "what that step had not committed was rolled back (see the server's log, "
                             "then run migrate again)") from None


async def _accept_amendments(conn: asyncpg.Connection, migrations: list[Migration], applied: dict[str, str],
                             report: Callable[[str], None]) -> None:
    """Refuse files edited after they were applied, unless the file declares the edit an amendment."""
    amended: list[tuple[Migration, str]] = []
    for migration in migrations:
        recorded = applied.get(migration.version)
        if recorded is None or recorded == migration.checksum:
            continue
        if recorded not in migration.amends:
            raise MigrationError(
                f"{migration.version} was edited after it was applied "
                f"(recorded sha256 {recorded[:12]}…, file now {migration.checksum[:12]}…); "
                "restore the file and put the change in a new migration"
            )
        amended.append((migration, recorded))
    for migration, recorded in amended:
        await conn.execute(
            "UPDATE public.schema_migrations SET checksum = $2, amended_from = amended_from || $3::text"
            " WHERE version = $1",
            migration.version, migration.checksum, recorded,
        )
        applied[migration.version] = migration.checksum
        report(f"accepted the amended {migration.version} (applied as sha256 {recorded[:12]}…, "
               f"now {migration.checksum[:12]}…; not run again)")


async def _apply_one(conn: asyncpg.Connection, migration: Migration) -> int:
    """Run one file and record it, in one transaction; return its duration in ms."""
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
        if conn.is_closed():
            raise  # reported as a lost connection by apply_migrations
        raise MigrationError(f"{migration.version} failed and was rolled back: {exc}") from exc
    return elapsed_ms


def _root_reason(exc: BaseException) -> str:
    """The server's own words for a lost connection if it sent any (a FATAL error), else asyncpg's."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    said = [e for e in chain if isinstance(e, asyncpg.PostgresError)
            and not isinstance(e, asyncpg.ConnectionDoesNotExistError)]
    lost = [e for e in chain if isinstance(e, asyncpg.ConnectionDoesNotExistError)]
    reason = (said or lost or [exc])[0]
    return (str(reason) or type(reason).__name__).splitlines()[0]


async def migrate_url(url: str, directory: Path | None = None, report: Callable[[str], None] = print, *,
                      warn: Callable[[str], None] | None = None, hypertables: bool = False) -> list[str]:
    conn = await connect(url)
    try:
        return await apply_migrations(conn, directory, report, warn=warn, hypertables=hypertables)
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
    parser.add_argument("--hypertables", action="store_true",
                        help="also convert planned tables that already hold rows into TimescaleDB hypertables "
                             "(a one-off that locks each table while its rows are copied; safe to rerun)")
    args = parser.parse_args(argv)
    url = args.database_url or database_url_from_env()
    if not url:
        print("migrate: DATABASE_URL is not set (nor TIMESCALEDB_HOST)", file=sys.stderr)
        return 2

    def report(line: str) -> None:
        print(line, flush=True)

    def warn(line: str) -> None:
        print(f"migrate: WARNING: {line}", file=sys.stderr, flush=True)

    try:
        applied = asyncio.run(migrate_url(url, args.dir, report, warn=warn, hypertables=args.hypertables))
    except MigrationError as exc:
        print(f"migrate: {exc}", file=sys.stderr)
        return 1
    except asyncpg.PostgresError as exc:  # e.g. no right to create the ledger
        print(f"migrate: {describe_url(url)}: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 1
    if applied:
        print(f"migrate: applied {len(applied)} migration(s) to {describe_url(url)}")
    else:
        print(f"migrate: {describe_url(url)} is up to date")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
