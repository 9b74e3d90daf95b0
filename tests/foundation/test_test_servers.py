"""The PostgreSQL servers the suite itself provides: the kind TEST_POSTGRES asks for, and a template
database no session can hold (TimescaleDB's scheduler would, and break `CREATE DATABASE … TEMPLATE`).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from tests.support import db, timescale

needs_timescaledb = pytest.mark.skipif(timescale.script() is None, reason=timescale.missing_reason())


def test_servers_the_tests_start_are_the_kind_test_postgres_asks_for() -> None:
    root = Path(tempfile.mkdtemp(prefix="tspg-kind-"))
    root.chmod(0o755)
    server = db.new_server(root / "data").start()
    try:
        described = db.describe_server(server.url)
    finally:
        server.destroy()
        shutil.rmtree(root, ignore_errors=True)
    if db.owned_server_kind() == "timescaledb":
        assert described.startswith("PostgreSQL 15.") and described.endswith("preloaded")
        assert "NOT" not in described
    else:
        assert "TimescaleDB" not in described


def test_an_unknown_test_postgres_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_POSTGRES", "timescale")
    with pytest.raises(RuntimeError, match="TEST_POSTGRES='timescale': expected one of embedded, timescaledb"):
        db.owned_server_kind()


@needs_timescaledb
@pytest.mark.parametrize("preload", [True, False])
def test_the_timescaledb_build_runs_with_or_without_the_preload(preload: bool) -> None:
    root = Path(tempfile.mkdtemp(prefix="tspg-build-"))
    root.chmod(0o755)
    server = timescale.timescale_postgres(root / "data", preload=preload).start()
    try:
        described = db.describe_server(server.url)
        port = server.port
        server.stop("immediate")  # what the fault run does to it
        server.start()
        assert server.port == port
    finally:
        server.destroy()
        shutil.rmtree(root, ignore_errors=True)
    assert described == f"PostgreSQL 15.20, TimescaleDB 2.28.3 {'preloaded' if preload else 'NOT preloaded'}"


def test_the_template_refuses_connections_and_nothing_holds_it(pg_server_url: str, migrated_template: str) -> None:
    row = db.fetch(pg_server_url, "SELECT datallowconn FROM pg_database WHERE datname = $1", migrated_template)[0]
    assert row["datallowconn"] is False
    sessions = db.fetch(pg_server_url, "SELECT count(*) FROM pg_stat_activity WHERE datname = $1", migrated_template)
    assert sessions[0][0] == 0
    # And cloning it works, many times in a row (on TimescaleDB this failed 31 times in 684 tests).
    names = [db.create_test_database(pg_server_url, migrated_template) for _ in range(5)]
    for name in names:
        db.drop_database(pg_server_url, name)
