"""The TimescaleDB server for tests: PostgreSQL 15 + TimescaleDB from ../shared/timescaledb/.

No package registry offers TimescaleDB, so it lives outside the repository (never committed):
`pg-timescale` and its archive, found through `PG_TIMESCALE` (the script's path), else
`../shared/timescaledb/pg-timescale` beside the checkout, else `/work/shared/timescaledb/`.

`timescale_postgres()` is an `EmbeddedPostgres` running that build's binaries with the settings
the script writes, so a test can stop, crash and restart it like the embedded one;
`running_server()` starts one in a folder of its own and removes it afterwards (what a test that
needs "a TimescaleDB server" uses, instead of starting the script by hand). (.ci/run starts the
script itself for the suite's TEST_DATABASE_URL.)
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ts_ops.embedded_pg import EmbeddedPostgres

REPO = Path(__file__).resolve().parents[2]
# What pg-timescale writes into postgresql.conf (its README): the extension preloaded, no
# telemetry, room for the background workers of many test databases.
# JIT off: the archive ships llvmjit.so without its bitcode files, so a query costly enough to be
# JIT-compiled (a million-row generate_series) fails with "llvmjit_types.bc: No such file".
PRELOADED = {
    "shared_preload_libraries": "timescaledb",
    "timescaledb.telemetry_level": "off",
    "max_worker_processes": "16",
    "jit": "off",
}
NOT_PRELOADED = {"max_worker_processes": "16", "jit": "off"}


def script() -> Path | None:
    """The pg-timescale script, or None when this machine has none."""
    configured = os.environ.get("PG_TIMESCALE")
    candidates = [Path(configured)] if configured else []
    candidates += [REPO.parent / "shared" / "timescaledb" / "pg-timescale",
                   Path("/work/shared/timescaledb/pg-timescale")]
    return next((path.resolve() for path in candidates if path.is_file()), None)


def missing_reason() -> str:
    configured = os.environ.get("PG_TIMESCALE")
    if configured:
        return f"PG_TIMESCALE={configured} is not a file"
    return ("no TimescaleDB test server: set PG_TIMESCALE to the pg-timescale script "
            f"(looked in {REPO.parent / 'shared' / 'timescaledb'} and /work/shared/timescaledb)")


def bin_dir(pg_timescale: Path) -> Path:
    """The build's PostgreSQL binaries, unpacked from the archive beside the script if needed.

    Same place and layout as the script uses ($PG_TIMESCALE_HOME, default
    /tmp/pg15-timescaledb-2.28.3); unpacked into a temporary folder renamed into place, under a
    lock, so a concurrent test session never sees half of it.
    """
    home = Path(os.environ.get("PG_TIMESCALE_HOME", "/tmp/pg15-timescaledb-2.28.3"))
    binaries = home / "lib" / "postgresql" / "15" / "bin"
    if (binaries / "postgres").exists():
        return binaries
    archive = pg_timescale.parent / "pg15-timescaledb.tar.xz"
    home.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{home}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (binaries / "postgres").exists():
            if home.exists():
                # The script unpacks in place: let a run of it that is under way finish.
                deadline = time.monotonic() + 60
                while not (binaries / "postgres").exists():
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"{home} holds no PostgreSQL binaries: remove it and try again")
                    time.sleep(0.5)
                return binaries
            partial = Path(tempfile.mkdtemp(prefix=home.name + ".", dir=home.parent))
            try:
                subprocess.run(["tar", "-C", str(partial), "-xJf", str(archive)], check=True, capture_output=True)
                partial.chmod(0o755)
                partial.rename(home)
            finally:
                shutil.rmtree(partial, ignore_errors=True)
    return binaries


def timescale_postgres(data_dir: Path, *, preload: bool = True) -> EmbeddedPostgres:
    """An (unstarted) server of the TimescaleDB build in `data_dir`; raises if there is none."""
    pg_timescale = script()
    if pg_timescale is None:
        raise RuntimeError(missing_reason())
    return EmbeddedPostgres(data_dir, bin_dir=bin_dir(pg_timescale),
                            settings=PRELOADED if preload else NOT_PRELOADED)


@contextmanager
def running_server(*, preload: bool = True, prefix: str = "tspg-tsdb-") -> Iterator[EmbeddedPostgres]:
    """A started server of the TimescaleDB build, removed (with its folder) on exit; raises if there
    is none (check `script()` first, and skip with `missing_reason()`)."""
    # A short folder the server's own account can enter (as root, it runs as `postgres`).
    root = Path(tempfile.mkdtemp(prefix=prefix))
    root.chmod(0o755)
    try:
        server = timescale_postgres(root / "data", preload=preload).start()
        try:
            yield server
        finally:
            server.destroy()
    finally:
        shutil.rmtree(root, ignore_errors=True)
