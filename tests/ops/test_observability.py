"""Grafana dashboard and Prometheus rules: valid, and written against the services' real metric names."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "infra/grafana/dashboards/tradingsystem.json"
ALERTS = REPO / "infra/prometheus/alerts.yml"
PROMETHEUS = REPO / "infra/prometheus/prometheus.yml"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed (apt-get install prometheus)")

# Names that are PromQL functions, keywords or Prometheus' own series, not service metrics.
NOT_METRICS = {
    "sum", "rate", "increase", "max", "min", "by", "and", "or", "offset", "histogram_quantile", "le",
    "up", "job", "status", "reason", "error_type", "signal_type", "attempt_number", "clamp_min", "m",
}


def metric_names(expr: str) -> set[str]:
    expr = re.sub(r'\{[^}]*\}', "", expr)  # drop label matchers
    expr = re.sub(r'"[^"]*"', "", expr)
    names = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr)) - NOT_METRICS
    return {re.sub(r"_(bucket|count|sum)$", "", n) for n in names if not re.fullmatch(r"\d+[smh]?", n)}


def defined_metrics() -> set[str]:
    """Metric names the services' source registers (Counter("name", …), Gauge(…), Histogram(…))."""
    names: set[str] = set()
    sources = [path.read_text() for path in (REPO / "services").rglob("*.py")]
    # Module-level string constants (`HTTP_PREFIX = "tradingsystem_http"`), for prefixes passed by name.
    constants = dict(re.findall(r'^([A-Z][A-Z0-9_]*) = ["\']([a-z_:][a-z0-9_:]*)["\']$', "\n".join(sources), flags=re.M))
    for text in sources:
        for match in re.finditer(r'\b(?:Counter|Gauge|Histogram|Summary)\(\s*["\']([a-z_:][a-z0-9_:]*)["\']', text):
            names.add(match.group(1).removesuffix("_total"))
        # Litestar's PrometheusConfig(prefix=…) and ts_runtime.metrics.HttpMetrics(prefix=…) register
        # <prefix>_requests_total and <prefix>_request_duration_seconds (among others); the prefix
        # is a literal or a constant.
        for match in re.finditer(r'(?:PrometheusConfig|HttpMetrics)\([^)]*prefix=(?:["\']([a-z_]+)["\']|(?:\w+\.)?([A-Z][A-Z0-9_]*))', text):
            prefix = match.group(1) or constants.get(match.group(2))
            if prefix:
                names |= {f"{prefix}_requests", f"{prefix}_request_duration_seconds", f"{prefix}_requests_error"}
    return names


def dashboard_exprs() -> list[str]:
    return [t["expr"] for p in json.loads(DASHBOARD.read_text())["panels"] for t in p["targets"]]


def alert_exprs() -> list[str]:
    return re.findall(r"^\s*expr: (.+)$", ALERTS.read_text(), flags=re.M)


def test_dashboard_has_the_four_panels() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert [p["title"] for p in dashboard["panels"]] == ["System health", "Message throughput", "Failure rates", "p95 latency"]
    assert all(p["targets"] and p["datasource"]["uid"] == "prometheus" for p in dashboard["panels"])
    assert any("histogram_quantile(0.95" in e for e in dashboard_exprs())


def test_dashboard_and_alerts_use_metrics_the_services_define() -> None:
    defined = defined_metrics()
    used = set().union(*(metric_names(e) for e in dashboard_exprs() + alert_exprs()))
    unknown = {name for name in used if name.removesuffix("_total") not in defined}
    assert not unknown, f"not registered by any service: {sorted(unknown)}"


@needs_promtool
def test_promtool_accepts_the_rules_and_config() -> None:
    rules = subprocess.run([PROMTOOL, "check", "rules", str(ALERTS)], capture_output=True, text=True, timeout=60)
    assert rules.returncode == 0, rules.stdout + rules.stderr
    config = subprocess.run([PROMTOOL, "check", "config", "--syntax-only", str(PROMETHEUS)], capture_output=True, text=True, timeout=60)
    assert config.returncode == 0, config.stdout + config.stderr


def test_every_alert_named_in_the_issue_exists() -> None:
    text = ALERTS.read_text()
    for alert in ("GatewayDisconnected", "GatewayQueueNotDraining", "GatewayDeadLetters", "IngestErrors", "DatabaseDown",
                  "GatewayQueueLinesQuarantined"):
        assert f"alert: {alert}\n" in text
