"""Session check, login and backups on real Telethon session files (made by Telethon's own
SQLiteSession/StringSession with a made-up auth key; no Telegram involved)."""

from __future__ import annotations

import os
import re
import sqlite3
import stat
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st
from telethon.crypto import AuthKey
from telethon.sessions import SQLiteSession, StringSession

from gateway import session as session_mod
from gateway.session import (SessionError, backup_session, backup_session_command, check_session,
                             login_command, prune_backups)
from gateway.settings import GatewaySettings, QueueSettings, TelegramSettings

AUTH_KEY = bytes(range(256))


def make_session(path: Path, *, with_key: bool = True) -> Path:
    """A session file exactly as Telethon writes it."""
    s = SQLiteSession(str(path))
    s.set_dc(2, "149.154.167.51", 443)
    if with_key:
        s.auth_key = AuthKey(AUTH_KEY)
    s.save()
    s.close()
    return path


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def gw_settings(tmp_path: Path, **telegram: Any) -> GatewaySettings:
    tg = dict(session_path=tmp_path / "session" / "gateway.session")
    tg.update(telegram)
    return GatewaySettings(queue=QueueSettings(path=tmp_path / "q" / "failure-queue.jsonl", data_dir=tmp_path / "q"),
                           telegram=TelegramSettings(**tg))


# -- check_session ----------------------------------------------------------------------------

def test_valid_telethon_session_passes(tmp_path: Path) -> None:
    path = make_session(tmp_path / "gateway.session")
    check_session(TelegramSettings(session_path=path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gateway.session"]


def test_session_path_without_extension_means_the_file_telethon_opens(tmp_path: Path) -> None:
    make_session(tmp_path / "gateway")  # Telethon itself writes gateway.session
    settings = TelegramSettings(session_path=tmp_path / "gateway")
    assert settings.session_file == tmp_path / "gateway.session"
    assert settings.has_session  # the preflight of `gateway run` looks at the same file
    check_session(settings)


def test_missing_session_says_login_creates_it(tmp_path: Path) -> None:
    with pytest.raises(SessionError, match=r"no Telegram session at .*gateway\.session: run `uv run gateway login`"):
        check_session(TelegramSettings(session_path=tmp_path / "gateway.session"))


@pytest.mark.parametrize("damage", ["garbage", "truncated", "not-telethon"])
def test_corrupt_session_is_renamed_and_login_is_asked(tmp_path: Path, damage: str) -> None:
    path = make_session(tmp_path / "gateway.session")
    if damage == "garbage":
        path.write_bytes(b"this is not sqlite at all" * 100)
    elif damage == "truncated":
        data = path.read_bytes()
        path.write_bytes(data[:100] + b"\xff" * (len(data) - 100))
    else:
        path.unlink()
        with sqlite3.connect(path) as conn:
            conn.execute("create table notes (x)")
    (tmp_path / "gateway.session-journal").write_bytes(b"stale journal")
    with pytest.raises(SessionError) as info:
        check_session(TelegramSettings(session_path=path))
    assert "gateway login" in str(info.value)
    assert not path.exists()
    renamed = [p.name for p in tmp_path.iterdir()]
    corrupt = [n for n in renamed if re.fullmatch(r"gateway\.session\.corrupt-\d{8}T\d{6}", n)]
    assert len(corrupt) == 1 and corrupt[0] in str(info.value)
    # The journal moved with it: SQLite would otherwise replay it into the next gateway.session.
    assert corrupt[0] + "-journal" in renamed and "gateway.session-journal" not in renamed


def test_session_without_auth_key_is_kept_and_login_is_asked(tmp_path: Path) -> None:
    path = make_session(tmp_path / "gateway.session", with_key=False)
    with pytest.raises(SessionError, match="no authorization key.*gateway login"):
        check_session(TelegramSettings(session_path=path))
    assert path.exists()


def test_empty_file_from_an_interrupted_login_is_not_called_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "gateway.session"
    path.touch()
    with pytest.raises(SessionError, match="empty"):
        check_session(TelegramSettings(session_path=path))
    assert path.exists()


def test_session_locked_by_another_process_is_left_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(session_mod, "_LOCK_TIMEOUT", 0.1)
    path = make_session(tmp_path / "gateway.session")
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("begin exclusive")
    try:
        with pytest.raises(SessionError, match="locked by another process"):
            check_session(TelegramSettings(session_path=path))
    finally:
        holder.execute("rollback")
        holder.close()
    assert path.exists()
    check_session(TelegramSettings(session_path=path))


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_session_is_not_renamed(tmp_path: Path) -> None:
    path = make_session(tmp_path / "gateway.session")
    path.chmod(0)
    with pytest.raises(SessionError, match="permissions"):
        check_session(TelegramSettings(session_path=path))
    assert path.exists()


def test_string_session_validation() -> None:
    good = StringSession()
    good.set_dc(2, "149.154.167.51", 443)
    good.auth_key = AuthKey(AUTH_KEY)
    check_session(TelegramSettings(string_session=good.save()))
    for bad in ("1" + "A" * 10, "not a session", "2" + good.save()[1:]):
        with pytest.raises(SessionError, match="TELEGRAM_SESSION is not a valid Telethon string session"):
            check_session(TelegramSettings(string_session=bad))


def test_string_session_wins_over_a_missing_file(tmp_path: Path) -> None:
    good = StringSession()
    good.set_dc(2, "149.154.167.51", 443)
    good.auth_key = AuthKey(AUTH_KEY)
    check_session(TelegramSettings(string_session=good.save(), session_path=tmp_path / "absent.session"))


# -- login ------------------------------------------------------------------------------------

def test_login_without_api_credentials_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert login_command(gw_settings(tmp_path)) == 2
    err = capsys.readouterr().err
    assert "TELEGRAM_API_ID and TELEGRAM_API_HASH missing" in err and err.count("\n") == 1
    assert login_command(gw_settings(tmp_path, api_id=12345)) == 2
    assert "TELEGRAM_API_HASH missing" in capsys.readouterr().err
    assert not (tmp_path / "session").exists()


class _LoginClient:
    """Does what Telethon's client.start does to the file on success: a SQLiteSession with a key.
    (The phone / code / 2FA conversation itself needs Telegram and is not exercised here.)"""

    def __init__(self, session: str, settings: TelegramSettings) -> None:
        self.session = session
        self.prompts: dict[str, Any] = {}

    async def start(self, **prompts: Any) -> None:
        self.prompts = prompts
        make_session(Path(self.session))

    async def get_me(self) -> Any:
        class Me:
            id, first_name, last_name, username = 7, "Ana", None, "ana"
        return Me()

    async def disconnect(self) -> None:
        pass


def test_login_writes_a_private_session_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = gw_settings(tmp_path, api_id=12345, api_hash="abc", phone="+5511999999999")
    clients: list[_LoginClient] = []

    def factory(session: str, tg: TelegramSettings) -> _LoginClient:
        clients.append(_LoginClient(session, tg))
        return clients[-1]

    old = os.umask(0o022)  # a permissive umask must not leak into the session's modes
    try:
        assert login_command(settings, client_factory=factory) == 0
    finally:
        os.umask(old)
    path = tmp_path / "session" / "gateway.session"
    assert clients[0].session == str(path)
    assert clients[0].prompts["phone"]() == "+5511999999999"
    assert mode(path) == 0o600 and mode(path.parent) == 0o700
    assert str(path.resolve()) in capsys.readouterr().out
    check_session(settings.telegram)


def test_login_replaces_a_corrupt_session_after_moving_it_aside(tmp_path: Path) -> None:
    settings = gw_settings(tmp_path, api_id=12345, api_hash="abc")
    path = tmp_path / "session" / "gateway.session"
    path.parent.mkdir(mode=0o700)
    path.write_bytes(b"junk" * 1000)
    assert login_command(settings, client_factory=_LoginClient) == 0
    check_session(settings.telegram)
    assert any(p.name.startswith("gateway.session.corrupt-") for p in path.parent.iterdir())


# -- backups ----------------------------------------------------------------------------------

def test_backup_is_a_consistent_private_copy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = gw_settings(tmp_path)
    settings.telegram.session_path.parent.mkdir(parents=True)
    source = make_session(settings.telegram.session_path)
    # The gateway is mid-write: an uncommitted entity must not appear in the copy.
    writer = sqlite3.connect(source, isolation_level=None)
    writer.execute("begin immediate")
    writer.execute("insert into entities values (1, 2, 'half', NULL, NULL, 0)")
    try:
        assert backup_session_command(settings) == 0
    finally:
        writer.execute("rollback")
        writer.close()
    out = capsys.readouterr().out
    folder = tmp_path / "q" / "session-backups"
    (backup,) = folder.iterdir()
    assert re.fullmatch(r"gateway-\d{8}T\d{6}\.session", backup.name) and str(backup) in out
    assert mode(backup) == 0o600 and mode(folder) == 0o700
    with sqlite3.connect(backup) as conn:
        assert conn.execute("pragma integrity_check").fetchone() == ("ok",)
        assert conn.execute("select count(*) from entities where username = 'half'").fetchone() == (0,)
        assert conn.execute("select auth_key from sessions").fetchone() == (AUTH_KEY,)
    check_session(TelegramSettings(session_path=backup))  # a backup is a usable session


def test_backup_honours_session_backup_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = gw_settings(tmp_path)
    settings.telegram.session_path.parent.mkdir(parents=True)
    make_session(settings.telegram.session_path)
    monkeypatch.setenv("SESSION_BACKUP_DIR", str(tmp_path / "backups"))  # as the systemd timer sets it
    assert backup_session_command(settings) == 0
    assert len(list((tmp_path / "backups").glob("gateway-*.session"))) == 1


def test_backup_prunes_to_the_newest(tmp_path: Path) -> None:
    settings = gw_settings(tmp_path, session_backups_kept=3)
    settings.telegram.session_path.parent.mkdir(parents=True)
    source = make_session(settings.telegram.session_path)
    folder = tmp_path / "q" / "session-backups"
    old = [backup_session(source, folder, now=datetime(2025, 1, 1, tzinfo=timezone.utc) + timedelta(days=i))
           for i in range(6)]
    (folder / "unrelated.txt").write_text("kept")
    assert backup_session_command(settings) == 0
    left = sorted(p.name for p in folder.glob("gateway-*.session"))
    assert left[:2] == [old[4].name, old[5].name] and len(left) == 3
    assert (folder / "unrelated.txt").exists()
    assert backup_session_command(settings, keep=1) == 0
    assert len(list(folder.glob("gateway-*.session"))) == 1


def test_backup_without_session_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert backup_session_command(gw_settings(tmp_path)) == 1
    err = capsys.readouterr().err
    assert "no session file at" in err and "gateway login" in err and err.count("\n") == 1


@hsettings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(days=st.sets(st.integers(0, 3650), max_size=12), keep=st.integers(1, 8))
def test_pruning_keeps_exactly_the_newest(tmp_path_factory: pytest.TempPathFactory, days: set[int], keep: int) -> None:
    folder = tmp_path_factory.mktemp("prune")
    base = datetime(2020, 1, 1, tzinfo=timezone.utc)
    for day in days:
        (folder / f"gateway-{(base + timedelta(days=day)).strftime('%Y%m%dT%H%M%S')}.session").touch()
    removed = prune_backups(folder, "gateway", keep)
    left = sorted(p.name for p in folder.iterdir())
    expected = sorted(f"gateway-{(base + timedelta(days=d)).strftime('%Y%m%dT%H%M%S')}.session"
                      for d in sorted(days)[-keep:]) if days else []
    assert left == expected and len(removed) == max(len(days) - keep, 0)
