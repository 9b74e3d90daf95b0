"""The gateway's own HTTP server (aiohttp) on GATEWAY_PORT (4006): /healthz, /health, /ready, /logs,
/metrics, with the same bodies as the APIs (ts_runtime.health, ts_runtime.logs).

/health has the old shared format with three checks, beside the gateway's own fields:
- `telegram`: the source is connected (unhealthy while it is not: nothing new is captured);
- `queue`: what waits in the write-ahead queue; degraded while dead letters are kept (the API
  refused them) or quarantined lines are (damaged queue lines set aside at start: not delivered
  until an operator re-feeds them, docs/runbooks/drain-queue.md), else healthy;
- `api`: delivery to the ingest API; degraded while it answers 401 (the tokens differ: nothing is
  delivered until an operator fixes them, the alert fires) or is unreachable and the drainer backs
  off; messages wait safely in the queue either way, so capture goes on: not unhealthy.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone

from aiohttp import web
from prometheus_client import REGISTRY

from ts_runtime import health
from ts_runtime.logs import LogQueryError, logs_body, mask, parse_logs_query
from ts_runtime.metrics import render_metrics

from .drainer import publish_queue_gauges
from .service import Gateway
from .status import SERVICE, running_status

VERSION = "0.1.0"
GATEWAY_KEY = web.AppKey("gateway", Gateway)
STARTED_KEY = web.AppKey("started", float)


def mask_secrets(text: str | None) -> str | None:
    return None if text is None else mask(text)


def _iso(epoch: float | None) -> str | None:
    return None if epoch is None else health.iso_millis(datetime.fromtimestamp(epoch, timezone.utc))


def checks(gateway: Gateway) -> dict[str, health.Probe]:
    """The three checks of /health, as probes of ts_runtime.health."""

    async def telegram() -> health.ProbeResult:
        source = gateway.source
        what = "Telegram" if source.kind == "telegram" else f"{source.kind} source (not Telegram)"
        if source.connected:
            return f"{what} connected"
        reason = mask_secrets(gateway.state.last_error)
        return health.UNHEALTHY, f"{what} {'not connected yet' if not gateway.state.ready else 'disconnected'}" + (
            f": {reason}" if reason else "")

    async def queue() -> health.ProbeResult:
        depth, dead, quarantined = gateway.queue.depth, gateway.queue.dead_letters, gateway.queue.quarantined
        text = f"{depth} queued, {dead} dead letter(s), {quarantined} quarantined line(s)"
        reasons = []
        if dead:
            reasons.append("dead letters: refused by the API")
        if quarantined:
            reasons.append(f"quarantined lines: damaged, not delivered, in {gateway.queue.files.quarantine.name}")
        if reasons:
            return health.DEGRADED, f"{text} ({'; '.join(reasons)}: see `gateway status` and docs/runbooks/drain-queue.md)"
        return text

    async def api() -> health.ProbeResult:
        if REGISTRY.get_sample_value("telegram_gateway_token_mismatch"):
            return health.DEGRADED, (f"the API answers 401: API_SECRET_TOKEN differs from its GATEWAY_SECRET_TOKEN "
                                     f"({gateway.queue.depth} queued)")
        if gateway.drainer.backoff:
            return health.DEGRADED, (f"unreachable, next try in {gateway.drainer.backoff:.1f} s "
                                     f"({gateway.queue.depth} queued): "
                                     f"{mask_secrets(gateway.publisher.last_error) or 'no answer'}")
        last = gateway.publisher.last_publish_at
        return f"last delivery {_iso(last)}" if last else "nothing delivered yet"

    return {"telegram": telegram, "queue": queue, "api": api}


async def healthz(request: web.Request) -> web.Response:
    return web.json_response(health.healthz_body(SERVICE, request.app[STARTED_KEY]))


async def health_endpoint(request: web.Request) -> web.Response:
    began = time.perf_counter()
    gateway = request.app[GATEWAY_KEY]
    publish_queue_gauges(gateway.queue)  # the quarantine file may have been moved away since
    results = await health.run_checks(checks(gateway))
    own = running_status(gateway).to_builtins()  # the gateway's own fields, as in gateway-status.json
    body = health.health_body(SERVICE, VERSION, request.app[STARTED_KEY], results, began, own)
    return web.json_response(body, status=health.http_status(body["status"]))


async def ready(request: web.Request) -> web.Response:
    gateway = request.app[GATEWAY_KEY]
    ok = gateway.state.ready and gateway.source.connected
    return web.json_response({"ready": ok, "sourceConnected": gateway.source.connected}, status=200 if ok else 503)


async def recent_logs(request: web.Request) -> web.Response:
    try:
        limit, level = parse_logs_query(request.query.get("limit"), request.query.get("level"))
    except LogQueryError as exc:
        return web.json_response({"error": f"{exc.field} is invalid", "details": [str(exc)]}, status=400)
    return web.json_response(logs_body(limit, level))


async def metrics(request: web.Request) -> web.Response:
    publish_queue_gauges(request.app[GATEWAY_KEY].queue)
    body, content_type = render_metrics()
    return web.Response(body=body, headers={"Content-Type": content_type})


def create_app(gateway: Gateway) -> web.Application:
    app = web.Application()
    app[GATEWAY_KEY] = gateway
    # The gateway's start on the monotonic clock (uptime), from its wall-clock start.
    app[STARTED_KEY] = time.monotonic() - (time.time() - gateway.state.started_at)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/health", health_endpoint)
    app.router.add_get("/ready", ready)
    app.router.add_get("/logs", recent_logs)
    app.router.add_get("/metrics", metrics)
    return app


def served_paths(runner: web.AppRunner) -> list[str]:
    """The paths the server answers (for the start-up log line), in the order they were added."""
    paths: list[str] = []
    for route in runner.app.router.routes():
        path = route.resource.canonical if route.resource is not None else None
        if path and path not in paths:
            paths.append(path)
    return paths


async def start_server(gateway: Gateway, host: str, port: int) -> web.AppRunner:
    runner = web.AppRunner(create_app(gateway), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
