"""Run a Litestar app factory under granian (ASGI), the way both APIs start.

`uv run ingest-api` / `uv run workspace-api` call `serve()`; `--reload` restarts on source
changes (development and the compose dev containers).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .settings import env_int, env_str


def build_parser(prog: str, default_port: int, description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--host", default=env_str("HOST", "0.0.0.0"), help="bind address (HOST, default 0.0.0.0)")
    parser.add_argument("--port", type=int, default=env_int("PORT", default_port), help=f"port (PORT, default {default_port})")
    parser.add_argument("--workers", type=int, default=env_int("WEB_CONCURRENCY", 1), help="worker processes (WEB_CONCURRENCY)")
    parser.add_argument("--reload", action="store_true", help="restart on source changes (development)")
    return parser


def serve(factory_target: str, args: argparse.Namespace, reload_paths: list[Path] | None = None) -> None:
    """Serve `module:factory` with granian until stopped (SIGINT/SIGTERM stop it gracefully)."""
    from granian import Granian
    from granian.constants import Interfaces

    Granian(
        factory_target,
        address=args.host,
        port=args.port,
        interface=Interfaces.ASGI,
        factory=True,
        workers=args.workers,
        reload=args.reload,
        reload_paths=reload_paths,
        log_access=False,
    ).serve()
