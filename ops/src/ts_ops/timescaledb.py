"""TimescaleDB for the migration runner: hypertables from a plan, and no server left stranded.

Migrations say which tables should be hypertables by writing rows into `public.schema_hypertables`
(db/sql/tp_capital/006 and 007: table, partition column, chunk interval, compression). After the
migration files, `reconcile` brings the database as close to that plan as the server allows:

- plain PostgreSQL (no TimescaleDB package): plain tables, nothing to say;
- package installed but not in `shared_preload_libraries`: plain tables and ONE warning line on how
  to get hypertables. `CREATE EXTENSION timescaledb` is never tried there: it kills the connection;
- preloaded: the extension is created, planned tables that are still empty become hypertables at
  once, and planned tables that already hold rows are left for `migrate --hypertables` (plain
  `migrate` says so in one line), because converting them copies every row into chunks under an
  exclusive lock: a one-off the operator chooses the moment of;
- a hypertable whose chunk interval differs from the plan gets the planned one (new chunks only);
- compression: on a server with the Timescale License (`timescaledb.license = 'timescale'`, the
  compose image) the planned tables get compression settings and a policy; elsewhere (the
  Apache-2.0 build) one info line says it was skipped.

Everything here is idempotent: run it as often as you like.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

import asyncpg

Report = Callable[[str], None]
T = TypeVar("T")

# Created by the runner next to its ledger; rows come from migrations.
CREATE_PLAN_TABLE = """
CREATE TABLE IF NOT EXISTS public.schema_hypertables (
    table_name         text PRIMARY KEY,   -- schema-qualified, e.g. tp_capital.forwarded_messages
    time_column        text NOT NULL,      -- the partition column (every unique key must contain it)
    chunk_interval     interval NOT NULL,
    compress_after     interval,           -- NULL: never compressed
    compress_segmentby text,
    compress_orderby   text
)
"""

# The conversion waits this long for its exclusive lock before giving up with a message (a
# running API holds only short transactions; something holding the table longer is worth a look).
LOCK_TIMEOUT = "30s"
HEARTBEAT_SECONDS = 10.0
_PLAIN_NAME = re.compile(r"^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$")


class TimescaleError(RuntimeError):
    """The plan cannot be applied; the message says which table and why."""


@dataclass(frozen=True)
class PlannedTable:
    table: str
    time_column: str
    chunk_interval: timedelta
    compress_after: timedelta | None
    segmentby: str | None
    orderby: str | None


@dataclass(frozen=True)
class Hypertable:
    time_column: str
    chunk_interval: timedelta
    compression_enabled: bool


@dataclass(frozen=True)
class Server:
    available: bool  # the package is installed on the server
    preloaded: bool  # ... and loaded through shared_preload_libraries
    installed: bool  # the extension exists in this database


def days(interval: timedelta) -> str:
    return f"{interval.days} days" if interval.days and not interval.seconds else str(interval)


async def detect(conn: asyncpg.Connection) -> Server:
    # The loader defines its settings (timescaledb.max_background_workers, ...) only when it is
    # preloaded; a value merely written in postgresql.conf stays a placeholder, which pg_settings
    # does not list. Unlike shared_preload_libraries itself, pg_settings is readable by any role.
    row = await conn.fetchrow(
        """
        SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb') AS available,
               EXISTS (SELECT 1 FROM pg_settings WHERE name = 'timescaledb.max_background_workers') AS preloaded,
               EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') AS installed
        """
    )
    return Server(row["available"], row["preloaded"], row["installed"])


async def read_plan(conn: asyncpg.Connection) -> list[PlannedTable]:
    rows = await conn.fetch(
        "SELECT table_name, time_column, chunk_interval, compress_after, compress_segmentby, compress_orderby"
        " FROM public.schema_hypertables ORDER BY table_name"
    )
    plan = [PlannedTable(*row.values()) for row in rows]
    for entry in plan:
        if not _PLAIN_NAME.match(entry.table) or not _PLAIN_NAME.match(f"x.{entry.time_column}"):
            raise TimescaleError(f"public.schema_hypertables: {entry.table!r} / {entry.time_column!r} must be "
                                 "lowercase schema.table and column names")
    return plan


async def hypertables(conn: asyncpg.Connection) -> dict[str, Hypertable]:
    """This database's hypertables, keyed like the plan (`schema.table`, unquoted)."""
    rows = await conn.fetch(
        """
        SELECT d.hypertable_schema || '.' || d.hypertable_name AS table_name, d.column_name,
               d.time_interval, h.compression_enabled
        FROM timescaledb_information.dimensions d
        JOIN timescaledb_information.hypertables h USING (hypertable_schema, hypertable_name)
        WHERE d.dimension_number = 1
        """
    )
    return {row["table_name"]: Hypertable(row["column_name"], row["time_interval"], row["compression_enabled"])
            for row in rows}


async def reconcile(conn: asyncpg.Connection, report: Report, warn: Report, convert: bool = False) -> None:
    """Make the planned tables hypertables where the server can; see the module docstring.

    `convert` (`migrate --hypertables`) also converts planned tables that hold rows.
    """
    plan = await read_plan(conn)
    if not plan:
        return
    server = await detect(conn)
    names = ", ".join(entry.table for entry in plan)
    if not server.available:
        if convert:
            raise TimescaleError("--hypertables: this server has no TimescaleDB package (plain PostgreSQL); "
                                 "the tables work as they are")
        return
    if not server.preloaded:
        problem = ("TimescaleDB is installed in this database but the server no longer preloads it"
                   if server.installed else
                   "TimescaleDB is installed on this server but not preloaded")
        preload = "add shared_preload_libraries = 'timescaledb' to postgresql.conf, restart PostgreSQL"
        if convert:
            raise TimescaleError(f"--hypertables: {problem}: {preload}, and run it again")
        warn(f"{problem}, so {names} stay plain PostgreSQL tables; for hypertables {preload}, "
             "then run `uv run migrate --hypertables`")
        return

    if not server.installed:
        await conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    existing = await hypertables(conn)
    waiting: list[str] = []
    if convert and all(entry.table in existing for entry in plan):
        report(f"--hypertables: nothing to convert, {names} are hypertables already")
    for entry in plan:
        current = existing.get(entry.table)
        if current is not None:
            await _keep_interval(conn, entry, current, report)
            continue
        rows = await _row_count(conn, entry.table)
        if rows and not convert:
            waiting.append(f"{entry.table} ({rows:,} rows)")
            continue
        await convert_table(conn, entry, rows, report)
    if waiting:
        warn(f"TimescaleDB is available but {', '.join(waiting)} "
             f"{'is a plain table' if len(waiting) == 1 else 'are plain tables'}: "
             "`uv run migrate --hypertables` converts them (a one-off that locks each table while its "
             "rows are copied into chunks; README, \"TimescaleDB\")")
    await _compression(conn, plan, report)


async def _row_count(conn: asyncpg.Connection, table: str) -> int:
    return await conn.fetchval(f"SELECT count(*) FROM {_quoted(table)}")


async def _keep_interval(conn: asyncpg.Connection, entry: PlannedTable, current: Hypertable, report: Report) -> None:
    if current.time_column != entry.time_column:
        raise TimescaleError(
            f"{entry.table} is a hypertable on {current.time_column}, but the plan partitions it on "
            f"{entry.time_column}; that cannot be changed in place")
    if current.chunk_interval != entry.chunk_interval:
        await conn.execute("SELECT set_chunk_time_interval($1::text::regclass, $2::interval)",
                           entry.table, entry.chunk_interval)
        report(f"{entry.table}: chunk interval {days(current.chunk_interval)} -> {days(entry.chunk_interval)} "
               "(for chunks created from now on; existing chunks keep theirs)")


async def check_convertible(conn: asyncpg.Connection, entry: PlannedTable) -> None:
    """Refuse, naming the index, a table TimescaleDB would refuse to partition.

    A hypertable enforces uniqueness chunk by chunk, so it accepts only unique keys that contain the
    partition column (then "unique in its chunk" means "unique"); our message keys are built that way.
    """
    if await conn.fetchval("SELECT to_regclass($1)", entry.table) is None:
        raise TimescaleError(f"the plan names {entry.table}, which does not exist")
    offending = await conn.fetch(
        """
        SELECT i.indexrelid::regclass::text AS name
        FROM pg_index i
        JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attname = $2
        WHERE i.indrelid = $1::text::regclass AND i.indisunique AND NOT (a.attnum = ANY (i.indkey))
        ORDER BY 1
        """,
        entry.table, entry.time_column,
    )
    if offending:
        indexes = ", ".join(row["name"] for row in offending)
        raise TimescaleError(
            f"cannot make {entry.table} a hypertable on {entry.time_column}: unique key {indexes} does not "
            f"contain {entry.time_column} (TimescaleDB checks uniqueness per chunk); change the key in a "
            "migration first")


async def convert_table(conn: asyncpg.Connection, entry: PlannedTable, rows: int, report: Report) -> None:
    """`create_hypertable(..., migrate_data => true)` in one transaction of its own.

    With rows, TimescaleDB copies each one into its chunk and empties the parent table, under an
    ACCESS EXCLUSIVE lock (writers wait, or the ingest API answers 503 and the gateway retries from
    its queue), needing free disk space about the table's size. A failure rolls everything back,
    and a rerun starts over on the tables still plain.
    """
    await check_convertible(conn, entry)
    shape = f"on {entry.time_column}, chunks of {days(entry.chunk_interval)}"
    if rows:
        size = await conn.fetchval("SELECT pg_size_pretty(pg_total_relation_size($1::text::regclass))", entry.table)
        report(f"converting {entry.table} into a hypertable ({shape}): {rows:,} rows, {size} ...")
    started = time.monotonic()

    async def run() -> None:
        async with conn.transaction():
            await conn.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
            await conn.execute("SET LOCAL statement_timeout = 0")
            try:
                await conn.execute(f"LOCK TABLE {_quoted(entry.table)} IN ACCESS EXCLUSIVE MODE")
            except asyncpg.LockNotAvailableError:
                raise TimescaleError(
                    f"{entry.table} stayed locked by another session for {LOCK_TIMEOUT}; nothing was changed "
                    "(stop what holds it, e.g. a long transaction, and run migrate again)") from None
            await conn.execute(
                "SELECT create_hypertable($1::text::regclass, $2::name, chunk_time_interval => $3::interval,"
                " migrate_data => true, create_default_indexes => false)",
                entry.table, entry.time_column, entry.chunk_interval,
            )

    try:
        await _with_heartbeat(run(), lambda seconds: report(f"  ... still converting {entry.table} ({seconds:.0f} s)"))
    except asyncpg.PostgresError as exc:
        if conn.is_closed():
            raise  # the runner reports a lost connection
        raise TimescaleError(f"converting {entry.table} failed and was rolled back: {exc}") from exc
    elapsed = time.monotonic() - started
    if rows:
        # The parent's statistics described rows that now live in chunks: plan on fresh ones.
        await conn.execute(f"ANALYZE {_quoted(entry.table)}")
        chunks = await conn.fetchval("SELECT count(*) FROM show_chunks($1::text::regclass)", entry.table)
        report(f"converted {entry.table}: {rows:,} rows in {chunks} chunks ({elapsed:.1f} s)")
    else:
        report(f"created hypertable {entry.table} ({shape})")


async def _compression(conn: asyncpg.Connection, plan: list[PlannedTable], report: Report) -> None:
    existing = await hypertables(conn)
    wanted = [entry for entry in plan if entry.compress_after is not None and entry.table in existing]
    if not wanted:
        return
    license_ = await conn.fetchval("SELECT current_setting('timescaledb.license', true)")
    if license_ != "timescale":
        report(f"compression skipped: this TimescaleDB has no Timescale License features (timescaledb.license = "
               f"{license_}); with them migrate compresses "
               + ", ".join(f"{e.table} chunks older than {days(e.compress_after)}" for e in wanted))
        return
    for entry in wanted:
        await _compress(conn, entry, existing[entry.table], report)


async def _compress(conn: asyncpg.Connection, entry: PlannedTable, current: Hypertable, report: Report) -> None:
    async with conn.transaction():
        if not current.compression_enabled:
            options = ["timescaledb.compress"]
            if entry.segmentby:
                options.append(f"timescaledb.compress_segmentby = {_literal(entry.segmentby)}")
            if entry.orderby:
                options.append(f"timescaledb.compress_orderby = {_literal(entry.orderby)}")
            await conn.execute(f"ALTER TABLE {_quoted(entry.table)} SET ({', '.join(options)})")
        schema, name = entry.table.split(".", 1)
        policy = await conn.fetchrow(
            "SELECT job_id, (config->>'compress_after')::interval AS compress_after FROM timescaledb_information.jobs"
            " WHERE proc_name = 'policy_compression' AND hypertable_schema = $1 AND hypertable_name = $2",
            schema, name,
        )
        if policy is not None and policy["compress_after"] == entry.compress_after:
            return
        if policy is not None:
            await conn.execute("SELECT remove_compression_policy($1::text::regclass)", entry.table)
        await conn.execute("SELECT add_compression_policy($1::text::regclass, compress_after => $2::interval)",
                           entry.table, entry.compress_after)
        # A write into a compressed chunk decompresses the batches it may conflict with; TimescaleDB
        # fails the whole statement past 100,000 such rows by default. A refused write would stall
        # the gateway's queue (it retries the same batch), so this database has no such limit.
        await conn.execute(
            "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET "
            "timescaledb.max_tuples_decompressed_per_dml_transaction = 0', current_database()); END $$")
    report(f"compression policy on {entry.table}: chunks older than {days(entry.compress_after)} "
           f"(segment by {entry.segmentby or '-'}, order by {entry.orderby or '-'})")


async def _with_heartbeat(work: Awaitable[T], beat: Callable[[float], None]) -> T:
    """Await `work`, calling `beat(seconds so far)` every HEARTBEAT_SECONDS while it runs."""
    task = asyncio.ensure_future(work)
    started = time.monotonic()
    while True:
        done, _ = await asyncio.wait({task}, timeout=HEARTBEAT_SECONDS)
        if done:
            return task.result()
        beat(time.monotonic() - started)


def _quoted(table: str) -> str:
    schema, name = table.split(".", 1)
    return f'"{schema}"."{name}"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
