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
