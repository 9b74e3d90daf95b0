"""Run a Litestar app factory under granian (ASGI), the way both APIs start.

`uv run ingest-api` / `uv run workspace-api` call `serve()`; `--reload` restarts on source
changes (development and the compose dev containers). They listen on 127.0.0.1 unless HOST (or
--host) says otherwise: compose sets HOST=0.0.0.0 inside its containers, where the published port
is the boundary.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from .settings import ConfigError, env_int, env_str, apply_env_file


LOOPS = ("auto", "asyncio", "uvloop")
# granian's `auto` takes uvloop when it is installed (the ingest API declares it) and asyncio
# otherwise; bench/ingest_bench.py --matrix measures the choices (docs/ingest-api.md).
DEFAULT_LOOP = "auto"

# Loopback: anyone on the network must not read every raw message (and sender) by default.
DEFAULT_HOST = "127.0.0.1"


def build_parser(prog: str, default_port: int, description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--host", default=env_str("HOST", DEFAULT_HOST),
                        help=f"bind address (HOST, default {DEFAULT_HOST}: this machine only)")
    parser.add_argument("--port", type=int, default=env_int("PORT", default_port), help=f"port (PORT, default {default_port})")
    parser.add_argument("--workers", type=int, default=env_int("WEB_CONCURRENCY", 1), help="worker processes (WEB_CONCURRENCY)")
    parser.add_argument("--runtime-threads", type=int, default=env_int("WEB_RUNTIME_THREADS", 1),
                        help="granian I/O threads per worker (WEB_RUNTIME_THREADS, default 1)")
    parser.add_argument("--loop", choices=LOOPS, default=env_str("WEB_LOOP", DEFAULT_LOOP),
                        help=f"event loop (WEB_LOOP, default {DEFAULT_LOOP})")
    parser.add_argument("--task-impl", choices=("asyncio", "rust"), default=env_str("WEB_TASK_IMPL", "asyncio"),
                        help="granian's task implementation (WEB_TASK_IMPL, default asyncio)")
    parser.add_argument("--backpressure", type=int, default=env_int("WEB_BACKPRESSURE", 0) or None,
                        help="most requests a worker handles at once; more wait in the socket "
                             "(WEB_BACKPRESSURE, default granian's: the backlog divided by the workers)")
    parser.add_argument("--reload", action="store_true", help="restart on source changes (development)")
    return parser


def serve(factory_target: str, args: argparse.Namespace, reload_paths: list[Path] | None = None) -> None:
    """Serve `module:factory` with granian until stopped (SIGINT/SIGTERM stop it gracefully)."""
    from granian import Granian
    from granian.constants import Interfaces, Loops, TaskImpl

    Granian(
        factory_target,
        address=args.host,
        port=args.port,
        interface=Interfaces.ASGI,
        factory=True,
        workers=args.workers,
        runtime_threads=getattr(args, "runtime_threads", 1),
        loop=Loops(getattr(args, "loop", DEFAULT_LOOP)),
        task_impl=TaskImpl(getattr(args, "task_impl", "asyncio")),
        backpressure=getattr(args, "backpressure", None),
        reload=args.reload,
        reload_paths=reload_paths,
        log_access=False,
    ).serve()


def run_api(prog: str, default_port: int, description: str, factory_target: str,
            check_config: Callable[[], object], argv: list[str] | None = None,
            env_file: Path | None = None) -> int:
    """The whole `main()` of an API: read its `.env`, parse flags, check the configuration, serve;
    exit code 2 on bad config."""
    if env_file is not None and apply_env_file(env_file):
        # Before the flags: their defaults (PORT, HOST) come from the environment.
        print(f"{prog}: read {env_file} (variables already set in the environment win)", file=sys.stderr)
    args = build_parser(prog, default_port, description).parse_args(argv)
    try:
        # Fail here, once, with a readable message instead of in every granian worker.
        check_config()
    except ConfigError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    serve(factory_target, args)
    return 0
