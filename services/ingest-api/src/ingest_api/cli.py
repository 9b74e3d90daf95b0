"""`uv run ingest-api`: check the configuration, then serve the app under granian.

`uv run ingest-api reparse [--channel ID] [--since DATE] [--dry-run]` re-derives signals, events
and statuses from the stored messages with the current parser (ingest/reparse.py).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import datetime, timezone
from pathlib import Path

from ts_runtime.serve import run_api
from ts_runtime.settings import ConfigError, DatabaseSettings, apply_env_file, describe_url

from .settings import Settings

# services/ingest-api/.env (copied from .env.example), as the gateway reads its own.
ENV_FILE = Path(__file__).resolve().parents[2] / ".env"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["reparse"]:
        return reparse_main(argv[1:])
    return run_api("ingest-api", 4005, _DESCRIPTION, "ingest_api.app:create_app", Settings.from_env, argv,
                   env_file=ENV_FILE)


_DESCRIPTION = ("TP Capital ingest API (serves on granian). Also: `ingest-api reparse [--channel ID] [--since DATE] "
                "[--dry-run]` re-derives signals, events and statuses from the stored messages (see "
                "`ingest-api reparse --help`).")


def _since(raw: str) -> datetime:
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"cannot read {raw!r} as an ISO 8601 date (2025-10-01 or 2025-10-01T12:00Z)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _reparse_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ingest-api reparse",
        description="Re-derive every signal, event and status from the stored messages and revisions with the "
                    "current parser. Idempotent (a second run changes nothing), batched, safe while the API runs; "
                    "deleted messages stay deleted.")
    parser.add_argument("--channel", type=int, help="only this channel id (e.g. -1001649127710)")
    parser.add_argument("--since", type=_since, help="only messages dated at or after this (ISO 8601; UTC without a zone)")
    parser.add_argument("--dry-run", action="store_true", help="report what would change and change nothing")
    parser.add_argument("--batch-size", type=int, default=500, help="messages per transaction (default 500)")
    parser.add_argument("--database-url", help="PostgreSQL URL (default: DATABASE_URL or the TIMESCALEDB_* variables)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def reparse_main(argv: list[str]) -> int:
    args = _reparse_parser().parse_args(argv)
    apply_env_file(ENV_FILE)
    try:
        url = args.database_url or DatabaseSettings.from_env().url
    except ConfigError as exc:
        print(f"ingest-api reparse: {exc}", file=sys.stderr)
        return 2
    if args.batch_size < 1:
        print("ingest-api reparse: --batch-size must be at least 1", file=sys.stderr)
        return 2
    try:
        return asyncio.run(_reparse(url, args))
    except (OSError, ConnectionError) as exc:
        print(f"ingest-api reparse: cannot reach the database at {describe_url(url)}: {exc}", file=sys.stderr)
        return 1


async def _reparse(url: str, args: argparse.Namespace) -> int:
    import asyncpg
    from tqdm import tqdm

    from .ingest.reparse import reparse

    conn = await asyncpg.connect(url, timeout=10)
    try:
        bar = tqdm(desc="reparse", unit="msg", disable=True if args.no_progress else None, file=sys.stderr)

        def on_total(total: int) -> None:
            bar.reset(total=total)

        try:
            summary = await reparse(conn, channel_id=args.channel, since=args.since, dry_run=args.dry_run,
                                    batch_size=args.batch_size, on_total=on_total, advance=bar.update)
        finally:
            bar.close()
    except asyncpg.PostgresError as exc:
        print(f"ingest-api reparse: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        await conn.close()
    print(summary.report(args.dry_run))
    if args.dry_run:
        print("dry run: nothing was changed")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
