"""Prometheus exposition that also works with several granian workers.

With `PROMETHEUS_MULTIPROC_DIR` set, every worker writes its samples to that folder and
`/metrics` aggregates them; without it, the process's own registry is served.
"""

from __future__ import annotations

import os

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, REGISTRY, generate_latest


def render_metrics() -> tuple[bytes, str]:
    """The body and content type of a `/metrics` answer."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


_HTTP_METRICS: dict[str, tuple] = {}


def _http_metrics(prefix: str) -> tuple:
    """The four HTTP metrics of `prefix`, registered once per process (tests build several apps)."""
    if prefix not in _HTTP_METRICS:
        from prometheus_client import Counter, Gauge, Histogram

        names = ["method", "path", "status_code", "app_name"]
        _HTTP_METRICS[prefix] = (
            Counter(f"{prefix}_requests_total", "Total requests", names),
            Histogram(f"{prefix}_request_duration_seconds", "Request duration, in seconds", names),
            Gauge(f"{prefix}_requests_in_progress", "Total requests currently in progress", names,
                  multiprocess_mode="livesum"),
            Counter(f"{prefix}_requests_error_total", "Total errors in requests", names),
        )
    return _HTTP_METRICS[prefix]


class HttpMetrics:
    """ASGI middleware (Litestar `middleware=[...]`) counting requests per method, route and status.

    The metric names and labels are those of Litestar's PrometheusMiddleware (prefix `api_http`,
    `group_path=True`), which the APIs used before: `<prefix>_requests_total`,
    `<prefix>_request_duration_seconds`, `<prefix>_requests_in_progress` and
    `<prefix>_requests_error_total` (5xx), each by `method`, `path` (the route template),
    `status_code` and `app_name`. Unlike that middleware it builds no Request object and no label
    dictionary per request: the label children of each (method, route, status) are looked up once
    and kept (`.labels()` takes a lock and builds a tuple on every call).
    """

    def __init__(self, app_name: str, prefix: str = "api_http", exclude: tuple[str, ...] = ()) -> None:
        self.app_name = app_name
        self.exclude = frozenset(exclude)
        self._requests, self._duration, self._in_progress, self._errors = _http_metrics(prefix)
        self._children: dict[tuple[str, str, int], tuple] = {}
        self._gauges: dict[tuple[str, str], object] = {}

    def _bound(self, method: str, path: str, status: int) -> tuple:
        key = (method, path, status)
        bound = self._children.get(key)
        if bound is None:
            values = (method, path, str(status), self.app_name)
            bound = (self._requests.labels(*values), self._duration.labels(*values),
                     self._errors.labels(*values) if status >= 500 else None)
            self._children[key] = bound
        return bound

    def in_progress(self, method: str, path: str):  # type: ignore[no-untyped-def]
        """The in-progress gauge of a route (inc when a request starts, dec when it ends)."""
        key = (method, path)
        gauge = self._gauges.get(key)
        if gauge is None:
            # The old middleware's in-progress series carried status_code="200" (its label set
            # is fixed before the answer is known); kept so dashboards keep matching.
            gauge = self._gauges[key] = self._in_progress.labels(method, path, "200", self.app_name)
        return gauge

    def record(self, method: str, path: str, status: int, seconds: float) -> None:
        """Count one answered request (what the middleware does; also called by a handler that
        serves its route without the framework, the ingest API's hot path)."""
        requests, duration, errors = self._bound(method, path, status)
        requests.inc()
        duration.observe(seconds)
        if errors is not None:
            errors.inc()

    def __call__(self, app):  # type: ignore[no-untyped-def]
        import time

        clock = time.perf_counter

        async def counted(scope, receive, send):  # type: ignore[no-untyped-def]
            if scope["type"] != "http" or scope["path"] in self.exclude:
                await app(scope, receive, send)
                return
            method = scope["method"]
            path = scope.get("path_template") or scope["path"]
            started = clock()
            status = 500
            ended = 0.0

            async def send_status(message):  # type: ignore[no-untyped-def]
                nonlocal status, ended
                kind = message["type"]
                if kind == "http.response.start":
                    status = message["status"]
                elif kind == "http.response.body":
                    ended = clock()
                await send(message)

            gauge = self.in_progress(method, path)
            gauge.inc()
            try:
                await app(scope, receive, send_status)
            finally:
                gauge.dec()
                self.record(method, path, status, (ended or clock()) - started)

        return counted
