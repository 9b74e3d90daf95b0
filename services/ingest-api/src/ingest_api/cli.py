"""`uv run ingest-api`: check the configuration, then serve the app under granian."""

from __future__ import annotations

import sys
from pathlib import Path

from ts_common.serve import run_api

from .settings import Settings

# services/ingest-api/.env (copied from .env.example), as the gateway reads its own.
ENV_FILE = Path(__file__).resolve().parents[2] / ".env"


def main(argv: list[str] | None = None) -> int:
    return run_api("ingest-api", 4005, "TP Capital ingest API", "ingest_api.app:create_app", Settings.from_env, argv,
                   env_file=ENV_FILE)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
