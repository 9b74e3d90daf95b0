"""`uv run ingest-api` / `workspace-api` read their own `.env`; the real environment wins."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ts_runtime.serve import run_api
from ts_runtime.settings import ConfigError


def test_env_file_fills_gaps_and_the_environment_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("DEMO_FROM_FILE=file-value\nDEMO_BOTH=file-value\n")
    monkeypatch.delenv("DEMO_FROM_FILE", raising=False)  # restored (removed) after the test
    monkeypatch.setenv("DEMO_BOTH", "environment-value")
    seen: dict[str, str | None] = {}

    def check_config() -> None:
        seen.update(from_file=os.environ.get("DEMO_FROM_FILE"), both=os.environ.get("DEMO_BOTH"))
        raise ConfigError("stop before serving")

    assert run_api("demo-api", 1, "demo", "unused:app", check_config, [], env_file=env_file) == 2
    assert seen == {"from_file": "file-value", "both": "environment-value"}
    err = capsys.readouterr().err
    assert f"demo-api: read {env_file}" in err
    assert "demo-api: stop before serving" in err


def test_a_missing_env_file_is_fine(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def check_config() -> None:
        raise ConfigError("GATEWAY_SECRET_TOKEN is not set")

    assert run_api("demo-api", 1, "demo", "unused:app", check_config, [], env_file=tmp_path / "absent.env") == 2
    assert capsys.readouterr().err.strip() == "demo-api: GATEWAY_SECRET_TOKEN is not set"
