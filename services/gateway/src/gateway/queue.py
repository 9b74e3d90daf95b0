"""The write-ahead queue: every payload is on disk (fsync'd) before any attempt to publish it.

Files, all beside `FAILURE_QUEUE_PATH` (default `./data/failure-queue.jsonl`):

- `failure-queue.jsonl`   one record a line: `{"seq","key","payload","queuedAt","crc"}`; `crc` is the
                          CRC-32 of seq, key and the payload's exact bytes. Append-only.
- `failure-queue.jsonl.acks`  append-only acknowledgement log, one line per acknowledged group:
                          `{"seqs":[...],"crc":N}`. A record is done once its seq is in here.
- `failure-queue.dead-letter.jsonl`  records the API refused (400) with its reason.
- `failure-queue.quarantine.jsonl`   lines found at start that are not records (torn, corrupt,
                          undecodable), with the problem; the line itself as text.
- `failure-queue.jsonl.lock`  an flock held by the one process that owns the queue.

In memory the queue keeps only each pending record's position in the file; payloads are read back
(and checksummed again) a batch at a time, so a long outage's backlog costs little memory.

Why this is crash-safe:
- append = write + fsync before anyone may publish the record (write-ahead);
- ack = append + fsync of the ack line *after* the API answered stored/duplicate; a crash
  before the ack line lands only means the record is sent again (the API deduplicates by key);
- compaction (when everything is acknowledged, or the ack log grew large) writes the pending
  records to a temp file, fsyncs it, renames it over the queue, fsyncs the folder, and only
  then empties the ack log. A crash at any point leaves either the old file plus a complete ack
  log, or the new file plus acks of seqs it no longer holds (harmless: seqs are never reused
  while they can still be referenced).
- a line is trusted only after its checksum matched, and the checksum is checked on the line's
  raw bytes before any JSON parser sees it (the writer's layout is fixed: `{"seq":…,"key":"…",
  "payload":…,"queuedAt":…,"crc":…}`, so seq, key and payload bytes are sliced out by an anchored,
  linear-time match). Decoding never raises: whatever a line holds (a torn tail after a crash, a
  flipped byte, 10,000 levels of nesting, invalid UTF-8) it is either a record or a problem.
- at start, every line that is not a record (layout, checksum or decoding failed) is copied to
  the quarantine file (fsync'd) before the queue is rewritten without it; everything else is
  delivered, and `open()` reports what it set aside.
- a seq names one record. Two valid lines with the same seq (a hand-merged file, or an append whose
  fsync failed and whose cut-off failed too) are both kept: the later line gets a fresh seq at
  start (rewritten by the start-up compaction), and when that seq was acknowledged, both lines are
  delivered again, since the ack cannot say which one it was for (the API deduplicates by key).
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import time
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

from contracts import MessagePayload, encode_payload, idempotency_key

log = logging.getLogger(__name__)


class QueueRecord(msgspec.Struct, kw_only=True, rename="camel"):
    seq: int
    key: str
    payload: msgspec.Raw
    queued_at: float
    crc: int = 0


class AckLine(msgspec.Struct):
    seqs: list[int]
    crc: int


class DeadLetter(msgspec.Struct, kw_only=True, rename="camel", omit_defaults=True):
    seq: int
    key: str
    payload: msgspec.Raw
    reason: str
    details: list[str] = []
    http_status: int | None = None
    dead_at: float = 0.0


class QuarantinedLine(msgspec.Struct, kw_only=True, rename="camel"):
    found_at: float
    source: str
    line_number: int
    problem: str
    # The line's bytes as text (undecodable bytes backslash-escaped), so nothing is lost.
    line: str


class QueueLocked(RuntimeError):
    """Another process (a running gateway, or `gateway replay`) owns this queue."""


_encoder = msgspec.json.Encoder()
_record_decoder = msgspec.json.Decoder(QueueRecord)
_ack_decoder = msgspec.json.Decoder(AckLine)

# Compact when this many acknowledged records sit in the file (and at least as many as pending).
COMPACT_AFTER_ACKS = 10_000


def record_crc(seq: int, key: str, payload: bytes | msgspec.Raw) -> int:
    return zlib.crc32(bytes(payload), zlib.crc32(f"{seq}|{key}|".encode()))


def _ack_crc(seqs: Sequence[int]) -> int:
    return zlib.crc32(",".join(map(str, seqs)).encode())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass
class Recovery:
    """What `open()` found on disk."""

    pending: int = 0
    acknowledged: int = 0
    quarantined: int = 0
    bad_ack_lines: int = 0
    # Valid lines that shared a seq with another line: given a fresh seq, all delivered.
    renumbered: int = 0
    problems: list[str] = field(default_factory=list)


@dataclass
class QueueFiles:
    path: Path

    @property
    def acks(self) -> Path:
        return self.path.with_name(self.path.name + ".acks")

    @property
    def lock(self) -> Path:
        return self.path.with_name(self.path.name + ".lock")

    @property
    def dead_letter(self) -> Path:
        return self.path.with_name(self.path.stem + ".dead-letter.jsonl")

    @property
    def quarantine(self) -> Path:
        return self.path.with_name(self.path.stem + ".quarantine.jsonl")

    @property
    def tmp(self) -> Path:
        return self.path.with_name(self.path.name + ".tmp")


def _iter_lines(path: Path) -> Iterator[tuple[int, int, bytes, bool]]:
    """(line number, byte offset, line without its newline, complete?) — streamed, so a large
    queue is never held in memory. Only the last line can be incomplete (a torn write)."""
    try:
        fh = open(path, "rb")
    except FileNotFoundError:
        return
    offset = 0
    with fh:
        for number, line in enumerate(fh, start=1):
            complete = line.endswith(b"\n")
            yield number, offset, line[:-1] if complete else line, complete
            offset += len(line)


class QueueCorrupted(RuntimeError):
    """A pending line changed on disk after it was checked (the next start quarantines it)."""


# Everything a JSON decoder can raise on hostile bytes: msgspec's own errors, RecursionError on
# deep nesting (msgspec gives up below ~1,000 levels), UnicodeDecodeError (a ValueError) on bad UTF-8.
_UNDECODABLE = (msgspec.DecodeError, msgspec.ValidationError, RecursionError, ValueError)

# The writer's layout (msgspec, QueueRecord's field order, no whitespace). The head is matched at
# the line's start; the tail is the line's last `,"queuedAt":` (a payload is JSON, so inside it
# that byte sequence can only belong to a nested object, which comes before the record's own).
_RECORD_HEAD = re.compile(rb'\{"seq":(0|[1-9][0-9]{0,18}),"key":"((?:[^"\\]|\\.)*)","payload":')
_RECORD_TAIL = re.compile(rb',"queuedAt":(-?[0-9][0-9.eE+-]{0,31}),"crc":([0-9]{1,10})\}')
_TAIL_START = b',"queuedAt":'


def _raw_crc_problem(line: bytes) -> str | None:
    """Check a line's checksum on its raw bytes, before any JSON parser sees them."""
    head = _RECORD_HEAD.match(line)
    if head is None:
        return "not a queue record (unexpected layout)"
    tail_at = line.rfind(_TAIL_START)
    tail = _RECORD_TAIL.fullmatch(line, tail_at) if tail_at >= head.end() else None
    if tail is None:
        return "not a queue record (unexpected layout)"
    key = head[2]
    if b"\\" in key:  # an escaped key: its text, as the writer checksummed it
        try:
            key = msgspec.json.decode(b'"' + key + b'"', type=str).encode()
        except _UNDECODABLE as exc:
            return f"undecodable key: {exc}"
    payload = line[head.end():tail_at]
    if int(tail[2]) != zlib.crc32(payload, zlib.crc32(b"%d|%s|" % (int(head[1]), key))):
        return "checksum mismatch"
    return None


def _decode_record(line: bytes) -> QueueRecord | str:
    """The record, or a description of what is wrong with the line. Never raises."""
    problem = _raw_crc_problem(line)
    if problem is not None:
        return problem
    try:
        # JSON is UTF-8; msgspec checks that only in the strings it decodes, not inside the raw
        # payload it keeps, so the whole line is checked here (a payload nobody could read back
        # would otherwise travel on to the API and the dead-letter file).
        line.decode("utf-8")
        record = _record_decoder.decode(line)
    except _UNDECODABLE as exc:
        return f"undecodable: {type(exc).__name__}: {exc}"
    if record.crc != record_crc(record.seq, record.key, record.payload):
        return "checksum mismatch"  # the decoded fields differ from the sliced ones
    return record


_ACK_LINE = re.compile(rb'\{"seqs":\[((?:[0-9]{1,19}(?:,[0-9]{1,19})*)?)\],"crc":([0-9]{1,10})\}')


def _decode_ack(line: bytes) -> list[int] | None:
    """The seqs of an ack line, or None when it is not one (checksum checked on the raw bytes:
    the CRC covers exactly the comma-separated seqs the writer put between the brackets)."""
    match = _ACK_LINE.fullmatch(line)
    if match is None or int(match[2]) != zlib.crc32(match[1]):
        return None
    return [int(seq) for seq in match[1].split(b",")] if match[1] else []


def _read_acks(path: Path) -> tuple[set[int], int]:
    acked: set[int] = set()
    bad = 0
    for _, _, line, _ in _iter_lines(path):
        if not line.strip():
            continue
        seqs = _decode_ack(line)
        if seqs is None:
            bad += 1
        else:
            acked.update(seqs)
    return acked, bad


@dataclass
class BadLine:
    line_number: int
    problem: str
    line: bytes


@dataclass
class _Scan:
    """One pass over the queue file (shared by recovery and the read-only `inspect_queue`)."""

    # seq -> (offset, length) of the pending records that keep their seq, in file order.
    pending: dict[int, tuple[int, int]] = field(default_factory=dict)
    # (line number, offset, length) of valid lines that need a fresh seq: a later line whose seq
    # an earlier line already has, or every line of a duplicated seq that was acknowledged.
    renumber: list[tuple[int, int, int]] = field(default_factory=list)
    ambiguous_acks: set[int] = field(default_factory=set)
    acknowledged: int = 0
    bad: list[BadLine] = field(default_factory=list)
    max_seq: int = 0
    oldest_queued_at: float | None = None

    @property
    def depth(self) -> int:
        return len(self.pending) + len(self.renumber)


def _scan_queue_file(path: Path, acked: set[int], *, writer_active: bool = False) -> _Scan:
    """Classify every line: pending, acknowledged, needing a fresh seq, or bad.

    `writer_active`: the owner is running, so a last line without its newline is a write in
    progress, not a torn one (status reads the files while the gateway appends)."""
    scan = _Scan()
    acked_lines: dict[int, tuple[int, int, int]] = {}  # seq -> (line number, offset, length)
    for number, offset, line, complete in _iter_lines(path):
        if not line.strip():
            continue
        record = _decode_record(line)
        if isinstance(record, str):
            if not complete and writer_active:
                continue
            # A last line without its newline is a write the process never finished; a
            # complete-but-checksummed one is delivered like any other (only the newline is missing).
            problem = record if complete else "torn last line (no newline: the process stopped mid-write)"
            scan.bad.append(BadLine(number, problem, line))
            continue
        seq = record.seq
        scan.max_seq = max(scan.max_seq, seq)
        if seq in scan.pending or seq in acked_lines or seq in scan.ambiguous_acks:
            if seq in acked_lines:
                # Which of the lines the ack was for cannot be told: deliver every one of them
                # again, each under a fresh seq (a stale ack of `seq` must not match any of them).
                scan.renumber.append(acked_lines.pop(seq))
                scan.acknowledged -= 1
                scan.ambiguous_acks.add(seq)
            scan.renumber.append((number, offset, len(line)))
        elif seq in acked:
            acked_lines[seq] = (number, offset, len(line))
            scan.acknowledged += 1
            continue
        else:
            scan.pending[seq] = (offset, len(line))
        if scan.oldest_queued_at is None or record.queued_at < scan.oldest_queued_at:
            scan.oldest_queued_at = record.queued_at
    return scan


class DurableQueue:
    """The gateway's queue of payloads not yet acknowledged by the API (one owner process)."""

    def __init__(self, path: Path | str, *, fsync: bool = True) -> None:
        self.files = QueueFiles(Path(path))
        self._fsync = fsync
        # seq -> (offset, length) of its line in the queue file. Payloads stay on disk and are
        # read back in batches. Each pending record still costs about 200 bytes here (the dict
        # entry, its int key, the tuple and its ints): 1,000,000 pending records ≈ 200 MB
        # (measured: a 1M-message `gateway import` with the API down peaked at 253 MB RSS).
        self._pending: dict[int, tuple[int, int]] = {}
        self._read_fd: int | None = None
        # seq -> the line to write instead of the one on disk (renumbered at recovery; the
        # start-up compaction writes them and empties this).
        self._rewrites: dict[int, bytes] = {}
        self._next_seq = 1
        self._acked_in_file = 0
        self._queue_fh = None
        self._ack_fh = None
        self._lock_fh = None
        self.dead_letters = 0
        self.quarantined = 0  # lines in the quarantine file (this run's and earlier ones)
        self._quarantine_seen: tuple[int, int, int] | None = None
        self.recovery = Recovery()

    # -- lifecycle ---------------------------------------------------------------------------

    def open(self, lock_timeout: float = 2.0) -> Recovery:
        """Take the lock, recover the files (quarantine bad lines, apply acks), compact.

        The lock is retried for `lock_timeout` seconds: a restarted gateway may start while its
        predecessor is still flushing, and `gateway status` holds the lock for an instant."""
        self.files.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock_fh = open(self.files.lock, "a+b")
        deadline = time.monotonic() + lock_timeout
        while True:
            try:
                fcntl.flock(self._lock_fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    self._lock_fh.close()
                    self._lock_fh = None
                    raise QueueLocked(f"{self.files.path} is in use by another gateway process "
                                      f"(lock {self.files.lock.name})") from None
                time.sleep(0.05)
        self.files.tmp.unlink(missing_ok=True)  # a compaction that never reached its rename
        self.recovery = self._recover()
        self.dead_letters = count_lines(self.files.dead_letter)
        self.recount_quarantine()
        # Start from a clean file: acknowledged and quarantined lines go, a torn tail is cut off.
        self._compact(force=True)
        return self.recovery

    def close(self) -> None:
        """Flush everything to disk and release the lock (SIGTERM path)."""
        if self._lock_fh is None:
            return
        if not self._pending:
            self._compact()
        for fh in (self._queue_fh, self._ack_fh):
            if fh is not None:
                fh.flush()
                os.fsync(fh.fileno())
                fh.close()
        self._queue_fh = self._ack_fh = None
        self._close_reader()
        fcntl.flock(self._lock_fh, fcntl.LOCK_UN)
        self._lock_fh.close()
        self._lock_fh = None

    def __enter__(self) -> "DurableQueue":
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _recover(self) -> Recovery:
        report = Recovery()
        acked, report.bad_ack_lines = _read_acks(self.files.acks)
        if report.bad_ack_lines:
            # Ack lines are not data: losing one means a record is sent again and deduplicated.
            report.problems.append(f"{report.bad_ack_lines} unreadable ack line(s) ignored (records will be re-sent)")
        scan = _scan_queue_file(self.files.path, acked)
        self._pending = scan.pending
        self._next_seq = max(scan.max_seq, max(acked, default=0)) + 1
        if scan.bad:
            now = time.time()
            self._append_durably(self.files.quarantine, b"".join(
                _encoder.encode(QuarantinedLine(found_at=now, source=self.files.path.name, line_number=bad.line_number,
                                                problem=bad.problem, line=bad.line.decode("utf-8", "backslashreplace")))
                + b"\n" for bad in scan.bad))
            for bad in scan.bad:
                report.problems.append(f"line {bad.line_number}: {bad.problem} (moved to {self.files.quarantine.name})")
        for number, offset, length in scan.renumber:
            # The line was valid a moment ago; the start-up compaction writes it under its new seq.
            old = _decode_record(self._read_line(offset, length))
            if isinstance(old, str):
                raise QueueCorrupted(f"{self.files.path}: line {number} changed on disk during recovery ({old})")
            seq = self._next_seq
            self._next_seq += 1
            line = _encoder.encode(QueueRecord(seq=seq, key=old.key, payload=old.payload, queued_at=old.queued_at,
                                               crc=record_crc(seq, old.key, old.payload)))
            self._rewrites[seq] = line
            self._pending[seq] = (offset, length)
            resent = " (its ack could be for either line: both are sent again)" if old.seq in scan.ambiguous_acks else ""
            report.problems.append(f"line {number}: seq {old.seq} is used by another line too: "
                                   f"kept as seq {seq}, both delivered{resent}")
        report.renumbered = len(scan.renumber)
        report.quarantined = len(scan.bad)
        report.acknowledged = scan.acknowledged
        report.pending = len(self._pending)
        return report

    def recount_quarantine(self) -> int:
        """Lines in the quarantine file now. Only this process's start-up writes to it, but an
        operator who looked at the lines (and re-fed the recoverable ones) moves it away: /health
        and the gauge then follow without a restart. Recounted only when the file changed."""
        try:
            stat = os.stat(self.files.quarantine)
            seen: tuple[int, int, int] | None = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
        except FileNotFoundError:
            seen = None
        except OSError:
            return self.quarantined
        if seen != self._quarantine_seen:
            try:
                self.quarantined = count_lines(self.files.quarantine) if seen else 0
            except OSError:
                return self.quarantined
            self._quarantine_seen = seen
        return self.quarantined

    # -- writing -----------------------------------------------------------------------------

    def append(self, payloads: Iterable[MessagePayload]) -> list[QueueRecord]:
        """Write payloads durably (one fsync for the group) and return their records."""
        return self.append_encoded((str(idempotency_key(p)), encode_payload(p)) for p in payloads)

    def append_encoded(self, items: Iterable[tuple[str, bytes]]) -> list[QueueRecord]:
        records = []
        chunks = []
        now = time.time()
        for key, payload in items:
            seq = self._next_seq
            self._next_seq += 1
            record = QueueRecord(seq=seq, key=key, payload=msgspec.Raw(payload), queued_at=now,
                                 crc=record_crc(seq, key, payload))
            records.append(record)
            chunks.append(_encoder.encode(record) + b"\n")
        if not records:
            return records
        fh = self._queue_file()
        start = fh.tell()
        try:
            fh.write(b"".join(chunks))
            fh.flush()
            if self._fsync:
                os.fsync(fh.fileno())
        except OSError:
            # Disk full or similar: cut the partial write off so the next append does not glue
            # itself to a torn line, and let the caller know nothing was queued.
            self._next_seq = records[0].seq
            self._truncate_queue_file(start)
            raise
        position = start
        for record, chunk in zip(records, chunks):
            self._pending[record.seq] = (position, len(chunk) - 1)
            position += len(chunk)
        return records

    def ack(self, seqs: Sequence[int]) -> None:
        """The API holds these records (stored or duplicate): record that, then forget them."""
        seqs = [seq for seq in seqs if seq in self._pending]
        if not seqs:
            return
        fh = self._ack_file()
        fh.write(_encoder.encode(AckLine(seqs=list(seqs), crc=_ack_crc(seqs))) + b"\n")
        fh.flush()
        if self._fsync:
            os.fsync(fh.fileno())
        for seq in seqs:
            del self._pending[seq]
        self._acked_in_file += len(seqs)
        if not self._pending or (self._acked_in_file >= COMPACT_AFTER_ACKS and self._acked_in_file >= len(self._pending)):
            self._compact()

    def dead_letter(self, items: Sequence[tuple[QueueRecord, str, list[str], int | None]]) -> None:
        """Move refused records to the dead-letter file (with the API's reason), then ack them."""
        if not items:
            return
        now = time.time()
        body = b"".join(
            _encoder.encode(DeadLetter(seq=r.seq, key=r.key, payload=r.payload, reason=reason, details=details,
                                       http_status=status, dead_at=now)) + b"\n"
            for r, reason, details, status in items
        )
        self._append_durably(self.files.dead_letter, body)
        self.dead_letters += len(items)
        self.ack([r.seq for r, *_ in items])

    # -- reading -----------------------------------------------------------------------------

    def pending(self, limit: int | None = None) -> list[QueueRecord]:
        """The oldest pending records first (read back from the file and checksummed again)."""
        out = []
        for seq, (offset, length) in self._pending.items():
            if limit is not None and len(out) >= limit:
                break
            out.append(self._read_record(seq, offset, length))
        return out

    def pending_keys(self) -> set[str]:
        return {record.key for record in self.pending()}

    @property
    def depth(self) -> int:
        return len(self._pending)

    # -- internals ---------------------------------------------------------------------------

    def _read_line(self, offset: int, length: int) -> bytes:
        if self._read_fd is None:
            self._read_fd = os.open(self.files.path, os.O_RDONLY)
        return os.pread(self._read_fd, length, offset)

    def _read_record(self, seq: int, offset: int, length: int) -> QueueRecord:
        record = _decode_record(self._read_line(offset, length))
        if isinstance(record, str) or record.seq != seq:
            raise QueueCorrupted(f"{self.files.path}: the line of record {seq} at byte {offset} changed on disk "
                                 f"({record if isinstance(record, str) else 'another record'}); restart to quarantine it")
        return record

    def _close_reader(self) -> None:
        if self._read_fd is not None:
            os.close(self._read_fd)
            self._read_fd = None

    def _queue_file(self):
        if self._queue_fh is None:
            self._queue_fh = open(self.files.path, "ab")
        return self._queue_fh

    def _truncate_queue_file(self, size: int) -> None:
        if self._queue_fh is not None:
            try:
                self._queue_fh.close()
            except OSError:
                pass
            self._queue_fh = None
        try:
            os.truncate(self.files.path, size)
        except OSError:
            log.exception("could not cut a failed append off %s; it is quarantined at the next start", self.files.path)

    def _ack_file(self):
        if self._ack_fh is None:
            self._ack_fh = open(self.files.acks, "ab")
        return self._ack_fh

    def _append_durably(self, path: Path, body: bytes) -> None:
        with open(path, "ab") as fh:
            fh.write(body)
            fh.flush()
            if self._fsync:
                os.fsync(fh.fileno())

    def _compact(self, force: bool = False) -> None:
        """Rewrite the queue with only pending records (temp + fsync + rename), then empty the acks."""
        if self._acked_in_file == 0 and not force:
            return
        for fh in (self._queue_fh, self._ack_fh):
            if fh is not None:
                fh.close()
        self._queue_fh = self._ack_fh = None
        moved: dict[int, tuple[int, int]] = {}
        position = 0
        with open(self.files.tmp, "wb") as fh:
            chunk: list[bytes] = []
            for seq, (offset, length) in self._pending.items():  # copied line by line, in order
                line = self._rewrites.get(seq) or self._read_line(offset, length)
                chunk.append(line + b"\n")
                moved[seq] = (position, len(line))
                position += len(line) + 1
                if len(chunk) == 1000:
                    fh.write(b"".join(chunk))
                    chunk.clear()
            fh.write(b"".join(chunk))
            fh.flush()
            if self._fsync:
                os.fsync(fh.fileno())
        os.replace(self.files.tmp, self.files.path)
        self._close_reader()
        self._pending = moved
        self._rewrites.clear()
        if self._fsync:
            _fsync_dir(self.files.path.parent)
        # Only now may the acks go: the file no longer holds any acknowledged record.
        with open(self.files.acks, "wb") as fh:
            if self._fsync:
                os.fsync(fh.fileno())
        self._acked_in_file = 0


def count_lines(path: Path) -> int:
    try:
        with open(path, "rb") as fh:
            return sum(1 for line in fh if line.strip())
    except FileNotFoundError:
        return 0


@dataclass
class QueueSnapshot:
    """A read-only look at the queue files (for `gateway status`, safe while a gateway runs)."""

    depth: int
    dead_letters: int
    quarantined: int
    unreadable_lines: int
    oldest_queued_at: float | None
    locked: bool
    last_dead_letter: str | None = None
    # Valid lines whose seq another line has too: the next start renumbers them (all delivered).
    shared_seq_lines: int = 0


def _is_locked(files: QueueFiles) -> bool:
    if not files.lock.exists():
        return False
    with open(files.lock, "rb") as fh:
        try:
            # Shared and non-blocking: never waits, and a gateway starting now retries its lock.
            fcntl.flock(fh, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(fh, fcntl.LOCK_UN)
    return False


def _last_dead_letter(path: Path) -> str | None:
    """`<key>: <reason> (HTTP n)` of the newest dead letter, read from the file's end."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 256 * 1024))
            lines = [line for line in fh.read().split(b"\n") if line.strip()]
    except FileNotFoundError:
        return None
    for line in reversed(lines):
        try:
            letter = msgspec.json.decode(line, type=DeadLetter)
        except _UNDECODABLE:
            continue
        status = f" (HTTP {letter.http_status})" if letter.http_status else ""
        details = f" {letter.details}" if letter.details else ""
        return f"{letter.key}: {letter.reason}{details}{status}"
    return None


def inspect_queue(path: Path | str) -> QueueSnapshot:
    """Read the files without the lock (the owner only appends, and compacts by rename)."""
    files = QueueFiles(Path(path))
    locked = _is_locked(files)
    # Acks first: a compaction renames the queue before it empties the acks, so the acks read
    # here cover every acknowledged record of whichever queue file is read next.
    acked, _ = _read_acks(files.acks)
    scan = _scan_queue_file(files.path, acked, writer_active=locked)
    return QueueSnapshot(depth=scan.depth, dead_letters=count_lines(files.dead_letter),
                         quarantined=count_lines(files.quarantine), unreadable_lines=len(scan.bad),
                         oldest_queued_at=scan.oldest_queued_at, locked=locked,
                         last_dead_letter=_last_dead_letter(files.dead_letter),
                         shared_seq_lines=len(scan.renumber))
