"""validate-env: matching, mismatched, short and missing tokens; URLs; the CLI's exit status."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ts_ops import envcheck
from ts_ops.tokens import new_token
from ts_runtime.settings import MIN_TOKEN_LENGTH

REPO = Path(__file__).resolve().parents[2]
TOKEN = "a" * 8 + "b" * 56


def write_envs(root: Path, gateway: dict[str, str], ingest: dict[str, str], workspace: dict[str, str]) -> Path:
    for folder, values in (("gateway", gateway), ("ingest-api", ingest), ("workspace-api", workspace)):
        path = root / "services" / folder / ".env"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(f"{key}={value}\n" for key, value in values.items()))
    return root


def good_gateway(token: str = TOKEN) -> dict[str, str]:
    return {
        "TELEGRAM_API_ID": "123456",
        "TELEGRAM_API_HASH": "0123456789abcdef0123456789abcdef",
        "TELEGRAM_CHANNELS": "-1001649127710",
        "API_ENDPOINT": "http://localhost:4005/ingest",
        "API_SECRET_TOKEN": token,
        "GATEWAY_PORT": "4006",
    }


def good_ingest(token: str = TOKEN) -> dict[str, str]:
    return {
        "DATABASE_URL": "postgresql://postgres:secret@localhost:5433/tradingsystem",
        "GATEWAY_SECRET_TOKEN": token,
        "CORS_ORIGIN": "http://localhost:3103",
    }


def good_workspace() -> dict[str, str]:
    return {"DATABASE_URL": "postgresql://postgres@localhost:5433/tradingsystem", "CORS_ORIGIN": "*"}


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ts_ops.envcheck", *args], capture_output=True, text=True, timeout=60
    )


def test_channels_may_be_ids_or_usernames(tmp_path: Path) -> None:
    gateway = good_gateway() | {"TELEGRAM_CHANNELS": "-1001649127710, @tp_capital_sinais, tpcapital, 1649127710"}
    root = write_envs(tmp_path, gateway, good_ingest(), good_workspace())
    result = run_cli("--root", str(root))
    assert result.returncode == 0, result.stdout + result.stderr


def test_matching_tokens_pass(tmp_path: Path) -> None:
    root = write_envs(tmp_path, good_gateway(), good_ingest(), good_workspace())
    result = run_cli("--root", str(root))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "gateway, ingest-api, workspace-api OK" in result.stdout


def test_mismatched_tokens_fail_with_one_line_and_no_secret(tmp_path: Path) -> None:
    other = "c" * 64
    root = write_envs(tmp_path, good_gateway(), good_ingest(other), good_workspace())
    result = run_cli("--root", str(root))
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert len(lines) == 1, lines
    assert "does not match" in lines[0] and "GATEWAY_SECRET_TOKEN" in lines[0]
    # Secrets are never shown beyond their first 8 characters.
    assert TOKEN not in result.stdout and other not in result.stdout
    assert TOKEN[:9] not in result.stdout and other[:9] not in result.stdout


def test_short_token_is_reported_on_both_sides(tmp_path: Path) -> None:
    short = "x" * (MIN_TOKEN_LENGTH - 1)
    root = write_envs(tmp_path, good_gateway(short), good_ingest(short), good_workspace())
    result = run_cli("--root", str(root))
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        f"gateway: API_SECRET_TOKEN is {MIN_TOKEN_LENGTH - 1} characters; tokens need at least 32 (uv run gen-token makes one)",
        f"ingest-api: GATEWAY_SECRET_TOKEN is {MIN_TOKEN_LENGTH - 1} characters; tokens need at least 32 (uv run gen-token makes one)",
    ]


def test_missing_variables_and_files(tmp_path: Path) -> None:
    gateway = good_gateway()
    del gateway["TELEGRAM_API_HASH"]
    gateway["TELEGRAM_CHANNELS"] = ""  # the gateway refuses to run without a channel
    ingest = good_ingest()
    ingest["GATEWAY_SECRET_TOKEN"] = ""
    del ingest["DATABASE_URL"]
    root = write_envs(tmp_path, gateway, ingest, good_workspace())
    (root / "services" / "workspace-api" / ".env").unlink()
    result = run_cli("--root", str(root))
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert "gateway: TELEGRAM_API_HASH is missing" in lines
    assert "gateway: TELEGRAM_CHANNELS is missing" in lines
    assert "ingest-api: GATEWAY_SECRET_TOKEN is missing" in lines
    assert "ingest-api: DATABASE_URL is missing (or set TIMESCALEDB_HOST and friends)" in lines
    assert any(line.startswith("workspace-api: ") and "not found" in line for line in lines)
    assert len(lines) == 5, lines


def test_bad_urls_ports_and_channels(tmp_path: Path) -> None:
    gateway = good_gateway() | {"API_ENDPOINT": "localhost:4005/ingest", "GATEWAY_PORT": "70000", "TELEGRAM_CHANNELS": "-100,tp,@tpcapital"}
    ingest = good_ingest() | {"DATABASE_URL": "mysql://db/x", "CORS_ORIGIN": "http://ok.example, not a url"}
    workspace = good_workspace() | {"DATABASE_URL": "postgresql://host:notaport/db"}
    root = write_envs(tmp_path, gateway, ingest, workspace)
    result = run_cli("--root", str(root))
    assert result.returncode == 1
    text = result.stdout
    assert "gateway: API_ENDPOINT must be a http:// or https:// URL" in text
    assert "gateway: GATEWAY_PORT must be a port number (1-65535), got '70000'" in text
    assert "gateway: TELEGRAM_CHANNELS entries are channel ids (-100…) or usernames (@name or name), got 'tp'" in text
    assert "ingest-api: DATABASE_URL must be a postgresql:// or postgres:// URL, got scheme 'mysql'" in text
    assert "ingest-api: CORS_ORIGIN entry 'not a url'" in text
    assert "workspace-api: DATABASE_URL is not a valid URL" in text
    assert len(text.splitlines()) == 6, text


def test_explicit_file_checks_only_that_service(tmp_path: Path) -> None:
    path = tmp_path / "gateway.env"
    path.write_text("".join(f"{k}={v}\n" for k, v in good_gateway().items()))
    result = run_cli("--gateway", str(path))
    assert result.returncode == 0, result.stdout
    assert result.stdout.strip() == "validate-env: gateway OK"


def test_from_environment_reads_this_process(monkeypatch) -> None:
    monkeypatch.setenv("GATEWAY_SECRET_TOKEN", "short")
    monkeypatch.setenv("DATABASE_URL", "postgresql://postgres@db:5432/x")
    assert envcheck.main(["--from-environment", "ingest-api"]) == 1


def test_examples_name_only_known_variables_and_hold_no_secret() -> None:
    """The shipped .env.example files parse, hold blank secrets, and keep each service's own secrets."""
    gateway = envcheck.load_env_file(REPO / "services/gateway/.env.example")
    ingest = envcheck.load_env_file(REPO / "services/ingest-api/.env.example")
    workspace = envcheck.load_env_file(REPO / "services/workspace-api/.env.example")
    assert gateway["API_SECRET_TOKEN"] == "" and "GATEWAY_SECRET_TOKEN" not in gateway
    assert ingest["GATEWAY_SECRET_TOKEN"] == "" and "API_SECRET_TOKEN" not in ingest
    # The workspace API holds no shared secret, only the optional read token (blank: reads open).
    assert [key for key in workspace if "TOKEN" in key or "TELEGRAM" in key] == ["API_READ_TOKEN"]
    assert workspace["API_READ_TOKEN"] == "" and ingest["API_READ_TOKEN"] == ""
    assert ingest["HOST"] == workspace["HOST"] == gateway["GATEWAY_HOST"] == "127.0.0.1"
    assert "TELEGRAM_API_HASH" not in ingest
    # Filled in with a generated token, the examples pass (apart from Telegram's own credentials).
    token = new_token()
    problems = envcheck.check_all(
        {
            "gateway": gateway | {"API_SECRET_TOKEN": token, "TELEGRAM_API_ID": "1", "TELEGRAM_API_HASH": "f" * 32},
            "ingest-api": ingest | {"GATEWAY_SECRET_TOKEN": token},
            "workspace-api": workspace,
        }
    )
    assert problems == []


def test_gen_token_prints_256_bit_hex() -> None:
    result = subprocess.run([sys.executable, "-m", "ts_ops.tokens"], capture_output=True, text=True, timeout=30)
    token = result.stdout.strip()
    assert result.returncode == 0
    assert re.fullmatch(r"[0-9a-f]{64}", token)
    assert new_token() != new_token()


@given(st.text(min_size=0, max_size=80).filter(lambda s: s.strip() == s and "\n" not in s))
def test_token_length_rule_property(token: str) -> None:
    problems = envcheck.check_service(envcheck.SERVICES["ingest-api"], {"GATEWAY_SECRET_TOKEN": token, "DATABASE_URL": "postgresql://h/d"})
    if token == "":
        assert problems == ["ingest-api: GATEWAY_SECRET_TOKEN is missing"]
    elif len(token) < MIN_TOKEN_LENGTH:
        assert len(problems) == 1 and "at least 32" in problems[0]
    elif "\x00" in token:
        # Only a .env file can hold one; it is named (os.environ could not even take it).
        assert problems == ["ingest-api: GATEWAY_SECRET_TOKEN contains a NUL character"]
    else:
        assert problems == []


READ_TOKEN_CASES = [
    # (service, values added to a good env, a phrase of the one expected problem or None)
    ("ingest-api", {"API_READ_TOKEN": "r" * 40}, None),
    ("ingest-api", {"API_READ_TOKEN": "short"}, "API_READ_TOKEN is 5 characters"),
    ("ingest-api", {"API_READ_TOKEN": TOKEN}, "API_READ_TOKEN (aaaaaaaa…) equals GATEWAY_SECRET_TOKEN"),
    ("workspace-api", {"API_READ_TOKEN": "r" * 40}, None),
    ("workspace-api", {"API_READ_TOKEN": "r" * 31}, "API_READ_TOKEN is 31 characters"),
    ("ingest-api", {"HOST": "0.0.0.0"}, None),
    ("workspace-api", {"HOST": "::1"}, None),
    ("ingest-api", {"HOST": "http://0.0.0.0"}, "HOST must be an IP address or host name"),
    ("gateway", {"GATEWAY_HOST": "172.17.0.1"}, None),
    ("gateway", {"GATEWAY_HOST": "every interface"}, "GATEWAY_HOST must be an IP address or host name"),
    ("ingest-api", {"BODY_TIMEOUT_SECONDS": "2.5"}, None),
    ("workspace-api", {"BODY_TIMEOUT_SECONDS": "0"}, "BODY_TIMEOUT_SECONDS must be a positive number"),
    ("ingest-api", {"BODY_TIMEOUT_SECONDS": "soon"}, "BODY_TIMEOUT_SECONDS must be a positive number"),
    ("gateway", {"LOG_HISTORY_SIZE": "500"}, None),
    ("workspace-api", {"LOG_HISTORY_SIZE": "0"}, "LOG_HISTORY_SIZE must be a positive integer"),
    ("ingest-api", {"LOG_HISTORY_SIZE": "lots"}, "LOG_HISTORY_SIZE must be a positive integer"),
]


@pytest.mark.parametrize(("service", "values", "problem"), READ_TOKEN_CASES,
                         ids=[f"{s}-{next(iter(v))}={next(iter(v.values()))[:12]}" for s, v, _ in READ_TOKEN_CASES])
def test_read_token_host_and_plumbing_settings(service: str, values: dict[str, str], problem: str | None) -> None:
    envs = {"gateway": good_gateway(), "ingest-api": good_ingest(), "workspace-api": good_workspace()}
    envs[service] = envs[service] | values
    problems = envcheck.check_all(envs)
    if problem is None:
        assert problems == []
    else:
        assert len(problems) == 1 and problems[0].startswith(f"{service}: ") and problem in problems[0], problems
        assert "r" * 9 not in problems[0] and TOKEN[:9] not in problems[0]  # never more than 8 characters


def test_the_specs_are_the_services_own() -> None:
    """validate-env restates no service's settings: it applies the spec each settings module exports."""
    from gateway import settings as gateway_settings
    from ingest_api import settings as ingest_settings
    from workspace_api import settings as workspace_settings

    assert envcheck.SERVICES == {"gateway": gateway_settings.ENV_SPEC, "ingest-api": ingest_settings.ENV_SPEC,
                                 "workspace-api": workspace_settings.ENV_SPEC}


def test_what_the_service_itself_refuses_is_reported(tmp_path: Path) -> None:
    """A value only the service's loader knows to refuse (the API's batch limit, a recovery limit of 0)
    is reported, so a drift between the checks and the settings cannot pass silently."""
    good = {"API_SECRET_TOKEN": TOKEN, "TELEGRAM_API_ID": "1", "TELEGRAM_API_HASH": "f" * 32,
            "TELEGRAM_CHANNELS": "-1001649127710"}
    spec = envcheck.SERVICES["gateway"]
    assert envcheck.check_service(spec, good) == []
    assert envcheck.check_service(spec, good | {"PUBLISH_BATCH_SIZE": "5000"}) == [
        "gateway: PUBLISH_BATCH_SIZE must be between 1 and 1000 (the API's batch limit)"]
    assert envcheck.check_service(spec, good | {"BACKFILL_RECOVERY_LIMIT": "0"}) == [
        "gateway: BACKFILL_RECOVERY_LIMIT must be at least 1, got 0"]
    ingest = {"GATEWAY_SECRET_TOKEN": TOKEN, "DATABASE_URL": "postgresql://h/d"}
    assert envcheck.check_service(envcheck.SERVICES["ingest-api"], ingest | {"OTEL_TRACE_SQL": "maybe"}) == [
        "ingest-api: OTEL_TRACE_SQL must be true or false, got 'maybe'"]
