"""`uv run workspace-api`: check the configuration, then serve the app under granian."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from ts_runtime.logs import setup_logging
from ts_runtime.serve import run_api

from .settings import Settings

# services/workspace-api/.env (copied from .env.example), as the gateway reads its own.
ENV_FILE = Path(__file__).resolve().parents[2] / ".env"


def check_config() -> Settings:
    """Read the settings in the launcher, before granian starts its workers: a ConfigError ends the
    command with one line, and the ignored DB_STRATEGY is warned about here, once (each worker's
    `create_app()` would log it again, one line per worker)."""
    settings = Settings.from_env()
    if settings.ignored_db_strategy is not None:
        setup_logging(settings.log.level, json=settings.log.json)
        logging.getLogger("workspace_api").warning(
            "DB_STRATEGY=%s is no longer supported; using PostgreSQL (import the old library.json "
            "once with `uv run workspace-import`)", settings.ignored_db_strategy,
            extra={"db_strategy": settings.ignored_db_strategy},
        )
    return settings


def main(argv: list[str] | None = None) -> int:
    return run_api("workspace-api", 3200, "Workspace API (items and categories)", "workspace_api.app:create_app", check_config, argv,
                   env_file=ENV_FILE)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
