"""Prometheus metrics with the names of the old design (see the shared reference).

The HTTP metrics (`tradingsystem_http_requests_total`, `tradingsystem_http_request_duration_seconds`)
come from Litestar's Prometheus middleware (app.py); the two gauges are set here.
"""

from __future__ import annotations

from prometheus_client import Gauge

HTTP_PREFIX = "tradingsystem_http"

# Refreshed on every /metrics scrape and every database round trip ("mostrecent": with several
# granian workers, the latest value written by any worker wins).
ITEMS_COUNT = Gauge("workspace_items_count", "Workspace items stored", multiprocess_mode="mostrecent")
DB_CONNECTION_STATUS = Gauge(
    "workspace_db_connection_status", "1 when the last database round trip succeeded, else 0",
    multiprocess_mode="mostrecent",
)
