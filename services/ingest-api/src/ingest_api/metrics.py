"""Prometheus metrics (names of the old design; see shared reference)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

# stored / duplicate / rejected / unauthorized / unavailable / error
INGESTION_REQUESTS = Counter(
    "api_ingestion_requests_total", "Messages received on /ingest and /ingest/batch, by outcome", ["status"]
)
SIGNALS_INSERTED = Counter("api_signals_inserted_total", "Signals parsed and stored", ["signal_type"])
DB_ERRORS = Counter("api_timescaledb_errors_total", "Database errors, by type", ["error_type"])
AUTH_FAILURES = Counter("api_auth_failures_total", "Requests refused for a missing or wrong token", ["reason"])
SIGNAL_EVENTS = Counter("api_signal_events_total", "Lifecycle follow-ups recorded", ["event_type"])
# Each (signal, outcome) once, when the ingest path first derives it (signals/outcomes.py):
# target_hit (target 1 or beyond, final included), final_target_hit, stopped, cancelled, closed.
SIGNAL_OUTCOMES = Counter("api_signal_outcomes_total", "Outcomes reached by signals, each counted once per signal",
                          ["outcome"])
OUTCOMES = ("target_hit", "final_target_hit", "stopped", "cancelled", "closed")
for _outcome in OUTCOMES:  # every series present from the start, at 0
    SIGNAL_OUTCOMES.labels(outcome=_outcome)
COALESCED_BATCH = Histogram(
    "api_ingest_coalesced_batch_size",
    "Messages written per database statement by the ingest writer",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
)

# Label children bound once: `.labels()` is a dictionary lookup under a lock on every call.
INGEST_STORED = INGESTION_REQUESTS.labels(status="stored")
INGEST_DUPLICATE = INGESTION_REQUESTS.labels(status="duplicate")
INGEST_REJECTED = INGESTION_REQUESTS.labels(status="rejected")
INGEST_UNAVAILABLE = INGESTION_REQUESTS.labels(status="unavailable")
INGEST_UNAUTHORIZED = INGESTION_REQUESTS.labels(status="unauthorized")
BY_STATUS = {"stored": INGEST_STORED, "duplicate": INGEST_DUPLICATE, "rejected": INGEST_REJECTED}
