"""The gateway's own HTTP server (aiohttp): /health, /ready, /metrics on GATEWAY_PORT (4006)."""

from __future__ import annotations

import time

from aiohttp import web

from ts_common.metrics import render_metrics

from .service import Gateway

GATEWAY_KEY = web.AppKey("gateway", Gateway)


def health_body(gateway: Gateway) -> dict:
    publisher = gateway.publisher
    return {
        "status": "healthy" if gateway.state.ready else "starting",
        "service": "telegram-gateway",
        "uptimeSeconds": round(time.time() - gateway.state.started_at, 1),
        "source": {"kind": gateway.source.kind, "connected": gateway.source.connected},
        "telegram": {"connected": gateway.source.connected} if gateway.source.kind == "telegram" else None,
        "queueDepth": gateway.queue.depth,
        "deadLetters": gateway.queue.dead_letters,
        "lastPublishAt": publisher.last_publish_at,
        "lastError": publisher.last_error or gateway.state.last_error,
        "retryBackoffSeconds": gateway.drainer.backoff,
        "cursors": {str(k): v for k, v in gateway.cursors.cursors.items()},
        "lastBackfillAt": gateway.state.last_backfill_at,
    }


async def health(request: web.Request) -> web.Response:
    # Liveness: the process answers, so 200; the details say what is connected and queued.
    return web.json_response(health_body(request.app[GATEWAY_KEY]))


async def ready(request: web.Request) -> web.Response:
    gateway = request.app[GATEWAY_KEY]
    ok = gateway.state.ready and gateway.source.connected
    return web.json_response({"ready": ok, "sourceConnected": gateway.source.connected}, status=200 if ok else 503)


async def metrics(request: web.Request) -> web.Response:
    body, content_type = render_metrics()
    return web.Response(body=body, headers={"Content-Type": content_type})


def create_app(gateway: Gateway) -> web.Application:
    app = web.Application()
    app[GATEWAY_KEY] = gateway
    app.router.add_get("/health", health)
    app.router.add_get("/ready", ready)
    app.router.add_get("/metrics", metrics)
    return app


async def start_server(gateway: Gateway, host: str, port: int) -> web.AppRunner:
    runner = web.AppRunner(create_app(gateway), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
