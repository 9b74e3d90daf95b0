"""`uv run gen-token`: print a new shared secret (256 bits, hex).

The same value goes into the gateway's API_SECRET_TOKEN and the ingest API's GATEWAY_SECRET_TOKEN
(see docs/runbooks/token-rotation.md).
"""

from __future__ import annotations

import argparse
import secrets

TOKEN_BYTES = 32  # 256 bits -> 64 hex characters


def new_token() -> str:
    return secrets.token_hex(TOKEN_BYTES)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gen-token", description=__doc__.splitlines()[0])
    parser.parse_args(argv)
    print(new_token())
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
