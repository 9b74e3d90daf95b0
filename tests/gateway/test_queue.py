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
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from contracts import decode_payload, encode_payload, idempotency_key
from gateway.queue import DurableQueue, QueueLocked, QueueRecord, inspect_queue, record_crc
from gateway.source.file_source import FileSource

from tests.support.gateway import (DEEP, OK, POISON, UNAVAILABLE, Received, build, crash, deleted, edited, new,
                                   record_line, wait_for)


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


# -- poison lines and shared seqs (issue 16, items 3 and 4) ----------------------------------------

@pytest.mark.parametrize("kind", sorted(POISON))
def test_a_poison_line_is_quarantined_and_everything_else_delivered(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "q.jsonl"
    queue = reopen(path)
    records = queue.append([new(i) for i in range(1, 6)])
    crash(queue)
    lines = path.read_bytes().splitlines(keepends=True)
    lines.insert(2, POISON[kind])
    path.write_bytes(b"".join(lines))
    snapshot = inspect_queue(path)  # `gateway status` reads the same bytes without the lock
    assert (snapshot.depth, snapshot.unreadable_lines) == (5, 1)
    again = reopen(path)
    assert keys(again) == [r.key for r in records]
    assert again.recovery.quarantined == 1 and "line 3" in again.recovery.problems[0]
    [bad] = [msgspec.json.decode(line) for line in again.files.quarantine.read_bytes().splitlines()]
    # Kept whole (undecodable bytes backslash-escaped), with what is wrong with it.
    assert bad["lineNumber"] == 3 and bad["problem"]
    assert bad["line"] == POISON[kind].rstrip(b"\n").decode("utf-8", "backslashreplace")
    again.close()
    # Set aside once: the rewritten queue is clean, the next start finds nothing to quarantine.
    third = reopen(path)
    assert third.recovery.quarantined == 0 and third.quarantined == 1 and keys(third) == [r.key for r in records]
    third.close()


def test_a_nested_ack_line_is_ignored_not_fatal(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    queue = reopen(path)
    records = queue.append([new(1), new(2)])
    queue.ack([records[0].seq])
    crash(queue)
    with open(queue.files.acks, "ab") as fh:
        fh.write(b'{"seqs":' + b"[" * DEEP + b"]" * DEEP + b',"crc":0}\n')
    assert inspect_queue(path).depth == 1
    again = reopen(path)
    assert keys(again) == [records[1].key] and again.recovery.bad_ack_lines == 1
    again.close()


def test_the_checksum_is_checked_before_any_decoder_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import gateway.queue as module

    class Forbidden:
        def decode(self, line: bytes) -> None:
            raise AssertionError(f"decoder called on a line whose checksum fails: {line[:40]!r}")

    monkeypatch.setattr(module, "_record_decoder", Forbidden())
    good = record_line(1, "k1", b'{"a":1}')
    for line in (good.replace(b'{"a":1}', b'{"a":2}'), good.replace(b'"seq":1', b'"seq":2'),
                 good.replace(b'"k1"', b'"k2"'), good.replace(b'"crc":', b'"crc":1'), POISON["nested line"]):
        assert isinstance(module._decode_record(line.rstrip(b"\n")), str)


def test_a_key_with_escapes_still_checks_out(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    queue = reopen(path)
    [record] = queue.append_encoded([('file:ev"ents\\.jsonl:0 é', b'"not a payload"')])
    crash(queue)
    again = reopen(path)
    assert keys(again) == [record.key] and again.recovery.quarantined == 0
    again.close()


@settings(max_examples=150, deadline=None)
@given(position=st.integers(0, 10_000), value=st.integers(0, 255), which=st.integers(0, 3))
def test_any_single_byte_change_is_delivered_intact_or_quarantined_never_lost(position: int, value: int,
                                                                               which: int) -> None:
    """Flip any byte of any line (it may even become a newline): every other record is delivered,
    and the changed line is either still the same record or in the quarantine file, never gone."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="gwq-") as folder:
        path = Path(folder) / "q.jsonl"
        queue = reopen(path)
        records = queue.append([new(i, text=f"message {i}") for i in range(1, 5)])
        crash(queue)
        lines = path.read_bytes().splitlines(keepends=True)
        target = bytearray(lines[which])
        target[position % (len(target) - 1)] = value
        lines[which] = bytes(target)
        path.write_bytes(b"".join(lines))
        again = reopen(path)
        pending = {r.key: bytes(r.payload) for r in again.pending()}
        quarantined = again.files.quarantine.read_bytes().splitlines() if again.files.quarantine.exists() else []
        again.close()
    untouched = [r for i, r in enumerate(records) if i != which]
    assert all(pending.get(r.key) == bytes(r.payload) for r in untouched)
    changed = records[which]
    if pending.get(changed.key) == bytes(changed.payload):
        assert len(pending) == 4  # the change missed the checksummed part (e.g. queuedAt's digits)
    else:
        assert quarantined, "the changed record is neither delivered nor set aside"
        assert set(pending) == {r.key for r in untouched}


def _shared_seq_queue(path: Path) -> tuple[list[QueueRecord], bytes]:
    """Five records, then a sixth valid line that reuses the seq of the third."""
    queue = reopen(path)
    records = queue.append([new(i) for i in range(1, 6)])
    crash(queue)
    extra = encode_payload(new(500))
    line = record_line(records[2].seq, "-1001649127710:500", extra)
    with open(path, "ab") as fh:
        fh.write(line)
    return records, line


def test_two_lines_sharing_a_seq_are_both_kept_and_delivered(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    records, _ = _shared_seq_queue(path)
    snapshot = inspect_queue(path)
    assert (snapshot.depth, snapshot.shared_seq_lines, snapshot.unreadable_lines) == (6, 1, 0)
    queue = reopen(path)
    expected = [r.key for r in records] + ["-1001649127710:500"]
    assert keys(queue) == expected and queue.depth == 6 == snapshot.depth
    assert queue.recovery.renumbered == 1 and "seq 3 is used by another line too: kept as seq 6" in queue.recovery.problems[0]
    assert len({r.seq for r in queue.pending()}) == 6
    # Acknowledging the renumbered record acknowledges only it.
    queue.ack([queue.pending()[-1].seq])
    crash(queue)
    again = reopen(path)
    assert keys(again) == expected[:-1] and again.recovery.renumbered == 0
    again.close()


def test_a_shared_seq_that_was_acknowledged_sends_both_lines_again(tmp_path: Path) -> None:
    """The ack names seq 3, but two lines hold seq 3: which one the API has cannot be told, so
    both are delivered again (the API answers "duplicate" for the one it has), each under a fresh
    seq. A crash right after the start-up compaction (old acks still on disk) loses neither."""
    path = tmp_path / "q.jsonl"
    queue = reopen(path)
    records = queue.append([new(i) for i in range(1, 6)])
    queue.ack([records[2].seq])
    crash(queue)
    with open(path, "ab") as fh:
        fh.write(record_line(records[2].seq, "-1001649127710:500", encode_payload(new(500))))
    stale_acks = queue.files.acks.read_bytes()
    again = reopen(path)
    expected = {r.key for r in records} | {"-1001649127710:500"}
    assert set(keys(again)) == expected and again.recovery.renumbered == 2
    assert records[2].seq not in {r.seq for r in again.pending()}
    crash(again)
    queue.files.acks.write_bytes(stale_acks)  # the compaction renamed the file, the acks were not emptied yet
    third = reopen(path)
    assert set(keys(third)) == expected
    third.close()
