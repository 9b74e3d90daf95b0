"""Publishing queued payloads to the ingest API over HTTP (one aiohttp session, stamina retries).

Each answer is mapped to what the queue must do with the record:

- 200 stored/duplicate      → ACKED (remove from the queue)
- 200 rejected, 400, 413    → REJECTED (dead-letter file, with the API's reason)
- 401/403                   → UNAUTHORIZED (keep queued, raise the token-mismatch alert)
- connection error, timeout, 429, 5xx → retried by stamina (5 s, 10 s, 20 s by default), then
                              UNAVAILABLE (keep queued; the drainer tries again later)
- anything else (404, a 200 we cannot read) → UNAVAILABLE as well: never drop what we do not understand.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections import Counter
from dataclasses import dataclass, field

import aiohttp
import msgspec
import stamina
from opentelemetry import trace
from stamina.instrumentation import RetryDetails, set_on_retry_hooks

from contracts import BatchResult, IngestResult
from ts_runtime.settings import redact

from . import metrics
from .queue import QueueRecord
from .settings import PublishSettings

log = logging.getLogger(__name__)
tracer = trace.get_tracer("gateway.publisher")

_result_decoder = msgspec.json.Decoder(IngestResult)
_batch_decoder = msgspec.json.Decoder(BatchResult)


class _ErrorBody(msgspec.Struct):
    error: str | None = None
    details: list[str] | None = None
    message: str | None = None


_error_decoder = msgspec.json.Decoder(_ErrorBody)


class Outcome(enum.Enum):
    ACKED = "acked"
    REJECTED = "rejected"
    UNAUTHORIZED = "unauthorized"
    UNAVAILABLE = "unavailable"


@dataclass
class PublishResult:
    outcome: Outcome
    status: str | None = None  # stored / duplicate when ACKED
    reason: str = ""
    details: list[str] = field(default_factory=list)
    http_status: int | None = None


class TransientError(Exception):
    """Worth retrying soon: the API or the network is briefly unavailable."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


class _FallBackToSingle(Exception):
    """The batch endpoint refused the envelope (400/404/405): publish the records one by one."""


def _error_reason(body: bytes, default: str) -> tuple[str, list[str]]:
    try:
        error = _error_decoder.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return default, []
    return error.error or error.message or default, list(error.details or [])


def on_retry(details: RetryDetails) -> None:
    """stamina's one retry hook (`instrument_retries`): the retry counter and one log line per
    scheduled retry. The log formatter cuts secrets an error text may quote (ts_runtime.logs)."""
    metrics.RETRY_ATTEMPTS.labels(attempt_number=str(details.retry_num)).inc()
    log.warning("publish attempt %d failed: %s; retry %d in %.1fs", details.retry_num, details.caused_by,
                details.retry_num, details.wait_for)


def instrument_retries() -> None:
    """Make `on_retry` stamina's only hook. Its defaults would count every retry a second time
    (`stamina_retries_total`) and log it again; the publisher is the only code stamina retries."""
    set_on_retry_hooks([on_retry])


def create_session(settings: PublishSettings) -> aiohttp.ClientSession:
    """The one HTTP session of the process; traced so `traceparent` reaches the API."""
    from opentelemetry.instrumentation.aiohttp_client import create_trace_config

    return aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=settings.timeout_seconds),
        trace_configs=[create_trace_config()],
        headers={"X-Gateway-Token": settings.token, "Content-Type": "application/json"},
    )


class Publisher:
    def __init__(self, settings: PublishSettings, session: aiohttp.ClientSession) -> None:
        self.settings = settings
        self.session = session
        self.last_error: str | None = None
        self.last_publish_at: float | None = None
        # HTTP requests on the wire right now: shutdown waits for these (their answer decides
        # whether records are acknowledged) but not for a retry's sleep.
        self.in_flight = 0
        # Answers by outcome and status (stored, duplicate, rejected, unauthorized, unavailable).
        self.counts: Counter[str] = Counter()

    # -- public ------------------------------------------------------------------------------

    async def publish(self, record: QueueRecord) -> PublishResult:
        """POST one record to /ingest, retrying transient failures on the configured schedule."""
        with tracer.start_as_current_span("gateway.publish", attributes={"message.key": record.key, "batch.size": 1}):
            try:
                result = await self._with_retries(self._post_single, record)
            except TransientError as exc:
                result = PublishResult(Outcome.UNAVAILABLE, reason=exc.reason, details=[str(exc)])
            self._account([result])
            return result

    async def publish_batch(self, records: list[QueueRecord]) -> list[PublishResult]:
        """POST records to /ingest/batch (results in order); falls back to /ingest one by one
        when the API refuses the batch as a whole."""
        if len(records) == 1:
            return [await self.publish(records[0])]
        with tracer.start_as_current_span("gateway.publish", attributes={"batch.size": len(records)}):
            try:
                results = await self._with_retries(self._post_batch, records)
            except TransientError as exc:
                results = [PublishResult(Outcome.UNAVAILABLE, reason=exc.reason, details=[str(exc)])] * len(records)
            except _FallBackToSingle:
                return [await self.publish(record) for record in records]
            self._account(results)
            return results

    # -- HTTP --------------------------------------------------------------------------------

    async def _with_retries(self, post, arg):
        # Waits: retry_delay × 2^(n-1), no jitter, no overall timeout (the schedule is the bound).
        async for attempt in stamina.retry_context(
            on=TransientError,
            attempts=self.settings.max_retry_attempts + 1,
            timeout=None,
            wait_initial=self.settings.retry_delay_ms / 1000,
            wait_exp_base=2,
            wait_jitter=0,
            wait_max=float("inf"),
        ):
            with attempt:
                try:
                    return await post(arg)
                except TransientError as exc:
                    # Counted and logged per retry by `on_retry`; the drainer logs the last failure.
                    metrics.PUBLISH_FAILURES.labels(reason=exc.reason).inc()
                    self.last_error = f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {exc}"
                    raise

    async def _request(self, url: str, body: bytes) -> tuple[int, bytes]:
        self.in_flight += 1
        try:
            async with self.session.post(url, data=body) as response:
                return response.status, await response.read()
        except asyncio.TimeoutError:
            raise TransientError("timeout", f"no answer from {url} within {self.settings.timeout_seconds:g}s") from None
        except aiohttp.ClientError as exc:
            raise TransientError("connection", f"{url}: {exc.__class__.__name__}: {exc}") from None
        finally:
            self.in_flight -= 1

    @staticmethod
    def _raise_if_transient(status: int, body: bytes) -> None:
        if status == 429:
            raise TransientError("http_429", "the API asks us to slow down")
        if status >= 500:
            reason, _ = _error_reason(body, f"HTTP {status}")
            raise TransientError("http_5xx", f"{status} {reason}")

    def _unauthorized(self, status: int, body: bytes) -> PublishResult:
        reason, _ = _error_reason(body, "unauthorized")
        log.error("the API refused the gateway token (%s): API_SECRET_TOKEN (%s) must equal the API's "
                  "GATEWAY_SECRET_TOKEN; records stay queued", reason, redact(self.settings.token))
        return PublishResult(Outcome.UNAUTHORIZED, reason=reason, http_status=status)

    async def _post_single(self, record: QueueRecord) -> PublishResult:
        status, body = await self._request(self.settings.single_url, bytes(record.payload))
        self._raise_if_transient(status, body)
        if status == 200:
            try:
                return self._from_result(_result_decoder.decode(body))
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                return PublishResult(Outcome.UNAVAILABLE, reason="unexpected_answer", details=[str(exc)], http_status=status)
        if status in (400, 413, 422):
            reason, details = _error_reason(body, f"HTTP {status}")
            return PublishResult(Outcome.REJECTED, reason=reason, details=details, http_status=status)
        if status in (401, 403):
            return self._unauthorized(status, body)
        return PublishResult(Outcome.UNAVAILABLE, reason="unexpected_answer",
                             details=[f"HTTP {status} from {self.settings.single_url}"], http_status=status)

    async def _post_batch(self, records: list[QueueRecord]) -> list[PublishResult]:
        body = b'{"messages":[' + b",".join(bytes(r.payload) for r in records) + b"]}"
        status, answer = await self._request(self.settings.batch_url, body)
        self._raise_if_transient(status, answer)
        if status in (400, 404, 405, 413, 422):
            raise _FallBackToSingle()
        if status in (401, 403):
            return [self._unauthorized(status, answer)] * len(records)
        if status == 200:
            try:
                batch = _batch_decoder.decode(answer)
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                batch, problem = None, str(exc)
            else:
                problem = f"{len(batch.results)} results for {len(records)} messages"
            if batch is not None and len(batch.results) == len(records):
                return [self._from_result(result) for result in batch.results]
            return [PublishResult(Outcome.UNAVAILABLE, reason="unexpected_answer", details=[problem], http_status=status)] * len(records)
        return [PublishResult(Outcome.UNAVAILABLE, reason="unexpected_answer",
                              details=[f"HTTP {status} from {self.settings.batch_url}"], http_status=status)] * len(records)

    @staticmethod
    def _from_result(result: IngestResult) -> PublishResult:
        if result.acknowledged:
            return PublishResult(Outcome.ACKED, status=result.status, http_status=200)
        return PublishResult(Outcome.REJECTED, reason=result.reason or "rejected", details=list(result.details or []),
                             http_status=200)

    # -- bookkeeping -------------------------------------------------------------------------

    def _account(self, results: list[PublishResult]) -> None:
        self.counts.update(r.status or r.outcome.value for r in results)
        acked = sum(1 for r in results if r.outcome is Outcome.ACKED)
        if acked:
            metrics.MESSAGES_PUBLISHED.inc(acked)
            self.last_publish_at = time.time()
            metrics.LAST_PUBLISH.set(self.last_publish_at)
        if any(r.outcome is Outcome.UNAUTHORIZED for r in results):
            metrics.TOKEN_MISMATCH.set(1)
            metrics.PUBLISH_FAILURES.labels(reason="unauthorized").inc()
            self.last_error = "the API answered 401: token mismatch"
        elif acked:
            metrics.TOKEN_MISMATCH.set(0)
        rejected = sum(1 for r in results if r.outcome is Outcome.REJECTED)
        if rejected:
            metrics.PUBLISH_FAILURES.labels(reason="rejected").inc(rejected)
        unexpected = [r for r in results if r.outcome is Outcome.UNAVAILABLE and r.reason == "unexpected_answer"]
        if unexpected:
            metrics.PUBLISH_FAILURES.labels(reason="unexpected_answer").inc()
            self.last_error = f"unexpected answer: {unexpected[0].details}"
