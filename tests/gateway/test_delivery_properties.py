"""Hypothesis stateful test of publisher + queue + drainer against a scripted API on loopback.

Under any sequence of API answers (stored, duplicate, 5xx, 429, timeout, 400, rejected, 401) and
crash-restarts of the gateway (files as a SIGKILL leaves them, sometimes with a torn last line),
every message is stored in the API at most once, and is stored or still queued or in the
dead-letter file; a record the API acknowledged is never sent again. Each publish (single or
batch) waits exactly the configured retry schedule between its attempts: a prefix of it when an
attempt got a final answer, all of it when the publish gave up on a transient failure.
"""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from stamina.instrumentation import RetryDetails, get_on_retry_hooks, set_on_retry_hooks

from gateway.drainer import Drainer
from gateway.publisher import Outcome, Publisher, PublishResult, create_session
from gateway.queue import DurableQueue, QueueRecord

from tests.support.gateway import (BAD_REQUEST, OK, REJECT, TIMEOUT, TOO_MANY, UNAUTHORIZED, UNAVAILABLE, ScriptedAPI,
                                   crash, new, publish_settings, start_api)

ANSWERS = st.lists(st.sampled_from([OK, OK, UNAVAILABLE, TOO_MANY, TIMEOUT, BAD_REQUEST, UNAUTHORIZED, REJECT]),
                   max_size=5)
# Sometimes the API is down for a few attempts first: long enough, a publish waits its whole schedule.
OUTAGE = st.lists(st.sampled_from([UNAVAILABLE, TOO_MANY, TIMEOUT]), min_size=1, max_size=4)
SCRIPTS = st.one_of(ANSWERS, st.tuples(OUTAGE, ANSWERS).map(lambda parts: parts[0] + parts[1]))
# PublishResult.reason of the failures the publisher retries (see publisher.TransientError).
TRANSIENT_REASONS = {"timeout", "connection", "http_429", "http_5xx"}


@dataclass
class RetriedPublish:
    """One publish with its own retry schedule, and the waits stamina chose before each retry."""

    kind: str  # "single" or "batch"
    waits: list[tuple[int, float]] = field(default_factory=list)  # (retry number, seconds)
    # A batch the API refused as a whole, then published record by record (each a publish of its own).
    fell_back: bool = False
    # Ended on a transient failure: only allowed once the whole schedule was waited.
    gave_up: bool = False


class TrackingPublisher(Publisher):
    """A Publisher that keeps track of which publish is running, so that the retry waits stamina
    reports (a process-wide hook) can be checked against the schedule publish by publish."""

    def __init__(self, settings, session, publishes: list[RetriedPublish]) -> None:
        super().__init__(settings, session)
        self.publishes = publishes
        self.running: list[RetriedPublish] = []  # a batch falling back runs single publishes inside it

    def on_retry(self, details: RetryDetails) -> None:
        self.running[-1].waits.append((details.retry_num, details.wait_for))

    async def publish(self, record: QueueRecord) -> PublishResult:
        return await self._tracked("single", super().publish(record))

    async def publish_batch(self, records: list[QueueRecord]) -> list[PublishResult]:
        if len(records) == 1:
            return await super().publish_batch(records)  # a single publish (tracked as one)
        return await self._tracked("batch", super().publish_batch(records))

    async def _tracked(self, kind: str, publishing):
        current = RetriedPublish(kind)
        if self.running:
            self.running[-1].fell_back = True
        self.running.append(current)
        try:
            result = await publishing
        finally:
            self.running.pop()
            self.publishes.append(current)
        results = result if isinstance(result, list) else [result]
        current.gave_up = not current.fell_back and all(
            r.outcome is Outcome.UNAVAILABLE and r.reason in TRANSIENT_REASONS for r in results)
        return result


class DeliveryMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.dir = Path(tempfile.mkdtemp(prefix="gwdeliver-"))
        self.api = ScriptedAPI(timeout_sleep=0.06)
        self.runner = self.loop.run_until_complete(start_api(self.api))
        self.settings = publish_settings(self.api.url, max_retry_attempts=2, retry_delay_ms=1, timeout_seconds=0.03,
                                         batch_size=4)
        self.session = self.loop.run_until_complete(self._session())
        self.queue = self._open()
        self.sent: set[str] = set()
        self.acked_after: dict[str, int] = {}  # key -> number of requests when it was acknowledged
        self.next_id = 1
        # stamina reports each scheduled retry to these hooks; the drain rule checks them.
        self.publishes: list[RetriedPublish] = []
        self.publisher: TrackingPublisher | None = None
        self.previous_retry_hooks = get_on_retry_hooks()
        set_on_retry_hooks([lambda details: self.publisher.on_retry(details)])

    async def _session(self):
        return create_session(self.settings)

    def _open(self) -> DurableQueue:
        queue = DurableQueue(self.dir / "q.jsonl")
        queue.open()
        return queue

    def _dead_keys(self) -> set[str]:
        path = self.queue.files.dead_letter
        if not path.exists():
            return set()
        return {msgspec.json.decode(line)["key"] for line in path.read_bytes().splitlines() if line.strip()}

    @rule(count=st.integers(1, 5))
    def messages_arrive(self, count: int) -> None:
        payloads = [new(self.next_id + i) for i in range(count)]
        self.next_id += count
        self.queue.append(payloads)
        self.sent.update(r.key for r in self.queue.pending()[-count:])

    # Waits of a few milliseconds: the schedule is checked, the test stays fast. A batch size of 1
    # publishes record by record (/ingest), 4 in batches (/ingest/batch).
    @rule(answers=SCRIPTS, retries=st.integers(0, 3), delay_ms=st.integers(1, 3), batch_size=st.sampled_from([1, 4]))
    def drain(self, answers: list[str], retries: int, delay_ms: int, batch_size: int) -> None:
        self.api.script.clear()
        self.api.then(*answers)
        before = {r.key for r in self.queue.pending()}
        drain_settings = dataclasses.replace(self.settings, max_retry_attempts=retries, retry_delay_ms=delay_ms)
        self.publisher = TrackingPublisher(drain_settings, self.session, self.publishes)
        drainer = Drainer(self.queue, self.publisher, batch_size=batch_size, backoff_initial=0.01, backoff_max=0.01)
        self.loop.run_until_complete(drainer.drain_once())
        dead = self._dead_keys()
        for key in before - {r.key for r in self.queue.pending()} - dead:
            self.acked_after.setdefault(key, len(self.api.requests))
        self._check_retry_waits(drain_settings.retry_schedule())

    def _check_retry_waits(self, schedule: list[float]) -> None:
        for publish in self.publishes:
            numbers = [number for number, _ in publish.waits]
            waits = [wait for _, wait in publish.waits]
            # Each publish starts the schedule afresh, and never waits longer or more often.
            assert numbers == list(range(1, len(waits) + 1)), publish
            expected = schedule if publish.gave_up else schedule[:len(waits)]
            assert waits == pytest.approx(expected), publish
            # What was covered (pytest --hypothesis-show-statistics).
            event(f"{publish.kind} publish: {len(waits)} retries{', then gave up' if publish.gave_up else ''}")
        self.publishes.clear()

    @rule(torn=st.booleans())
    def gateway_crashes_and_restarts(self, torn: bool) -> None:
        crash(self.queue)
        if torn:
            with open(self.queue.files.path, "ab") as fh:
                fh.write(b'{"seq":77777,"key":"-1001649127710:77777","payload":{"chan')
        self.queue = self._open()

    @invariant()
    def every_message_is_stored_once_or_queued_or_dead(self) -> None:
        pending = {r.key for r in self.queue.pending()}
        dead = self._dead_keys()
        for key in self.sent:
            assert self.api.stored[key] <= 1
            assert self.api.stored[key] == 1 or key in pending or key in dead, key
        # An acknowledged record is gone from the queue and never sent again.
        for key, count in self.acked_after.items():
            assert key not in pending
            assert all(key not in request.keys for request in self.api.requests[count:]), key

    def teardown(self) -> None:
        set_on_retry_hooks(self.previous_retry_hooks)
        self.queue.close()
        self.loop.run_until_complete(self.session.close())
        self.loop.run_until_complete(self.runner.cleanup())
        self.loop.close()
        shutil.rmtree(self.dir, ignore_errors=True)


DeliveryMachine.TestCase.settings = settings(max_examples=40, stateful_step_count=15, deadline=None,
                                             suppress_health_check=[HealthCheck.too_slow])
test_delivery_under_any_api_answers_and_crashes = DeliveryMachine.TestCase
