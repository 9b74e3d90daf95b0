"""The write-ahead queue on a real filesystem: durability (also as the API sees it), recovery, quarantine, lock."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import msgspec
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from contracts import decode_payload, encode_payload, idempotency_key
from gateway.queue import DurableQueue, QueueLocked, QueueRecord, inspect_queue, record_crc
from gateway.source.file_source import FileSource

from .conftest import OK, UNAVAILABLE, Received, deleted, edited, new
from .test_service import build, wait_for


def crash(queue: DurableQueue) -> None:
    """What a SIGKILL leaves: the files as written so far, no compaction, the lock released."""
    for fh in (queue._queue_fh, queue._ack_fh, queue._lock_fh):
        if fh is not None:
            fh.close()
    queue._queue_fh = queue._ack_fh = queue._lock_fh = None
    queue._close_reader()


def reopen(path: Path) -> DurableQueue:
    queue = DurableQueue(path)
    queue.open()
    return queue


def keys(queue: DurableQueue) -> list[str]:
    return [record.key for record in queue.pending()]


def test_append_is_on_disk_before_it_returns(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    queue = reopen(path)
    [record] = queue.append([new(1, "first")])
    # Another reader sees the line at once (written and fsync'd before append returned).
    lines = path.read_bytes().splitlines()
    assert len(lines) == 1
    stored = msgspec.json.decode(lines[0])
    assert stored["seq"] == record.seq and stored["key"] == record.key
    assert decode_payload(msgspec.json.encode(stored["payload"])).text == "first"
    assert inspect_queue(path).depth == 1
    queue.close()


class WriteAheadWitness:
    """The API's side of the write-ahead rule: on each request it reads the queue file afresh from
    disk (never the gateway's in-memory queue) and checks that every record received is there, as
    a complete checksummed line that an fsync of that very file already covered."""

    def __init__(self, queue_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.queue_path = queue_path
        self.requests_checked = 0
        self.problems: list[str] = []
        # (device, inode) -> the file's size at its latest fsync. The queue file is append-only
        # between compactions, and a compaction renames a new (fsync'd) file into place: bytes
        # below that size were on stable storage.
        self.fsynced_size: dict[tuple[int, int], int] = {}
        real_fsync = os.fsync

        def recording_fsync(fd: int) -> None:
            real_fsync(fd)
            status = os.fstat(fd)
            self.fsynced_size[(status.st_dev, status.st_ino)] = status.st_size

        monkeypatch.setattr(os, "fsync", recording_fsync)

    def check(self, request: Received) -> None:
        # The API runs on the gateway's event loop, so the file cannot change during this read.
        with open(self.queue_path, "rb") as fh:
            status = os.fstat(fh.fileno())
            content = fh.read()
        line_end: dict[str, int] = {}  # key -> byte offset just past its line
        offset = 0
        for line in content.splitlines(keepends=True):
            offset += len(line)
            if not line.endswith(b"\n"):
                continue  # a line still being written does not count
            record = msgspec.json.decode(line, type=QueueRecord)
            if record.crc == record_crc(record.seq, record.key, record.payload):
                line_end[record.key] = offset
        synced = self.fsynced_size.get((status.st_dev, status.st_ino), 0)
        for key in request.keys:
            if key not in line_end:
                self.problems.append(f"{request.path} received {key}, which is not in the queue file")
            elif line_end[key] > synced:
                self.problems.append(f"{request.path} received {key} before its queue line was fsync'd")
        self.requests_checked += 1


async def test_write_ahead_every_request_finds_its_records_fsynced_in_the_queue_file(
        tmp_path: Path, api, make_publisher, monkeypatch: pytest.MonkeyPatch) -> None:
    witness = WriteAheadWitness(tmp_path / "queue.jsonl", monkeypatch)
    api.on_request = witness.check
    events = tmp_path / "events.jsonl"

    def write_events(*payloads) -> set[str]:
        with open(events, "ab") as fh:
            fh.write(b"".join(encode_payload(p) + b"\n" for p in payloads))
        return {str(idempotency_key(p)) for p in payloads}

    def start(publisher):
        gateway = build(tmp_path, FileSource(events, tmp_path, poll_interval=0.01), publisher)
        return gateway, asyncio.create_task(gateway.run())

    publisher = await make_publisher(api.url)
    # A backlog published in a batch, whose first two attempts fail (the retries are checked too)...
    expected = write_events(new(1, "a"), edited(1, "b"), new(2))
    api.then(UNAVAILABLE, UNAVAILABLE)
    gateway, run = start(publisher)
    await wait_for(lambda: set(api.stored) == expected)
    # ...then the live path, one message at a time...
    expected |= write_events(new(3))
    await wait_for(lambda: set(api.stored) == expected)
    # ...then an outage: what arrives stays queued across a restart...
    api.default = UNAVAILABLE
    during_outage = write_events(new(4), deleted(2))
    await wait_for(lambda: any(during_outage & set(r.keys) for r in api.requests))
    gateway.stop()
    assert await asyncio.wait_for(run, 10) == 0
    # ...and the next start publishes it from the recovered (compacted, renamed) queue file.
    expected |= during_outage | write_events(new(5))
    api.default = OK
    gateway, run = start(publisher)
    await wait_for(lambda: set(api.stored) == expected)
    gateway.stop()
    assert await asyncio.wait_for(run, 10) == 0

    assert witness.problems == []
    assert witness.requests_checked == len(api.requests) >= 6
    assert {r.path for r in api.requests} == {"/ingest", "/ingest/batch"}


def test_ack_removes_and_restart_resumes_with_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    queue = reopen(path)
    records = queue.append([new(i) for i in (1, 2, 3, 4)])
    queue.ack([records[0].seq, records[2].seq])
    assert keys(queue) == [records[1].key, records[3].key]
    crash(queue)
    again = reopen(path)
    assert keys(again) == [records[1].key, records[3].key]
    assert again.recovery.pending == 2 and again.recovery.acknowledged == 2
    # New records never reuse a sequence number still referenced on disk.
    [fresh] = again.append([new(5)])
    assert fresh.seq > records[3].seq
    again.ack([r.seq for r in again.pending()])
    assert again.depth == 0
    again.close()
    # Everything acknowledged: the files are compacted to nothing.
    assert path.read_bytes() == b""
    assert reopen(path).depth == 0


def test_torn_last_line_is_quarantined_and_the_rest_delivered(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    queue = reopen(path)
    records = queue.append([new(1), new(2)])
    crash(queue)
    with open(path, "ab") as fh:  # the process died in the middle of writing a third line
        fh.write(b'{"seq":3,"key":"-1001649127710:3","payload":{"channelId":"-1001649')
    again = reopen(path)
    assert keys(again) == [r.key for r in records]
    assert again.recovery.quarantined == 1
    quarantined = [msgspec.json.decode(line) for line in again.files.quarantine.read_bytes().splitlines()]
    assert quarantined[0]["line"].startswith('{"seq":3')
    assert "torn" in quarantined[0]["problem"]
    # The queue file itself is clean again: the next append starts on a fresh line.
    again.append([new(4)])
    again.close()
    assert [r.key for r in reopen(path).pending()] == [records[0].key, records[1].key, "-1001649127710:4"]


def test_corrupt_middle_line_is_quarantined_not_dropped(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    queue = reopen(path)
    records = queue.append([new(1, "one"), new(2, "two"), new(3, "three")])
    crash(queue)
    lines = path.read_bytes().splitlines(keepends=True)
    lines[1] = lines[1].replace(b'"two"', b'"TWO"')  # bit rot: still JSON, checksum fails
    path.write_bytes(b"".join(lines))
    again = reopen(path)
    assert keys(again) == [records[0].key, records[2].key]
    [bad] = [msgspec.json.decode(line) for line in again.files.quarantine.read_bytes().splitlines()]
    assert bad["problem"] == "checksum mismatch" and '"TWO"' in bad["line"] and bad["lineNumber"] == 2
    assert inspect_queue(path).quarantined == 1


def test_dead_letters_keep_payload_and_reason(tmp_path: Path) -> None:
    queue = reopen(tmp_path / "q.jsonl")
    records = queue.append([new(1), new(2)])
    queue.dead_letter([(records[0], "Validation failed", ["text must be a string"], 400)])
    assert keys(queue) == [records[1].key]
    [letter] = [msgspec.json.decode(line) for line in queue.files.dead_letter.read_bytes().splitlines()]
    assert letter["reason"] == "Validation failed" and letter["httpStatus"] == 400
    assert letter["details"] == ["text must be a string"] and letter["payload"]["messageId"] == 1
    queue.close()
    snapshot = inspect_queue(tmp_path / "q.jsonl")
    assert snapshot.dead_letters == 1 and "Validation failed" in snapshot.last_dead_letter
    assert reopen(tmp_path / "q.jsonl").dead_letters == 1


def test_unreadable_ack_line_means_resend_not_loss(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    queue = reopen(path)
    records = queue.append([new(1), new(2)])
    queue.ack([records[0].seq])
    crash(queue)
    acks = queue.files.acks
    acks.write_bytes(acks.read_bytes().replace(b'"seqs":[1]', b'"seqs":[2]'))  # crc no longer matches
    again = reopen(path)
    assert keys(again) == [records[0].key, records[1].key]  # sent again; the API deduplicates
    assert again.recovery.bad_ack_lines == 1


def test_lock_refuses_a_second_process(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    queue = reopen(path)
    script = textwrap.dedent(f"""
        import sys
        from gateway.queue import DurableQueue, QueueLocked
        try:
            DurableQueue({str(path)!r}).open(lock_timeout=0.2)
        except QueueLocked as exc:
            print("locked:", exc); sys.exit(3)
        sys.exit(0)
    """)
    held = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert held.returncode == 3, held.stderr
    assert "in use by another gateway process" in held.stdout
    assert inspect_queue(path).locked
    queue.close()
    free = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert free.returncode == 0, free.stdout + free.stderr
    assert not inspect_queue(path).locked


def test_same_process_second_open_is_refused(tmp_path: Path) -> None:
    first = reopen(tmp_path / "q.jsonl")
    with pytest.raises(QueueLocked):
        DurableQueue(tmp_path / "q.jsonl").open(lock_timeout=0)
    first.close()


def test_failed_append_leaves_no_partial_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "q.jsonl"
    queue = reopen(path)
    [kept] = queue.append([new(1)])
    import gateway.queue as module

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(module.os, "fsync", disk_full)
    with pytest.raises(OSError):
        queue.append([new(2)])
    monkeypatch.undo()
    assert keys(queue) == [kept.key]
    [after] = queue.append([new(3)])
    assert after.seq == kept.seq + 1
    crash(queue)
    again = reopen(path)
    assert keys(again) == [kept.key, after.key] and again.recovery.quarantined == 0


class QueueMachine(RuleBasedStateMachine):
    """Any interleaving of append / ack / crash (with or without a torn write) / clean restart:
    every appended record is pending until acknowledged, and an acknowledged one never returns."""

    def __init__(self) -> None:
        super().__init__()
        import tempfile

        self.dir = Path(tempfile.mkdtemp(prefix="gwq-"))
        self.path = self.dir / "q.jsonl"
        self.queue = reopen(self.path)
        self.pending: dict[str, int] = {}  # key -> seq (model)
        self.acked: set[str] = set()
        self.next_id = 1

    @rule(count=st.integers(1, 4))
    def append(self, count: int) -> None:
        payloads = [new(self.next_id + i) for i in range(count)]
        self.next_id += count
        for record in self.queue.append(payloads):
            self.pending[record.key] = record.seq

    @precondition(lambda self: self.pending)
    @rule(data=st.data())
    def ack(self, data) -> None:
        chosen = data.draw(st.lists(st.sampled_from(sorted(self.pending)), min_size=1, unique=True))
        self.queue.ack([self.pending[key] for key in chosen])
        for key in chosen:
            del self.pending[key]
            self.acked.add(key)

    @rule(torn=st.booleans())
    def crash_and_restart(self, torn: bool) -> None:
        crash(self.queue)
        if torn:
            with open(self.path, "ab") as fh:
                fh.write(b'{"seq":999999,"key":"x","payl')
        self.queue = reopen(self.path)  # the model is unchanged: a restart may lose nothing

    @rule()
    def clean_restart(self) -> None:
        self.queue.close()
        self.queue = reopen(self.path)  # the model is unchanged: a restart may lose nothing

    @invariant()
    def nothing_lost_nothing_redelivered(self) -> None:
        on_disk = [r.key for r in self.queue.pending()]
        assert len(on_disk) == len(set(on_disk))
        assert set(on_disk) == set(self.pending)
        assert not set(on_disk) & self.acked

    def teardown(self) -> None:
        self.queue.close()
        import shutil

        shutil.rmtree(self.dir, ignore_errors=True)


QueueMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=25, deadline=None,
                                          suppress_health_check=[HealthCheck.too_slow])
test_queue_interleavings = QueueMachine.TestCase
