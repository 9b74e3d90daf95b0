"""The publisher and drainer against a real aiohttp server on a loopback port."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import REGISTRY

from contracts import encode_payload
from gateway.drainer import Drainer, settle
from gateway.publisher import Outcome
from gateway.queue import DurableQueue
from ts_ops.embedded_pg import free_port

from tests.support.gateway import (BAD_REQUEST, OK, REJECT, TIMEOUT, TOO_MANY, UNAUTHORIZED, UNAVAILABLE, ScriptedAPI,
                                   new, publish_settings, start_api)

SCHEDULE = [0.01, 0.02, 0.04]  # retry_delay_ms=10, 3 retries: 10 ms × 2^n


def record_of(queue: DurableQueue, payload):
    [record] = queue.append([payload])
    return record


@pytest.fixture
def queue(tmp_path: Path):
    q = DurableQueue(tmp_path / "q.jsonl", fsync=False)
    q.open()
    yield q
    q.close()


def gauge(name: str) -> float | None:
    return REGISTRY.get_sample_value(name)


@pytest.mark.parametrize("failure", [UNAVAILABLE, TOO_MANY, TIMEOUT])
async def test_transient_answers_are_retried_on_the_schedule(api, make_publisher, queue, retry_waits, failure) -> None:
    api.then(failure, failure, OK)
    publisher = await make_publisher(api.url)
    result = await publisher.publish(record_of(queue, new(1)))
    assert result.outcome is Outcome.ACKED
    assert len(api.requests) == 3
    assert [n for n, _ in retry_waits] == [1, 2]
    assert [w for _, w in retry_waits] == pytest.approx(SCHEDULE[:2])
    # A timeout means the first attempt was stored but never answered: the retry is a duplicate.
    assert result.status == ("duplicate" if failure == TIMEOUT else "stored")
    assert api.stored[api.requests[0].keys[0]] == 1


async def test_after_the_schedule_the_record_stays_queued(api, make_publisher, queue, retry_waits) -> None:
    api.default = UNAVAILABLE
    publisher = await make_publisher(api.url)
    record = record_of(queue, new(1))
    result = await publisher.publish(record)
    assert result.outcome is Outcome.UNAVAILABLE and result.reason == "http_5xx"
    assert len(api.requests) == 4  # the first attempt and MAX_RETRY_ATTEMPTS=3 retries
    assert [wait for _, wait in retry_waits] == pytest.approx(SCHEDULE)
    settle(queue, [record], [result])
    assert queue.depth == 1
    assert "503" in publisher.last_error


async def test_connection_refused_is_retried_then_kept(make_publisher, queue, retry_waits) -> None:
    publisher = await make_publisher(f"http://127.0.0.1:{free_port()}")
    result = await publisher.publish(record_of(queue, new(1)))
    assert result.outcome is Outcome.UNAVAILABLE and result.reason == "connection"
    assert [wait for _, wait in retry_waits] == pytest.approx(SCHEDULE)


async def test_default_schedule_is_5_10_20_seconds() -> None:
    assert publish_settings("http://x", max_retry_attempts=3, retry_delay_ms=5000).retry_schedule() == [5, 10, 20]


async def test_400_goes_to_the_dead_letter_file_with_the_reason(api, make_publisher, queue, retry_waits) -> None:
    api.then(BAD_REQUEST)
    publisher = await make_publisher(api.url)
    record = record_of(queue, new(1))
    result = await publisher.publish(record)
    assert result.outcome is Outcome.REJECTED and result.http_status == 400
    assert settle(queue, [record], [result]) == (0, 1, 0)
    assert queue.depth == 0 and queue.dead_letters == 1
    assert b"Validation failed" in queue.files.dead_letter.read_bytes()
    assert b"text must be a string" in queue.files.dead_letter.read_bytes()
    assert retry_waits == [] and len(api.requests) == 1  # a 400 is not retried
    assert gauge("telegram_dead_letter_size") == 1


async def test_401_keeps_the_record_and_raises_the_token_alert(api, make_publisher, queue) -> None:
    api.then(UNAUTHORIZED)
    publisher = await make_publisher(api.url)
    record = record_of(queue, new(1))
    result = await publisher.publish(record)
    assert result.outcome is Outcome.UNAUTHORIZED
    settle(queue, [record], [result])
    assert queue.depth == 1 and queue.dead_letters == 0
    assert gauge("telegram_gateway_token_mismatch") == 1
    assert api.requests[0].headers["X-Gateway-Token"] == "t" * 40
    # Once the tokens match again the record is delivered and the alert clears.
    result = await publisher.publish(record)
    assert result.outcome is Outcome.ACKED
    assert gauge("telegram_gateway_token_mismatch") == 0


async def test_batch_answers_are_applied_one_by_one(api, make_publisher, queue) -> None:
    publisher = await make_publisher(api.url)
    records = queue.append([new(1), new(2), new(3)])
    api.stored[records[1].key] = 1  # already in the API
    results = await publisher.publish_batch(records)
    assert [r.status for r in results] == ["stored", "duplicate", "stored"]
    assert [r.path for r in api.requests] == ["/ingest/batch"]
    assert settle(queue, records, results) == (3, 0, 0) and queue.depth == 0


async def test_batch_with_an_invalid_element_dead_letters_only_that_one(api, make_publisher, queue) -> None:
    publisher = await make_publisher(api.url)
    good = record_of(queue, new(1))
    [bad] = queue.append_encoded([("file:events.jsonl:0", b'{"messageId": "x"}')])
    results = await publisher.publish_batch([good, bad])
    assert [r.outcome for r in results] == [Outcome.ACKED, Outcome.REJECTED]
    settle(queue, [good, bad], results)
    assert queue.depth == 0 and queue.dead_letters == 1


async def test_batch_refused_as_a_whole_falls_back_to_single_posts(api, make_publisher, queue) -> None:
    api.then(BAD_REQUEST)  # e.g. an API without /ingest/batch answering 400 to the envelope
    publisher = await make_publisher(api.url)
    records = queue.append([new(1), new(2)])
    results = await publisher.publish_batch(records)
    assert [r.status for r in results] == ["stored", "stored"]
    assert [r.path for r in api.requests] == ["/ingest/batch", "/ingest", "/ingest"]


async def test_each_publish_is_a_span_whose_trace_reaches_the_api(api, make_publisher, queue) -> None:
    exporter = InMemorySpanExporter()
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):  # the global provider can be set once per process
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    publisher = await make_publisher(api.url)
    await publisher.publish(record_of(queue, new(1)))
    [publish_span] = [s for s in exporter.get_finished_spans() if s.name == "gateway.publish"]
    traceparent = api.requests[0].headers["traceparent"]
    assert traceparent.split("-")[1] == format(publish_span.context.trace_id, "032x")


async def test_drainer_delivers_new_records_at_once_and_backs_off_while_down(api, make_publisher, tmp_path) -> None:
    queue = DurableQueue(tmp_path / "q.jsonl")
    queue.open()
    publisher = await make_publisher(api.url, max_retry_attempts=0)
    drainer = Drainer(queue, publisher, batch_size=10, backoff_initial=0.05, backoff_max=0.2)
    task = asyncio.create_task(drainer.run())
    queue.append([new(1)])
    drainer.wake()
    for _ in range(200):
        if not queue.depth:
            break
        await asyncio.sleep(0.01)
    assert queue.depth == 0 and len(api.requests) == 1
    api.default = UNAVAILABLE
    queue.append([new(2), new(3)])
    drainer.wake()
    await asyncio.sleep(0.5)
    assert queue.depth == 2 and drainer.backoff == 0.2  # capped
    api.default = OK
    for _ in range(100):
        if not queue.depth:
            break
        await asyncio.sleep(0.02)
    assert queue.depth == 0
    drainer.stop()
    await asyncio.wait_for(task, 5)
    queue.close()
    assert sorted(api.stored) == ["-1001649127710:1", "-1001649127710:2", "-1001649127710:3"]


# -- properties --------------------------------------------------------------------------------

async def test_stamina_counts_and_logs_each_retry_once(api, make_publisher, queue, caplog) -> None:
    from stamina.instrumentation import get_on_retry_hooks, set_on_retry_hooks

    from gateway.publisher import instrument_retries, on_retry

    def retries(number: int) -> float:
        return REGISTRY.get_sample_value("telegram_retry_attempts_total", {"attempt_number": str(number)}) or 0.0

    def stamina_retries() -> float:
        return sum(sample.value for family in REGISTRY.collect() if family.name == "stamina_retries"
                   for sample in family.samples if sample.name == "stamina_retries_total")

    previous = get_on_retry_hooks()
    instrument_retries()
    try:
        assert get_on_retry_hooks() == (on_retry,)  # stamina's own counter and logger are off
        before, before_stamina = [retries(1), retries(2), retries(3)], stamina_retries()
        api.then(UNAVAILABLE, UNAVAILABLE, OK)
        publisher = await make_publisher(api.url)
        with caplog.at_level("WARNING", logger="gateway.publisher"):
            result = await publisher.publish(record_of(queue, new(1)))
    finally:
        set_on_retry_hooks(previous)
    assert result.outcome is Outcome.ACKED
    assert [retries(1), retries(2), retries(3)] == [before[0] + 1, before[1] + 1, before[2]]
    assert stamina_retries() == before_stamina  # not counted a second time under stamina's own name
    lines = [r.getMessage() for r in caplog.records if r.name == "gateway.publisher"]
    assert len(lines) == 2 and all("503" in line for line in lines), lines
    assert lines[0].startswith("publish attempt 1 failed") and "retry 1 in" in lines[0]


ANSWERS = st.sampled_from([OK, UNAVAILABLE, TOO_MANY, TIMEOUT, BAD_REQUEST, UNAUTHORIZED, REJECT])


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(answers=st.lists(ANSWERS, max_size=6), retries=st.integers(0, 3), delay_ms=st.integers(1, 5))
def test_retry_waits_follow_the_schedule_whatever_the_answers(answers, retries, delay_ms) -> None:
    from stamina.instrumentation import get_on_retry_hooks, set_on_retry_hooks

    waits: list[tuple[int, float]] = []
    previous = get_on_retry_hooks()
    set_on_retry_hooks([lambda d: waits.append((d.retry_num, d.wait_for))])
    try:
        result, requests = asyncio.run(_publish_once(answers, retries, delay_ms))
    finally:
        set_on_retry_hooks(previous)
    schedule = publish_settings("http://x", max_retry_attempts=retries, retry_delay_ms=delay_ms).retry_schedule()
    # Each retry waits exactly its slot of the schedule; attempts never exceed 1 + retries.
    assert [wait for _, wait in waits] == pytest.approx(schedule[: len(waits)])
    assert [num for num, _ in waits] == list(range(1, len(waits) + 1))
    assert requests == len(waits) + 1 <= retries + 1
    transient = {UNAVAILABLE, TOO_MANY, TIMEOUT}
    script = answers + [OK] * 10
    first_final = next(i for i, a in enumerate(script) if a not in transient)
    if first_final > retries:
        assert result.outcome is Outcome.UNAVAILABLE and requests == retries + 1
    else:
        expected = {OK: Outcome.ACKED, BAD_REQUEST: Outcome.REJECTED, REJECT: Outcome.REJECTED,
                    UNAUTHORIZED: Outcome.UNAUTHORIZED}[script[first_final]]
        assert result.outcome is expected and requests == first_final + 1


async def _publish_once(answers, retries, delay_ms):
    from gateway.publisher import Publisher, create_session

    # The client timeout leaves room for a loaded machine: only the scripted TIMEOUT may time out.
    api = ScriptedAPI(timeout_sleep=0.6).then(*answers)
    runner = await start_api(api)
    settings_ = publish_settings(api.url, max_retry_attempts=retries, retry_delay_ms=delay_ms, timeout_seconds=0.3)
    try:
        async with create_session(settings_) as session:
            with tempfile.TemporaryDirectory() as folder:
                queue = DurableQueue(Path(folder) / "q.jsonl", fsync=False)
                queue.open()
                [record] = queue.append_encoded([("k", encode_payload(new(1)))])
                result = await Publisher(settings_, session).publish(record)
                queue.close()
        return result, len(api.requests)
    finally:
        await runner.cleanup()
