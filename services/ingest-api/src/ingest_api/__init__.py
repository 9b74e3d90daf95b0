"""TP Capital ingest API: authenticated idempotent ingest, signal parsing, query API (port 4005)."""
