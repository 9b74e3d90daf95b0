"""`uv run validate-env`: check the three services' environment files before deploying.

One line per problem, exit status 1 when there is any:
- required variables are present (each service declares only its own secrets);
- shared tokens are at least 32 characters, and so is the optional read token API_READ_TOKEN;
- the gateway's API_SECRET_TOKEN equals the ingest API's GATEWAY_SECRET_TOKEN, and the ingest
  API's read token differs from it (the read token goes to dashboards, the other can delete);
- URLs parse (scheme and host), integers are integers, ports are ports, HOST is an address;
- LOG_HISTORY_SIZE and BODY_TIMEOUT_SECONDS are positive numbers.

By default it reads services/<name>/.env for all three services. Name files explicitly to check a
deployment (`--gateway /etc/tradingsystem/gateway.env`): then only the named services are checked,
and the token match only when both the gateway and the ingest API are among them.
"""

from __future__ import annotations

import argparse
import hmac
import os
import re
import sys
from pathlib import Path
from typing import Mapping
from urllib.parse import urlsplit

from dotenv import dotenv_values

from gateway import settings as gateway_settings
from ingest_api import settings as ingest_settings
from ts_runtime.envspec import HTTP_SCHEMES, EnvSpec
from ts_runtime.settings import MIN_TOKEN_LENGTH, redact
from workspace_api import settings as workspace_settings

Env = Mapping[str, str | None]

# A channel id (-1001649127710, or the bare 1649127710) or a Telegram username (5–32 chars).
CHANNEL = re.compile(r"-?\d+|@?[A-Za-z][A-Za-z0-9_]{3,31}")
LOG_LEVELS = {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}
# An address to listen on: IPv4, IPv6 or a host name.
HOST = re.compile(r"[0-9]{1,3}(\.[0-9]{1,3}){3}|\[?[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*\]?|[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?")
# Each service states its own environment beside the code that reads it (ENV_SPEC in its settings
# module); this command only applies the checks.
SERVICES: dict[str, EnvSpec] = {spec.name: spec for spec in (gateway_settings.ENV_SPEC, ingest_settings.ENV_SPEC,
                                                             workspace_settings.ENV_SPEC)}


def default_file(spec: EnvSpec, root: Path) -> Path:
    """services/<name>/.env, the file each service reads by default."""
    return root / "services" / spec.name / ".env"


def _value(env: Env, name: str) -> str | None:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return None
    return raw.strip()


def _url_problem(name: str, raw: str, schemes: tuple[str, ...]) -> str | None:
    try:
        parts = urlsplit(raw)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError as exc:
        return f"{name} is not a valid URL: {exc}"
    if parts.scheme not in schemes:
        return f"{name} must be a {' or '.join(s + '://' for s in schemes)} URL, got scheme {parts.scheme or '(none)'!r}"
    if not parts.hostname:
        return f"{name} has no host"
    return None


def _positive_number(raw: str) -> bool:
    try:
        return float(raw) > 0 and float(raw) != float("inf")
    except ValueError:
        return False


def check_service(spec: EnvSpec, env: Env) -> list[str]:
    """Problems in one service's environment, each prefixed with the service name; when the checks
    find none, whatever the service's own settings loader refuses."""
    problems: list[str] = []
    for name in spec.required:
        if _value(env, name) is None:
            problems.append(f"{name} is missing")
    if spec.needs_database and _value(env, "DATABASE_URL") is None and _value(env, "TIMESCALEDB_HOST") is None:
        problems.append("DATABASE_URL is missing (or set TIMESCALEDB_HOST and friends)")
    for name in spec.tokens:
        token = _value(env, name)
        if token is not None and len(token) < MIN_TOKEN_LENGTH:
            problems.append(
                f"{name} is {len(token)} characters; tokens need at least {MIN_TOKEN_LENGTH} (uv run gen-token makes one)"
            )
    for name, schemes in spec.urls.items():
        raw = _value(env, name)
        if raw is not None and (problem := _url_problem(name, raw, schemes)):
            problems.append(problem)
    for name in spec.ports:
        raw = _value(env, name)
        if raw is not None and not (raw.isdigit() and 1 <= int(raw) <= 65535):
            problems.append(f"{name} must be a port number (1-65535), got {raw!r}")
    for name in spec.hosts:
        raw = _value(env, name)
        if raw is not None and not HOST.fullmatch(raw):
            problems.append(f"{name} must be an IP address or host name to listen on (127.0.0.1, 0.0.0.0), got {raw!r}")
    for name in spec.non_negative:
        raw = _value(env, name)
        if raw is not None and not raw.isdigit():
            problems.append(f"{name} must be a non-negative integer, got {raw!r}")
    for name in spec.positive:
        raw = _value(env, name)
        if raw is not None and not (raw.isdigit() and int(raw) > 0):
            problems.append(f"{name} must be a positive integer, got {raw!r}")
    for name in spec.positive_numbers:
        raw = _value(env, name)
        if raw is not None and not _positive_number(raw):
            problems.append(f"{name} must be a positive number of seconds, got {raw!r}")
    for name in spec.channel_lists:
        raw = _value(env, name)
        for part in (raw or "").split(","):
            part = part.strip()
            if part and not CHANNEL.fullmatch(part):
                problems.append(f"{name} entries are channel ids (-100…) or usernames (@name or name), got {part!r}")
    cors = _value(env, "CORS_ORIGIN")
    if cors is not None and cors != "*":
        for origin in (o.strip() for o in cors.split(",") if o.strip()):
            if problem := _url_problem(f"CORS_ORIGIN entry {origin!r}", origin, HTTP_SCHEMES):
                problems.append(problem)
    level = _value(env, "LOG_LEVEL")
    if level is not None and level.upper() not in LOG_LEVELS:
        problems.append(f"LOG_LEVEL must be one of {', '.join(sorted(LOG_LEVELS))}, got {level!r}")
    if not problems and (refused := spec.load_problem(env)):
        problems.append(refused)
    return [f"{spec.name}: {problem}" for problem in problems]


def check_shared_token(gateway: Env, ingest: Env) -> list[str]:
    """The gateway authenticates to the ingest API with the same secret on both sides."""
    sent = _value(gateway, "API_SECRET_TOKEN")
    expected = _value(ingest, "GATEWAY_SECRET_TOKEN")
    if sent is None or expected is None:
        return []  # already reported as missing
    if hmac.compare_digest(sent.encode(), expected.encode()):
        return []
    return [
        f"gateway: API_SECRET_TOKEN ({redact(sent)}) does not match ingest-api's GATEWAY_SECRET_TOKEN "
        f"({redact(expected)}); the ingest API will answer 401"
    ]


def check_read_token(ingest: Env) -> list[str]:
    """The read token is handed to dashboards; the gateway token can also delete signals."""
    read, gateway = _value(ingest, "API_READ_TOKEN"), _value(ingest, "GATEWAY_SECRET_TOKEN")
    if read is None or gateway is None or not hmac.compare_digest(read.encode(), gateway.encode()):
        return []
    return [f"ingest-api: API_READ_TOKEN ({redact(read)}) equals GATEWAY_SECRET_TOKEN; use a token of its own "
            "(uv run gen-token): the read token goes to dashboards, the gateway token can delete signals"]


def check_all(envs: Mapping[str, Env]) -> list[str]:
    """Problems across the given services (keys: gateway, ingest-api, workspace-api)."""
    problems: list[str] = []
    for name, env in envs.items():
        problems.extend(check_service(SERVICES[name], env))
    if "gateway" in envs and "ingest-api" in envs:
        problems.extend(check_shared_token(envs["gateway"], envs["ingest-api"]))
    if "ingest-api" in envs:
        problems.extend(check_read_token(envs["ingest-api"]))
    return problems


def load_env_file(path: Path) -> dict[str, str | None]:
    return dict(dotenv_values(path))


def repo_root() -> Path:
    """The checkout this package runs from (editable install), else the current folder."""
    candidate = Path(__file__).resolve().parents[3]
    return candidate if (candidate / "services").is_dir() else Path.cwd()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="validate-env",
        description="Check the services' environment files; one line per problem.",
    )
    for spec in SERVICES.values():
        parser.add_argument(f"--{spec.name}", type=Path, metavar="FILE", help=f"{spec.name} env file")
    parser.add_argument(
        "--from-environment",
        choices=sorted(SERVICES),
        action="append",
        default=[],
        metavar="SERVICE",
        help="check this process's environment as SERVICE's (inside a container); repeatable",
    )
    parser.add_argument("--root", type=Path, default=None, help="checkout whose services/*/.env are read by default")
    args = parser.parse_args(argv)

    explicit = {name: getattr(args, name.replace("-", "_")) for name in SERVICES}
    chosen = {name: path for name, path in explicit.items() if path is not None}
    if not chosen and not args.from_environment:
        root = args.root or repo_root()
        chosen = {name: default_file(spec, root) for name, spec in SERVICES.items()}

    envs: dict[str, Env] = {}
    problems: list[str] = []
    for name, path in chosen.items():
        if not path.is_file():
            problems.append(f"{name}: {path} not found (copy {path.name}.example next to it and fill it in)")
            continue
        envs[name] = load_env_file(path)
    for name in args.from_environment:
        envs[name] = dict(os.environ)
    problems.extend(check_all(envs))

    for problem in problems:
        print(problem)
    if problems:
        return 1
    print(f"validate-env: {', '.join(envs)} OK")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
