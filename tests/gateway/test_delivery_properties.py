"""Hypothesis stateful test of publisher + queue + drainer against a scripted API on loopback.

Under any sequence of API answers (stored, duplicate, 5xx, 429, timeout, 400, rejected, 401) and
crash-restarts of the gateway (files as a SIGKILL leaves them, sometimes with a torn last line),
every message is stored in the API at most once, and is stored or still queued or in the
dead-letter file; a record the API acknowledged is never sent again.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path

import msgspec
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from gateway.drainer import Drainer
from gateway.publisher import Publisher, create_session
from gateway.queue import DurableQueue

from .conftest import BAD_REQUEST, OK, REJECT, TIMEOUT, TOO_MANY, UNAUTHORIZED, UNAVAILABLE, ScriptedAPI, new, publish_settings, start_api
from .test_queue import crash

ANSWERS = st.lists(st.sampled_from([OK, OK, UNAVAILABLE, TOO_MANY, TIMEOUT, BAD_REQUEST, UNAUTHORIZED, REJECT]),
                   max_size=5)


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

    @rule(answers=ANSWERS)
    def drain(self, answers: list[str]) -> None:
        self.api.script.clear()
        self.api.then(*answers)
        before = {r.key for r in self.queue.pending()}
        drainer = Drainer(self.queue, Publisher(self.settings, self.session), batch_size=self.settings.batch_size,
                          backoff_initial=0.01, backoff_max=0.01)
        self.loop.run_until_complete(drainer.drain_once())
        dead = self._dead_keys()
        for key in before - {r.key for r in self.queue.pending()} - dead:
            self.acked_after.setdefault(key, len(self.api.requests))

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
        self.queue.close()
        self.loop.run_until_complete(self.session.close())
        self.loop.run_until_complete(self.runner.cleanup())
        self.loop.close()
        shutil.rmtree(self.dir, ignore_errors=True)


DeliveryMachine.TestCase.settings = settings(max_examples=40, stateful_step_count=15, deadline=None,
                                             suppress_health_check=[HealthCheck.too_slow])
test_delivery_under_any_api_answers_and_crashes = DeliveryMachine.TestCase
