"""Prometheus metrics (names from the old system's design, plus the alerts this gateway adds)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

CONNECTION_STATUS = Gauge(
    "telegram_connection_status", "1 while the source (Telegram, or the file source) is connected")
MESSAGES_RECEIVED = Counter(
    "telegram_messages_received_total", "Message events received from the source", ["channel_id"])
MESSAGES_PUBLISHED = Counter(
    "telegram_messages_published_total", "Payloads the API acknowledged (stored or duplicate)")
PUBLISH_FAILURES = Counter(
    "telegram_publish_failures_total",
    "Publish attempts that did not end in an acknowledgement, by reason "
    "(timeout, connection, http_429, http_5xx, unauthorized, rejected, unexpected_answer)",
    ["reason"])
RETRY_ATTEMPTS = Counter(
    "telegram_retry_attempts_total", "Retries of a publish, by retry number (1 = first retry); counted by "
    "stamina's retry hook (gateway.publisher.on_retry)", ["attempt_number"])
QUEUE_SIZE = Gauge(
    "telegram_failure_queue_size", "Payloads in the durable queue not yet acknowledged by the API")
DEAD_LETTERS = Gauge(
    "telegram_dead_letter_size", "Payloads the API refused (400), kept in the dead-letter file")
QUARANTINED_LINES = Gauge(
    "telegram_queue_quarantined_lines",
    "Queue lines set aside in the quarantine file because they were not records (torn, corrupt, undecodable)")
# The alert rules (infra/prometheus/alerts.yml) read this gauge. 401 answers are also counted in
# telegram_publish_failures_total{reason="unauthorized"}; a separate *_total counter would clash
# with the gauge's name in the registry.
TOKEN_MISMATCH = Gauge(
    "telegram_gateway_token_mismatch",
    "ALERT: 1 while the API answers 401 (API_SECRET_TOKEN differs from its GATEWAY_SECRET_TOKEN)")
BACKFILLED = Counter(
    "telegram_backfilled_messages_total", "Messages found by backfill (history since the channel's cursor)",
    ["channel_id"])
FLOOD_WAITS = Counter(
    "telegram_flood_wait_seconds_total", "Seconds slept because Telegram asked to (FloodWait)")
LAST_PUBLISH = Gauge(
    "telegram_last_publish_timestamp_seconds", "Unix time of the last acknowledged publish")
