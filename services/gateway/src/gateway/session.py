"""The Telegram session: start-up check, interactive login, and consistent backups.

A Telethon file session is a small SQLite database (tables `version`, `sessions` with the auth
key, `entities`, `update_state`, `sent_files`). It is the account's login: losing it means an
interactive login (a code on the phone), and two processes on one file give "database is
locked" (or, from two addresses, `AUTH_KEY_DUPLICATED`). So:

- `check_session` runs before the gateway connects. A file SQLite cannot read as a database is
  renamed `<name>.corrupt-<YYYYmmddTHHMMSS>` (with its `-journal`, which SQLite would otherwise
  replay into the next database of that name) and the gateway stops with a line saying to run
  `gateway login`. A file we merely cannot read (permissions) or that another process holds is
  left alone: it is probably fine.
- `login_command` writes the file with mode 0600 in a folder created 0700, before Telethon ever
  opens it, so there is no moment when the key is readable by others.
- `backup_session_command` copies with SQLite's online backup API (consistent even while the
  gateway writes), into a temp name first so a half-written copy never looks like a backup.
"""

from __future__ import annotations

import asyncio
import getpass
import os
import sqlite3
import sys
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ts_runtime.settings import env_str

from .settings import SESSION_EXTENSION, GatewaySettings, TelegramSettings

_TIMESTAMP = "%Y%m%dT%H%M%S"
# The tables Telethon's SQLiteSession creates; `sessions` holds the auth key.
_REQUIRED_TABLES = {"version", "sessions", "entities"}
# How long to wait for a writer's lock (the running gateway commits its session now and then).
_LOCK_TIMEOUT = 5.0


class SessionError(Exception):
    """The session cannot be used; the message says what to do (usually `gateway login`)."""


def _timestamp(now: datetime | None = None) -> str:
    return (now or datetime.now(timezone.utc)).strftime(_TIMESTAMP)


def _login_hint() -> str:
    return "run `uv run gateway login` (or `gateway login` where it is installed)"


# -- check -------------------------------------------------------------------------------------

def check_string_session(value: str) -> None:
    """Raise SessionError unless `value` decodes as a Telethon StringSession holding an auth key."""
    from telethon.sessions import StringSession

    try:
        session = StringSession(value.strip())
    except Exception as exc:  # noqa: BLE001 - ValueError, binascii.Error, struct.error: all "not a session"
        raise SessionError(
            f"TELEGRAM_SESSION is not a valid Telethon string session ({type(exc).__name__}); "
            f"unset it and {_login_hint()}, or paste the full string again") from None
    if session.auth_key is None:
        raise SessionError(f"TELEGRAM_SESSION holds no authorization key; unset it and {_login_hint()}")


def _quarantine(path: Path) -> Path:
    target = path.with_name(f"{path.name}.corrupt-{_timestamp()}")
    n = 1
    while target.exists():
        target = path.with_name(f"{path.name}.corrupt-{_timestamp()}-{n}")
        n += 1
    os.replace(path, target)
    journal = path.with_name(path.name + "-journal")
    if journal.exists():
        os.replace(journal, target.with_name(target.name + "-journal"))
    return target


def _inspect_file(path: Path) -> bool:
    """True if the file is a healthy Telethon session with an auth key; False if it has no key.
    Raises sqlite3.DatabaseError when SQLite cannot read it as a database."""
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=_LOCK_TIMEOUT)
    try:
        verdict = conn.execute("pragma quick_check").fetchone()
        if not verdict or verdict[0] != "ok":
            raise sqlite3.DatabaseError(f"quick_check: {verdict[0] if verdict else 'no answer'}")
        tables = {row[0] for row in conn.execute("select name from sqlite_master where type = 'table'")}
        if not _REQUIRED_TABLES <= tables:
            raise sqlite3.DatabaseError(f"not a Telethon session (tables: {sorted(tables) or 'none'})")
        row = conn.execute("select auth_key from sessions").fetchone()
        return bool(row and row[0])
    finally:
        conn.close()


def check_session(settings: TelegramSettings) -> None:
    """Raise SessionError (with what to do) unless the configured session looks usable.

    A string session (TELEGRAM_SESSION) wins over the file, as in TelethonSource.
    """
    if settings.string_session:
        check_string_session(settings.string_session)
        return
    path = settings.session_file
    if not path.exists():
        raise SessionError(f"no Telegram session at {path}: {_login_hint()} to create it "
                           "(or set TELEGRAM_SESSION to a string session)")
    if not os.access(path, os.R_OK):
        raise SessionError(f"cannot read the Telegram session {path} (permissions): "
                           "run the gateway as the file's owner, or fix its owner/mode (0600)")
    if path.stat().st_size == 0:
        raise SessionError(f"the Telegram session {path} is empty (an interrupted login?): {_login_hint()}")
    try:
        has_key = _inspect_file(path)
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc):
            raise SessionError(f"the Telegram session {path} is locked by another process: "
                               "only one gateway may use a session (stop the other one)") from None
        renamed = _quarantine(path)
        raise SessionError(f"the Telegram session {path} is unreadable ({exc}); moved it to {renamed}: "
                           f"{_login_hint()}") from None
    except sqlite3.DatabaseError as exc:
        renamed = _quarantine(path)
        raise SessionError(f"the Telegram session {path} is corrupt ({exc}); moved it to {renamed}: "
                           f"{_login_hint()}") from None
    if not has_key:
        raise SessionError(f"the Telegram session {path} holds no authorization key (login never "
                           f"finished, or logged out): {_login_hint()}")


# -- login -------------------------------------------------------------------------------------

ClientFactory = Callable[[Any, TelegramSettings], Any]


def _default_login_client(session: Any, settings: TelegramSettings) -> Any:
    from telethon import TelegramClient

    return TelegramClient(session, settings.api_id, settings.api_hash, device_model="tradingsystem-gateway",
                          catch_up=False, receive_updates=False)


def _prepare_private_file(path: Path) -> None:
    """Create the session folder 0700 (when missing) and the file 0600 before SQLite opens it."""
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True)
        os.chmod(path.parent, 0o700)  # mkdir's mode is filtered by the umask
    fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
    os.close(fd)
    os.chmod(path, 0o600)


async def _login(settings: TelegramSettings, path: Path, client_factory: ClientFactory) -> str:
    client = client_factory(str(path), settings)
    try:
        await client.start(
            phone=(lambda: settings.phone) if settings.phone else (lambda: input("Phone number (international format): ")),
            code_callback=lambda: input("Login code Telegram sent you: "),
            password=lambda: getpass.getpass("Two-step verification password: "),
        )
        me = await client.get_me()
    finally:
        await client.disconnect()
    if me is None:
        return "unknown account"
    name = " ".join(filter(None, [getattr(me, "first_name", None), getattr(me, "last_name", None)]))
    username = getattr(me, "username", None)
    return f"{name or me.id}" + (f" (@{username})" if username else "")


def login_command(settings: GatewaySettings, *, client_factory: ClientFactory | None = None) -> int:
    """`gateway login`: interactive phone / code / 2FA; writes the session file (0600)."""
    tg = settings.telegram
    missing = [name for name, value in (("TELEGRAM_API_ID", tg.api_id), ("TELEGRAM_API_HASH", tg.api_hash)) if not value]
    if missing:
        print(f"gateway login: {' and '.join(missing)} missing (create them at https://my.telegram.org, then set "
              "them in the environment or services/gateway/.env)", file=sys.stderr)
        return 2
    path = tg.session_file
    if path.exists() and path.stat().st_size > 0:
        try:
            check_session(TelegramSettings(session_path=path))
            print(f"{path} already holds a session: checking it is still authorized")
        except SessionError as exc:
            # A corrupt file was moved aside by check_session; one without a key is reused.
            print(f"{exc}", file=sys.stderr)
    try:
        _prepare_private_file(path)
    except OSError as exc:
        print(f"gateway login: cannot create {path}: {exc}", file=sys.stderr)
        return 1
    try:
        who = asyncio.run(_login(tg, path, client_factory or _default_login_client))
    except (KeyboardInterrupt, EOFError):
        print("\ngateway login: interrupted; run it again to finish", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"gateway login: cannot reach Telegram ({exc})", file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - Telethon's RPC errors (bad code, bad password, banned number…)
        print(f"gateway login: Telegram refused the login: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    os.chmod(path, 0o600)  # in case the file was replaced while Telethon held it
    print(f"Logged in as {who}. Session written to {path.resolve()} (mode 0600).")
    if tg.string_session:
        print("Note: TELEGRAM_SESSION is set and takes precedence over this file; unset it to use the file.")
    return 0


# -- backup ------------------------------------------------------------------------------------

def backup_dir(settings: GatewaySettings) -> Path:
    """Where backups go: SESSION_BACKUP_DIR (the systemd timer sets it), else <data dir>/session-backups."""
    explicit = getattr(settings.telegram, "session_backup_dir", None) or env_str("SESSION_BACKUP_DIR")
    return Path(explicit) if explicit else Path(settings.queue.data_dir) / "session-backups"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def backup_session(source: Path, folder: Path, *, now: datetime | None = None) -> Path:
    """Copy `source` consistently into `folder` as `<stem>-<timestamp>.session` (0600); return it."""
    if not source.is_file():
        raise SessionError(f"no Telegram session file at {source} to back up")
    if not folder.exists():
        folder.mkdir(mode=0o700, parents=True)
        os.chmod(folder, 0o700)
    stem = source.name[: -len(SESSION_EXTENSION)] if source.name.endswith(SESSION_EXTENSION) else source.name
    stamp = _timestamp(now)
    target = folder / f"{stem}-{stamp}{SESSION_EXTENSION}"
    n = 1
    while target.exists():
        target = folder / f"{stem}-{stamp}-{n}{SESSION_EXTENSION}"
        n += 1
    tmp = folder / f".{target.name}.tmp"
    tmp.unlink(missing_ok=True)
    os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    src = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True, timeout=2 * _LOCK_TIMEOUT)
    try:
        dst = sqlite3.connect(tmp)
        try:
            # One step (pages=-1): the copy is a snapshot of one committed state.
            src.backup(dst)
            verdict = dst.execute("pragma integrity_check").fetchone()
            if not verdict or verdict[0] != "ok":
                raise sqlite3.DatabaseError(f"the copy failed its integrity check: {verdict}")
        finally:
            dst.close()
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        src.close()
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.chmod(tmp, 0o600)
    os.replace(tmp, target)
    _fsync_dir(folder)
    return target


def prune_backups(folder: Path, stem: str, keep: int) -> list[Path]:
    """Delete all but the `keep` newest `<stem>-*.session` backups; return the deleted paths."""
    backups = sorted(p for p in folder.glob(f"{stem}-*{SESSION_EXTENSION}") if p.is_file())
    # Names carry a sortable UTC timestamp, so name order is age order (mtime can lie after a copy).
    doomed = backups[:-keep] if keep > 0 else backups
    for path in doomed:
        path.unlink()
    return doomed


def backup_session_command(settings: GatewaySettings, keep: int | None = None) -> int:
    """`gateway backup-session`: consistent copy of the session file, then prune old copies."""
    keep = settings.telegram.session_backups_kept if keep is None else keep
    if keep < 1:
        print(f"gateway backup-session: keep must be at least 1, got {keep}", file=sys.stderr)
        return 2
    source = settings.telegram.session_file
    if not source.is_file():
        hint = (" (TELEGRAM_SESSION is a string session: keep a copy of the env file instead)"
                if settings.telegram.string_session else f"; {_login_hint()} first")
        print(f"gateway backup-session: no session file at {source}{hint}", file=sys.stderr)
        return 1
    folder = backup_dir(settings)
    try:
        target = backup_session(source, folder)
    except (sqlite3.Error, OSError, SessionError) as exc:
        print(f"gateway backup-session: could not copy {source} to {folder}: {exc}", file=sys.stderr)
        return 1
    stem = source.name[: -len(SESSION_EXTENSION)]
    removed = prune_backups(folder, stem, keep)
    print(f"session backed up to {target}" + (f" (removed {len(removed)} older backup(s), kept {keep})" if removed else ""))
    return 0
