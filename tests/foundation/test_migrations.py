"""The migration runner against a real PostgreSQL: apply, no-op re-run, edited file, races."""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import asyncpg
import pytest

from ts_ops import timescaledb
from ts_ops.migrations import MigrationError, apply_migrations, default_migrations_dir, discover, migrate_url
from tests.support.db import connection


async def _tables(url: str) -> set[str]:
    async with connection(url) as conn:
        rows = await conn.fetch(
            "SELECT table_schema || '.' || table_name AS name FROM information_schema.tables "
            "WHERE table_schema IN ('tp_capital', 'workspace')"
        )
        return {row["name"] for row in rows}


async def test_applies_every_file_on_an_empty_database(empty_database_url: str) -> None:
    applied = await migrate_url(empty_database_url)
    assert applied == [m.version for m in discover()]
    tables = await _tables(empty_database_url)
    assert {
        "tp_capital.forwarded_messages",
        "tp_capital.tp_capital_signals",
        "workspace.workspace_items",
        "workspace.workspace_categories",
    } <= tables


async def test_second_run_is_a_no_op(empty_database_url: str) -> None:
    await migrate_url(empty_database_url)
    async with connection(empty_database_url) as conn:
        before = await conn.fetch("SELECT version, applied_at FROM public.schema_migrations ORDER BY version")
        assert await apply_migrations(conn) == []
        after = await conn.fetch("SELECT version, applied_at FROM public.schema_migrations ORDER BY version")
    assert before == after


async def test_refuses_a_file_edited_after_it_was_applied(empty_database_url: str, tmp_path: Path) -> None:
    folder = tmp_path / "sql"
    shutil.copytree(default_migrations_dir(), folder)
    await migrate_url(empty_database_url, folder)
    edited = folder / "workspace" / "001_items_and_categories.sql"
    edited.write_text(edited.read_text() + "\n-- a harmless-looking edit\n")
    with pytest.raises(MigrationError, match=r"workspace/001_items_and_categories\.sql was edited after it was applied"):
        await migrate_url(empty_database_url, folder)


async def test_an_amendment_is_accepted_only_for_the_checksum_it_names(empty_database_url: str, tmp_path: Path) -> None:
    folder = tmp_path / "sql"
    shutil.copytree(default_migrations_dir(), folder)
    await migrate_url(empty_database_url, folder, report=lambda line: None)
    edited = folder / "workspace" / "001_items_and_categories.sql"
    applied_as = hashlib.sha256(edited.read_bytes()).hexdigest()
    original = edited.read_text()

    edited.write_text(f"-- migrate: amends sha256:{'0' * 64}\n" + original + "\n-- clarified\n")
    with pytest.raises(MigrationError, match="was edited after it was applied"):
        await migrate_url(empty_database_url, folder, report=lambda line: None)

    edited.write_text(f"-- migrate: amends sha256:{applied_as}\n" + original + "\n-- clarified\n")
    lines: list[str] = []
    assert await migrate_url(empty_database_url, folder, report=lines.append) == []
    assert [line for line in lines if line.startswith("accepted")] == [
        f"accepted the amended workspace/001_items_and_categories.sql (applied as sha256 {applied_as[:12]}…, "
        f"now {hashlib.sha256(edited.read_bytes()).hexdigest()[:12]}…; not run again)"]
    async with connection(empty_database_url) as conn:
        row = await conn.fetchrow("SELECT checksum, amended_from FROM public.schema_migrations"
                                  " WHERE version = 'workspace/001_items_and_categories.sql'")
        categories = await conn.fetchval("SELECT count(*) FROM workspace.workspace_categories")
    assert row["checksum"] == hashlib.sha256(edited.read_bytes()).hexdigest()
    assert row["amended_from"] == [applied_as]
    assert categories == 12  # not run a second time
    lines.clear()
    await migrate_url(empty_database_url, folder, report=lines.append)
    assert not any(line.startswith("accepted") for line in lines)


async def test_long_work_reports_progress_while_it_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(timescaledb, "HEARTBEAT_SECONDS", 0.05)
    beats: list[float] = []
    assert await timescaledb._with_heartbeat(asyncio.sleep(0.28, "done"), beats.append) == "done"
    assert len(beats) >= 3 and beats == sorted(beats)


async def test_new_file_is_applied_on_the_next_run(empty_database_url: str, tmp_path: Path) -> None:
    folder = tmp_path / "sql"
    shutil.copytree(default_migrations_dir(), folder)
    await migrate_url(empty_database_url, folder)
    (folder / "workspace" / "900_extra_table.sql").write_text("CREATE TABLE workspace.extra (id int);")
    assert await migrate_url(empty_database_url, folder) == ["workspace/900_extra_table.sql"]


async def test_failing_file_is_rolled_back_and_not_recorded(empty_database_url: str, tmp_path: Path) -> None:
    folder = tmp_path / "sql"
    (folder / "demo").mkdir(parents=True)
    (folder / "demo" / "001_ok.sql").write_text("CREATE TABLE public.demo_ok (id int);")
    (folder / "demo" / "002_broken.sql").write_text("CREATE TABLE public.demo_half (id int); SELECT no_such_function();")
    with pytest.raises(MigrationError, match="demo/002_broken.sql failed and was rolled back"):
        await migrate_url(empty_database_url, folder)
    async with connection(empty_database_url) as conn:
        versions = [r["version"] for r in await conn.fetch("SELECT version FROM public.schema_migrations")]
        half = await conn.fetchval("SELECT to_regclass('public.demo_half')")
    assert versions == ["demo/001_ok.sql"]
    assert half is None


async def test_concurrent_runners_apply_each_file_once(empty_database_url: str) -> None:
    results = await asyncio.gather(*(migrate_url(empty_database_url) for _ in range(4)))
    applied = [version for result in results for version in result]
    assert sorted(applied) == sorted(m.version for m in discover())
    async with connection(empty_database_url) as conn:
        rows = await conn.fetchval("SELECT count(*) FROM public.schema_migrations")
        categories = await conn.fetchval("SELECT count(*) FROM workspace.workspace_categories")
    assert rows == len(discover())
    assert categories == 12  # seeded once, not once per runner


async def test_message_key_rejects_a_second_copy_of_a_telegram_message(database_url: str) -> None:
    moment = datetime(2025, 11, 3, 10, 15, tzinfo=timezone.utc)
    insert = (
        "INSERT INTO tp_capital.forwarded_messages (channel_id, message_id, original_timestamp, message_text) "
        "VALUES ($1, $2, $3, $4) ON CONFLICT ON CONSTRAINT forwarded_messages_message_key DO NOTHING RETURNING id"
    )
    async with connection(database_url) as conn:
        first = await conn.fetchval(insert, -1001649127710, 42, moment, "ATIVO: PETR4")
        second = await conn.fetchval(insert, -1001649127710, 42, moment, "ATIVO: PETR4 (retry)")
        with pytest.raises(asyncpg.UniqueViolationError):
            await conn.execute(
                "INSERT INTO tp_capital.forwarded_messages (channel_id, message_id, original_timestamp) VALUES ($1, $2, $3)",
                -1001649127710,
                42,
                moment,
            )
        count = await conn.fetchval("SELECT count(*) FROM tp_capital.forwarded_messages")
    assert first is not None and second is None and count == 1


def _run_migrate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ts_ops.migrations", *args], capture_output=True, text=True, timeout=60
    )


def test_cli_reports_a_down_server_in_one_line() -> None:
    result = _run_migrate("--database-url", "postgresql://postgres@127.0.0.1:1/postgres")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("migrate: cannot connect to postgresql://postgres@127.0.0.1:1/postgres")


def test_cli_reports_a_bad_url_in_one_line() -> None:
    result = _run_migrate("--database-url", "mysql://nope")
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1 and "cannot connect" in result.stderr


def test_cli_hides_the_password(tmp_path: Path) -> None:
    result = _run_migrate("--database-url", "postgresql://user:s3cretpassw0rd@127.0.0.1:1/db")
    assert result.returncode == 1 and "s3cretpassw0rd" not in result.stderr


def test_cli_applies_then_reports_up_to_date(empty_database_url: str) -> None:
    first = _run_migrate("--database-url", empty_database_url)
    second = _run_migrate("--database-url", empty_database_url)
    assert first.returncode == 0 and "applied" in first.stdout
    assert second.returncode == 0 and "is up to date" in second.stdout
