"""`uv run migrate` (the console script, as a subprocess) on the three servers users have:
plain PostgreSQL, TimescaleDB preloaded, and TimescaleDB installed but not preloaded.

Each TimescaleDB server is started here, on a free port, from ../shared/timescaledb/ (PG_TIMESCALE);
without it those tests are skipped with the reason. Plain PostgreSQL is the embedded wheel's.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from tests.support import timescale
from tests.support.db import connection, fetch
from ts_ops.embedded_pg import EmbeddedPostgres
from ts_ops.migrations import default_migrations_dir, discover

MIGRATE = Path(sys.executable).parent / "migrate"
BEFORE_AMENDMENT = Path(__file__).parent / "before_amendments" / "tp_capital_001_messages_and_signals.sql"
PLANNED = {
    "tp_capital.forwarded_messages": ("original_timestamp", timedelta(days=90)),
    "tp_capital.message_revisions": ("original_timestamp", timedelta(days=90)),
    "tp_capital.tp_capital_signals": ("message_date", timedelta(days=365)),
}
_names = itertools.count()

needs_timescaledb = pytest.mark.skipif(timescale.script() is None, reason=timescale.missing_reason())


def migrate(url: str, *args: str, directory: Path | None = None) -> subprocess.CompletedProcess[str]:
    extra = ["--dir", str(directory)] if directory else []
    return subprocess.run([str(MIGRATE), "--database-url", url, *extra, *args],
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, EmbeddedPostgres]]:
    """Started lazily, one of each kind per module, removed at the end."""
    started: dict[str, EmbeddedPostgres] = {}
    roots: list[Path] = []

    def start(kind: str) -> EmbeddedPostgres:
        if kind not in started:
            root = Path(tempfile.mkdtemp(prefix=f"tspg-{kind}-"))
            root.chmod(0o755)
            roots.append(root)
            if kind == "plain":
                server = EmbeddedPostgres(root / "data")
            else:
                server = timescale.timescale_postgres(root / "data", preload=kind == "timescaledb")
            started[kind] = server.start()
        return started[kind]

    yield start  # type: ignore[misc]
    for server in started.values():
        server.destroy()
    for root in roots:
        shutil.rmtree(root, ignore_errors=True)


def new_database(server: EmbeddedPostgres) -> str:
    async def create(name: str) -> None:
        async with connection(server.url, timeout=10) as conn:
            await conn.execute(f'CREATE DATABASE "{name}"')

    name = f"migrate_{next(_names)}"
    asyncio.run(create(name))
    return server.url_for(name)


# TimescaleDB's own index on the partition column alone: never made (create_default_indexes =>
# false), and dropped by 022 where an earlier conversion made it (each table has what it needs).
DEFAULT_TIME_INDEXES = ("forwarded_messages_original_timestamp_idx", "tp_capital_signals_message_date_idx",
                        "message_revisions_original_timestamp_idx")


def default_time_indexes(url: str) -> list[str]:
    rows = fetch(url, "SELECT indexname FROM pg_indexes WHERE schemaname = 'tp_capital' AND indexname = ANY($1)",
                 list(DEFAULT_TIME_INDEXES))
    return sorted(row[0] for row in rows)


def hypertables(url: str) -> dict[str, tuple[str, timedelta]]:
    if not fetch(url, "SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'"):
        return {}
    rows = fetch(url, "SELECT hypertable_schema || '.' || hypertable_name AS t, column_name, time_interval"
                      " FROM timescaledb_information.dimensions")
    return {row["t"]: (row["column_name"], row["time_interval"]) for row in rows}


def store_history(url: str, messages: int) -> None:
    """`messages` messages an hour apart (with their first revisions) and a signal every tenth."""
    fetch(url, """
        INSERT INTO tp_capital.forwarded_messages (channel_id, message_id, original_timestamp, message_text)
        SELECT -1001649127710, i, timestamptz '2026-11-01 12:00+00' - i * interval '1 hour', 'mensagem ' || i
        FROM generate_series(1, $1) i""", messages)
    fetch(url, """
        INSERT INTO tp_capital.message_revisions (channel_id, message_id, original_timestamp, revision_date, message_text)
        SELECT channel_id, message_id, original_timestamp, original_timestamp, message_text
        FROM tp_capital.forwarded_messages""")
    fetch(url, """
        INSERT INTO tp_capital.tp_capital_signals (ts, channel, signal_type, asset, raw_message, channel_id,
                                                   message_id, message_date, revision_date, ingested_at)
        SELECT floor(extract(epoch FROM original_timestamp) * 1000)::bigint, 'TP Capital', 'Swing Trade',
               'PETR4', message_text, channel_id, message_id, original_timestamp, original_timestamp,
               -- as the ingest API stores them: revision_date set (tp_capital/008 fills it where NULL), and
               -- a millisecond of its own each (as tp_capital/010 gives every signal), so that the
               -- later migrations have no shared millisecond to spread and the rows compare equal
               timestamptz '2026-11-02 12:00+00' + message_id * interval '1 millisecond'
        FROM tp_capital.forwarded_messages WHERE message_id % 10 = 0""")


def contents(url: str, like: list[dict] | None = None) -> list[dict]:
    """Every stored row of the three planned tables, comparable before and after a conversion.

    With `like` (an earlier snapshot), only the columns that snapshot had: later migrations may add
    columns (side, current_stop, …), and what must not change is what was stored before them.
    """
    rows = [{"table": table, **dict(row)} for table in PLANNED
            for row in fetch(url, f"SELECT * FROM {table} ORDER BY 1, 2, 3")]
    if like is None:
        return rows
    columns = {(row["table"], key) for row in like for key in row}
    return [{key: value for key, value in row.items() if (row["table"], key) in columns} for row in rows]


# -- plain PostgreSQL ------------------------------------------------------------------------------


def test_plain_postgresql_migrates_on_plain_tables_without_a_word_about_timescaledb(servers) -> None:
    url = new_database(servers("plain"))
    result = migrate(url)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert [line for line in result.stdout.splitlines() if not line.startswith(("applied ", "migrate: applied "))] == []
    assert hypertables(url) == {}
    assert len(fetch(url, "SELECT version FROM public.schema_migrations")) == len(discover())


def test_hypertables_option_on_plain_postgresql_says_there_is_nothing_to_do(servers) -> None:
    url = new_database(servers("plain"))
    result = migrate(url, "--hypertables")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "migrate: --hypertables: this server has no TimescaleDB package (plain PostgreSQL); the tables work as they are"]


# -- TimescaleDB, preloaded ------------------------------------------------------------------------


@needs_timescaledb
def test_preloaded_timescaledb_gets_the_planned_hypertables(servers) -> None:
    url = new_database(servers("timescaledb"))
    result = migrate(url)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert hypertables(url) == PLANNED
    assert default_time_indexes(url) == []
    for table, (column, interval) in PLANNED.items():
        assert f"created hypertable {table} (on {column}, chunks of {interval.days} days)" in result.stdout
    # The Apache-2.0 build has no compression: one info line says so, and what it would do.
    skipped = [line for line in result.stdout.splitlines() if line.startswith("compression")]
    assert skipped == ["compression skipped: this TimescaleDB has no Timescale License features "
                       "(timescaledb.license = apache); with them migrate compresses "
                       "tp_capital.message_revisions chunks older than 30 days"]
    assert fetch(url, "SELECT count(*) FROM timescaledb_information.jobs WHERE proc_name = 'policy_compression'"
                 )[0][0] == 0
    # No retention policy, ever.
    assert fetch(url, "SELECT count(*) FROM timescaledb_information.jobs WHERE proc_name = 'policy_retention'"
                 )[0][0] == 0

    again = migrate(url)
    assert again.returncode == 0 and again.stderr == ""
    assert "created hypertable" not in again.stdout and "is up to date" in again.stdout


@needs_timescaledb
def test_a_unique_key_without_the_partition_column_is_refused_by_name(servers, tmp_path: Path) -> None:
    folder = tmp_path / "sql"
    shutil.copytree(default_migrations_dir(), folder)
    (folder / "tp_capital" / "900_bad_key.sql").write_text(
        "CREATE UNIQUE INDEX forwarded_messages_bad_key ON tp_capital.forwarded_messages (channel_id, message_id);")
    url = new_database(servers("timescaledb"))
    result = migrate(url, directory=folder)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "migrate: cannot make tp_capital.forwarded_messages a hypertable on original_timestamp: unique key "
        "tp_capital.forwarded_messages_bad_key does not contain original_timestamp (TimescaleDB checks "
        "uniqueness per chunk); change the key in a migration first"]
    assert "tp_capital.forwarded_messages" not in hypertables(url)


# -- TimescaleDB installed, not preloaded ----------------------------------------------------------


@needs_timescaledb
def test_not_preloaded_migrates_on_plain_tables_with_one_warning(servers) -> None:
    server = servers("timescaledb-not-preloaded")
    url = new_database(server)
    result = migrate(url)
    assert result.returncode == 0, result.stderr
    warning = result.stderr.strip().splitlines()
    assert warning == [
        "migrate: WARNING: TimescaleDB is installed on this server but not preloaded, so "
        "tp_capital.forwarded_messages, tp_capital.message_revisions, tp_capital.tp_capital_signals stay plain "
        "PostgreSQL tables; for hypertables add shared_preload_libraries = 'timescaledb' to postgresql.conf, "
        "restart PostgreSQL, then run `uv run migrate --hypertables`"]
    assert "Traceback" not in result.stdout
    assert hypertables(url) == {}
    assert len(fetch(url, "SELECT version FROM public.schema_migrations")) == len(discover())
    # The server lived through it (CREATE EXTENSION was never tried), and the tables work.
    store_history(url, 10)
    assert fetch(url, "SELECT count(*) FROM tp_capital.forwarded_messages")[0][0] == 10

    converting = migrate(url, "--hypertables")
    assert converting.returncode == 1
    assert converting.stderr.strip().splitlines() == [
        "migrate: --hypertables: TimescaleDB is installed on this server but not preloaded: add "
        "shared_preload_libraries = 'timescaledb' to postgresql.conf, restart PostgreSQL, and run it again"]


@needs_timescaledb
def test_a_server_that_gained_the_preload_is_offered_the_conversion_and_keeps_every_row(tmp_path: Path) -> None:
    root = Path(tempfile.mkdtemp(prefix="tspg-gained-"))
    root.chmod(0o755)
    server = timescale.timescale_postgres(root / "data", preload=False).start()
    try:
        url = new_database(server)
        assert migrate(url).returncode == 0
        store_history(url, 3000)  # ~4 months: two 90-day chunks or more
        before = contents(url)

        server.settings = dict(timescale.PRELOADED)
        server.restart()
        offered = migrate(url)
        assert offered.returncode == 0, offered.stderr
        # Empty planned tables are converted at once; tables holding rows wait for the operator.
        assert offered.stderr.strip().splitlines() == [
            "migrate: WARNING: TimescaleDB is available but tp_capital.forwarded_messages (3,000 rows), "
            "tp_capital.message_revisions (3,000 rows), tp_capital.tp_capital_signals (300 rows) are plain "
            "tables: `uv run migrate --hypertables` converts them (a one-off that locks each table while its "
            "rows are copied into chunks; README, \"TimescaleDB\")"]
        assert hypertables(url) == {}

        converted = migrate(url, "--hypertables")
        assert converted.returncode == 0, converted.stderr
        assert converted.stderr == ""
        lines = converted.stdout.splitlines()
        for table, rows in (("tp_capital.forwarded_messages", 3000), ("tp_capital.message_revisions", 3000),
                            ("tp_capital.tp_capital_signals", 300)):
            assert any(line.startswith(f"converting {table} into a hypertable") and f"{rows:,} rows" in line
                       for line in lines), lines
            assert any(line.startswith(f"converted {table}: {rows:,} rows in ") for line in lines), lines
        assert hypertables(url) == PLANNED
        assert default_time_indexes(url) == []
        assert contents(url) == before
        # Rows really live in chunks now (the parent table is empty), and the keys still hold.
        assert fetch(url, "SELECT count(*) FROM ONLY tp_capital.forwarded_messages")[0][0] == 0
        assert fetch(url, "SELECT count(*) FROM show_chunks('tp_capital.forwarded_messages')")[0][0] >= 2
        duplicate = fetch(url, """
            INSERT INTO tp_capital.forwarded_messages (channel_id, message_id, original_timestamp)
            SELECT channel_id, message_id, original_timestamp FROM tp_capital.forwarded_messages
            WHERE message_id = 42
            ON CONFLICT ON CONSTRAINT forwarded_messages_message_key DO NOTHING RETURNING 1""")
        assert duplicate == []

        rerun = migrate(url, "--hypertables")
        assert rerun.returncode == 0 and rerun.stderr == ""
        assert ("--hypertables: nothing to convert, tp_capital.forwarded_messages, tp_capital.message_revisions, "
                "tp_capital.tp_capital_signals are hypertables already") in rerun.stdout
        assert contents(url) == before
    finally:
        server.destroy()
        shutil.rmtree(root, ignore_errors=True)


# -- databases migrated by the 001 of before the amendment ---------------------------------------------


def _folder_as_before_the_amendment(tmp_path: Path) -> Path:
    """db/sql as it was when today's databases were migrated: the old 001, then 002-005."""
    folder = tmp_path / "before"
    shutil.copytree(default_migrations_dir(), folder)
    shutil.copy(BEFORE_AMENDMENT, folder / "tp_capital" / "001_messages_and_signals.sql")
    for path in (folder / "tp_capital").glob("*.sql"):
        if int(path.name[:3]) >= 6:
            path.unlink()
    return folder


def test_the_fixture_is_the_text_the_amendment_names() -> None:
    amended = next(m for m in discover() if m.version == "tp_capital/001_messages_and_signals.sql")
    assert hashlib.sha256(BEFORE_AMENDMENT.read_bytes()).hexdigest() in amended.amends


@pytest.mark.parametrize("kind", ["plain", pytest.param("timescaledb", marks=needs_timescaledb)])
def test_a_database_migrated_by_the_old_001_keeps_working(servers, kind: str, tmp_path: Path) -> None:
    url = new_database(servers(kind))
    old = migrate(url, directory=_folder_as_before_the_amendment(tmp_path))
    assert old.returncode == 0, old.stderr
    store_history(url, 500)
    before = contents(url)
    old_checksum = fetch(url, "SELECT checksum FROM public.schema_migrations"
                              " WHERE version = 'tp_capital/001_messages_and_signals.sql'")[0][0]

    result = migrate(url)
    assert result.returncode == 0, result.stderr
    assert any(line.startswith("accepted the amended tp_capital/001_messages_and_signals.sql (applied as sha256 "
                               f"{old_checksum[:12]}") for line in result.stdout.splitlines()), result.stdout
    ledger = fetch(url, "SELECT checksum, amended_from FROM public.schema_migrations"
                        " WHERE version = 'tp_capital/001_messages_and_signals.sql'")[0]
    current = next(m for m in discover() if m.version == "tp_capital/001_messages_and_signals.sql")
    assert ledger["checksum"] == current.checksum and ledger["amended_from"] == [old_checksum]
    assert contents(url, like=before) == before
    if kind == "plain":
        assert result.stderr == "" and hypertables(url) == {}
    else:
        # The old 001 made two hypertables with 30- and 90-day chunks: new chunks get the plan's
        # intervals; message_revisions, new to the plan, holds rows: offered, then converted.
        assert "tp_capital.forwarded_messages: chunk interval 30 days -> 90 days" in result.stdout
        assert "tp_capital.tp_capital_signals: chunk interval 90 days -> 365 days" in result.stdout
        assert result.stderr.count("\n") == 1 and "tp_capital.message_revisions (500 rows)" in result.stderr
        assert migrate(url, "--hypertables").returncode == 0
        assert hypertables(url) == PLANNED
        # The old 001's create_hypertable made TimescaleDB's default indexes; 022 dropped them.
        assert default_time_indexes(url) == []
        assert contents(url, like=before) == before
    assert "accepted the amended" not in migrate(url).stdout  # once


# -- a connection that dies mid-migration --------------------------------------------------------------


def _assert_one_line_lost_connection(result: subprocess.CompletedProcess[str], step: str, reason: str) -> None:
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"migrate: lost the connection to the server while {step}: {reason}"), lines[0]


def test_a_connection_killed_mid_migration_is_one_line_and_exit_1(servers, tmp_path: Path) -> None:
    folder = tmp_path / "sql"
    (folder / "demo").mkdir(parents=True)
    (folder / "demo" / "001_ok.sql").write_text("CREATE TABLE public.demo_ok (id int);")
    (folder / "demo" / "002_dies.sql").write_text(
        "CREATE TABLE public.demo_half (id int); SELECT pg_terminate_backend(pg_backend_pid());")
    url = new_database(servers("plain"))
    result = migrate(url, directory=folder)
    _assert_one_line_lost_connection(result, "applying demo/002_dies.sql",
                                     "terminating connection due to administrator command")
    assert [r["version"] for r in fetch(url, "SELECT version FROM public.schema_migrations")] == ["demo/001_ok.sql"]
    assert fetch(url, "SELECT to_regclass('public.demo_half')")[0][0] is None
    assert migrate(url, directory=folder).returncode == 1  # the file still kills it; the lock was released


@needs_timescaledb
def test_the_old_001_on_a_server_without_the_preload_is_one_line_not_a_traceback(servers, tmp_path: Path) -> None:
    """What issue 14 saw (65 lines ending in InterfaceError), replayed with the old file."""
    url = new_database(servers("timescaledb-not-preloaded"))
    result = migrate(url, directory=_folder_as_before_the_amendment(tmp_path))
    _assert_one_line_lost_connection(result, "applying tp_capital/001_messages_and_signals.sql",
                                     'extension "timescaledb" must be preloaded')
