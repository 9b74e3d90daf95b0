"""`gateway` command line: run (default), login, backup-session, import, replay, requeue, status.

Each subcommand names its handler (`set_defaults(func=…)`); `main` loads the settings once, sets up
logging and the secrets to mask, and calls it. Exit statuses: gateway/exits.py (docs/gateway.md).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ts_runtime.settings import ConfigError, env_str

from . import compose
from .exits import PROG, fail
from .settings import GatewaySettings, load_dotenv_file


def _setup_logging(settings: GatewaySettings, *, interactive: bool) -> None:
    from ts_runtime.logs import setup_logging

    # The service logs JSON lines (journald); the one-shot commands talk to a person.
    fmt = (env_str("LOG_FORMAT") or ("text" if interactive else "json")).lower()
    level = settings.log_level
    if interactive and level.upper() == "INFO":
        level = "WARNING"  # the progress bar and the summary say what happened
    setup_logging(level, json=fmt == "json")


def register_secrets(settings: GatewaySettings) -> None:
    """Mask the gateway's secrets (beyond their first 8 characters) in its log lines and /logs,
    as the APIs do with theirs: the API token, the Telegram API hash, a string session."""
    from ts_runtime.logs import register_secret

    for secret in (settings.publish.token, settings.telegram.api_hash, settings.telegram.string_session):
        register_secret(secret)


# -- the handlers: (settings, parsed arguments) → exit status --------------------------------------


def run(settings: GatewaySettings, args: argparse.Namespace) -> int:
    from .run import cmd_run

    return cmd_run(settings)


def login(settings: GatewaySettings, args: argparse.Namespace) -> int:
    from .session import login_command

    return login_command(settings)


def backup_session(settings: GatewaySettings, args: argparse.Namespace) -> int:
    from .session import backup_session_command

    return backup_session_command(settings, args.keep)


def import_export(settings: GatewaySettings, args: argparse.Namespace) -> int:
    from .delivery import cmd_import

    return cmd_import(settings, args.export, args.progress)


def replay(settings: GatewaySettings, args: argparse.Namespace) -> int:
    from .delivery import cmd_replay

    return cmd_replay(settings, args.progress)


def requeue(settings: GatewaySettings, args: argparse.Namespace) -> int:
    from .delivery import cmd_requeue

    return cmd_requeue(settings, args.payloads, args.progress)


def status(settings: GatewaySettings, args: argparse.Namespace) -> int:
    """Read-only: the queue files, the cursors and the last status file (safe while a gateway runs)."""
    from .status import render_status, status_report

    report = status_report(settings.queue.path, compose.make_cursors(settings), settings.queue.data_dir)
    if args.json:
        import msgspec

        print(msgspec.json.encode(report).decode())
    else:
        print(render_status(report))
    return 0


# -- entry point ---------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Telegram gateway: channel messages → durable queue → ingest API (port 4006)")
    parser.set_defaults(func=run, interactive=False)  # no subcommand: `run`
    commands = parser.add_subparsers(dest="command", metavar="command")
    commands.add_parser(
        "run", help="listen and publish (the default): Telegram, or GATEWAY_SOURCE=file:…").set_defaults(func=run)
    commands.add_parser(
        "login", help="interactive Telegram login; writes the session file (TELEGRAM_SESSION_PATH)",
    ).set_defaults(func=login, interactive=True)
    backup = commands.add_parser("backup-session", help="consistent timestamped copy of the session file, old ones pruned")
    backup.add_argument("--keep", type=int, default=None, help="backups to keep (SESSION_BACKUPS_KEPT, default 7)")
    backup.set_defaults(func=backup_session, interactive=True)
    importer = commands.add_parser("import", help="backfill from a Telegram Desktop export (result.json)")
    importer.add_argument("export", type=Path, help="path to the export's result.json")
    importer.set_defaults(func=import_export, interactive=True)
    replayer = commands.add_parser("replay", help="deliver the queue now through /ingest/batch")
    replayer.set_defaults(func=replay, interactive=True)
    requeuer = commands.add_parser(
        "requeue", help="queue and deliver reviewed payloads (JSONL, one payload a line): recovered quarantined "
                        "lines, dead letters after a fix")
    requeuer.add_argument("payloads", type=Path, help="JSONL file of contract payloads")
    requeuer.set_defaults(func=requeue, interactive=True)
    status_parser = commands.add_parser("status", help="queue depth, dead letters, cursors, last error (read-only)")
    status_parser.add_argument("--json", action="store_true", help="print one JSON object")
    status_parser.set_defaults(func=status, interactive=True)
    for sub in (importer, replayer, requeuer):
        sub.add_argument("--progress", dest="progress", action="store_true", default=None,
                         help="always show the progress bar (default: only on a terminal)")
        sub.add_argument("--no-progress", dest="progress", action="store_false")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        load_dotenv_file()
        settings = GatewaySettings.from_env()
    except ConfigError as exc:
        return fail(str(exc), 2)
    _setup_logging(settings, interactive=args.interactive)
    register_secrets(settings)
    compose.instrument()
    return args.func(settings, args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
