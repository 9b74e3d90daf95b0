"""The gateway's systemd units: `systemd-analyze verify` is silent and the security score is ≤ 2.5."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
UNITS = REPO / "infra/systemd"
UNIT_NAMES = ["tradingsystem-gateway.service", "tradingsystem-gateway-backup.service", "tradingsystem-gateway-backup.timer"]
ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed")


def gateway_script() -> str:
    """A real path for ExecStart: verify checks that the binary exists."""
    local = Path(sys.executable).parent / "gateway"
    found = str(local) if local.exists() else shutil.which("gateway")
    assert found, "the gateway console script is not installed (uv sync)"
    return found


@pytest.fixture
def rendered(tmp_path: Path) -> Path:
    for name in UNIT_NAMES:
        text = (UNITS / name).read_text().replace("/opt/tradingsystem/.venv/bin/gateway", gateway_script())
        (tmp_path / name).write_text(text)
    return tmp_path


def analyze(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    assert ANALYZE is not None
    return subprocess.run([ANALYZE, *args], capture_output=True, text=True, timeout=120, cwd=cwd)


@needs_analyze
def test_units_verify_without_any_output(rendered: Path) -> None:
    # verify exits 0 on bad values and only prints a warning: any output is a failure.
    result = analyze("verify", "--man=no", *(str(rendered / n) for n in UNIT_NAMES), cwd=rendered)
    assert result.returncode == 0
    assert result.stdout.strip() == "" and result.stderr.strip() == "", result.stdout + result.stderr


@needs_analyze
def test_verify_catches_a_bad_value(rendered: Path) -> None:
    """The check above can fail: a bad value is reported."""
    unit = rendered / "tradingsystem-gateway.service"
    unit.write_text(unit.read_text().replace("CPUQuota=50%", "CPUQuota=fifty"))
    result = analyze("verify", "--man=no", str(unit), cwd=rendered)
    assert "fifty" in result.stdout + result.stderr


@needs_analyze
@pytest.mark.parametrize("unit", ["tradingsystem-gateway.service", "tradingsystem-gateway-backup.service"])
def test_security_exposure_is_at_most_2_5(rendered: Path, unit: str) -> None:
    # --threshold is on systemd's internal 0-100 scale: 25 means an exposure of 2.5.
    result = analyze("security", "--offline=true", "--threshold=25", "--no-pager", unit, cwd=rendered)
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)
    assert match, result.stdout[-2000:] + result.stderr
    assert float(match.group(1)) <= 2.5
    assert result.returncode == 0


def test_gateway_unit_has_the_required_settings() -> None:
    text = (UNITS / "tradingsystem-gateway.service").read_text()
    settings = dict(
        line.split("=", 1) for line in text.splitlines() if "=" in line and not line.lstrip().startswith("#")
    )
    assert settings["Type"] == "notify" and settings["WatchdogSec"]
    assert settings["ExecStart"].split()[0].endswith("/.venv/bin/gateway")  # the Python process is the main PID
    assert settings["Restart"] == "on-failure" and settings["EnvironmentFile"]
    assert settings["ProtectSystem"] == "strict" and settings["NoNewPrivileges"] == "yes"
    assert settings["PrivateTmp"] == "yes" and settings["ProtectHome"] == "yes"
    assert settings["CapabilityBoundingSet"] == ""
    assert settings["MemoryMax"] and settings["CPUQuota"] and settings["RestrictAddressFamilies"]
    assert "SystemCallFilter" in settings
    assert sorted(settings["ReadWritePaths"].split()) == [
        "/var/lib/tradingsystem/gateway/queue",
        "/var/lib/tradingsystem/gateway/session",
    ]


def test_install_script_parses() -> None:
    result = subprocess.run(["bash", "-n", str(UNITS / "install.sh")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
