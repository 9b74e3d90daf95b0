"""The health answers every service gives, built once here (no web framework in this module).

The old system's shared format, which its ops scripts and dashboard read:

- `/healthz` (liveness): `{"status": "healthy", "service": …, "uptime": <seconds>}`, always 200
  while the process answers;
- `/health`: `{"status", "service", "version", "timestamp", "uptime", "checks": {<name>: {"status",
  "message", "responseTime"}}, "responseTime"}`. The overall status is the worst of the checks:
  any `unhealthy` makes it unhealthy (503), else any `degraded` makes it degraded (200), else
  healthy (200). Times are milliseconds.

Each service names its checks (`timescaledb` for the APIs; `telegram`, `queue`, `api` for the
gateway) as probes: an async callable returning a message (healthy), or `(status, message)`; a
probe that raises is unhealthy with the exception's text, one that takes longer than the timeout
is unhealthy too. The Litestar core plugin (ts_runtime.api_core) and the gateway's aiohttp server
both serve what `health_body` and `healthz_body` build.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timezone
from typing import Any, Literal

import msgspec

HEALTHY: Literal["healthy"] = "healthy"
DEGRADED: Literal["degraded"] = "degraded"
UNHEALTHY: Literal["unhealthy"] = "unhealthy"
Status = Literal["healthy", "degraded", "unhealthy"]
_SEVERITY = {HEALTHY: 0, DEGRADED: 1, UNHEALTHY: 2}

# A probe answers with a message (healthy) or with (status, message); raising means unhealthy.
ProbeResult = str | tuple[Status, str]
Probe = Callable[[], Awaitable[ProbeResult]]

DEFAULT_CHECK_TIMEOUT = 5.0  # seconds, as the old shared handler


class CheckResult(msgspec.Struct, rename={"response_time": "responseTime"}):
    status: Status
    message: str
    # Milliseconds the probe took.
    response_time: float


async def _run_one(probe: Probe, timeout: float) -> CheckResult:
    started = time.perf_counter()
    try:
        async with asyncio.timeout(timeout):
            outcome = await probe()
    except TimeoutError:
        status, message = UNHEALTHY, f"no answer within {timeout:g} s"
    except Exception as exc:  # noqa: BLE001 - any failure of a dependency is "unhealthy", with its reason
        status, message = UNHEALTHY, str(exc) or type(exc).__name__
    else:
        status, message = (HEALTHY, outcome) if isinstance(outcome, str) else outcome
    return CheckResult(status=status, message=message, response_time=_elapsed_ms(started))


async def run_checks(probes: Mapping[str, Probe], timeout: float = DEFAULT_CHECK_TIMEOUT) -> dict[str, CheckResult]:
    """Run every probe at once; one result per name, in the order given."""
    results = await asyncio.gather(*(_run_one(probe, timeout) for probe in probes.values()))
    return dict(zip(probes, results))


def overall_status(checks: Mapping[str, CheckResult]) -> Status:
    """The worst status among the checks (healthy when there are none)."""
    return max((c.status for c in checks.values()), key=_SEVERITY.__getitem__, default=HEALTHY)


def http_status(status: Status) -> int:
    """200 for healthy and degraded (the service still does its job), 503 for unhealthy."""
    return 503 if status == UNHEALTHY else 200


def uptime_seconds(started_monotonic: float) -> float:
    return round(time.monotonic() - started_monotonic, 3)


def healthz_body(service: str, started_monotonic: float) -> dict[str, Any]:
    """The liveness answer: the process is up (no dependency is checked)."""
    return {"status": HEALTHY, "service": service, "uptime": uptime_seconds(started_monotonic)}


def health_body(service: str, version: str, started_monotonic: float, checks: Mapping[str, CheckResult],
                started_at: float, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The old shared format, after the service's own fields (`extra`, kept for current clients).

    `started_at` is the `time.perf_counter()` reading taken when the request came in: the
    top-level `responseTime` covers every check.
    """
    body: dict[str, Any] = dict(extra or {})
    body.update(
        status=overall_status(checks),
        service=service,
        version=version,
        timestamp=iso_now(),
        uptime=uptime_seconds(started_monotonic),
        checks={name: msgspec.to_builtins(result) for name, result in checks.items()},
        responseTime=_elapsed_ms(started_at),
    )
    return body


def iso_now() -> str:
    """Now in UTC as JavaScript's toISOString() writes it: `2025-10-07T12:00:00.123Z`."""
    return iso_millis(datetime.now(timezone.utc))


def iso_millis(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)
