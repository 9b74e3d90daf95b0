"""`uv run workspace-api`: check the configuration, then serve the app under granian."""

from __future__ import annotations

import sys

from ts_common.serve import build_parser, serve
from ts_common.settings import ConfigError

from .settings import Settings


def main(argv: list[str] | None = None) -> int:
    parser = build_parser("workspace-api", 3200, "Workspace API (items and categories)")
    args = parser.parse_args(argv)
    try:
        # Fail here, once, with a readable message instead of in every granian worker.
        Settings.from_env()
    except ConfigError as exc:
        print(f"workspace-api: {exc}", file=sys.stderr)
        return 2
    serve("workspace_api.app:create_app", args)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
