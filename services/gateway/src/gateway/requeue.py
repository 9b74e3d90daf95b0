"""`gateway requeue payloads.jsonl`: put reviewed payloads back on the normal path.

For messages that left it: the payload of a quarantined queue line that an operator recovered,
or dead letters once the cause of the API's refusal is fixed (docs/runbooks/drain-queue.md shows
how to pull the payloads out of those files). Each line of the file is one contract payload, as
the `payload` field of the queue, dead-letter and quarantine records holds it.

Every line is checked before anything is queued: if one is not a payload, each such line is
named and nothing is queued (fix the file and run it again). The payloads are then written to
the durable queue (one fsync) and delivered like `gateway replay`. Keys already waiting in the
queue are not queued twice, and the API answers `duplicate` for what it already holds, so running
the same file again is harmless.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import msgspec

from contracts import decode_payload, encode_payload, idempotency_key

# What decoding a stranger's line can raise: msgspec's errors, RecursionError (deep nesting),
# UnicodeDecodeError (a ValueError: invalid UTF-8).
_UNDECODABLE = (msgspec.MsgspecError, RecursionError, ValueError)


@dataclass
class Payloads:
    items: list[tuple[str, bytes]] = field(default_factory=list)  # (idempotency key, encoded payload)
    problems: list[str] = field(default_factory=list)             # "line N: why"


def read_payloads(path: Path) -> Payloads:
    """Every payload of the file, re-encoded as the gateway writes them, or the lines that are not
    payloads. Raises OSError when the file cannot be read."""
    found = Payloads()
    with open(path, "rb") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                payload = decode_payload(line)
            except _UNDECODABLE as exc:
                problem = "nested too deeply" if isinstance(exc, RecursionError) else str(exc) or type(exc).__name__
                found.problems.append(f"line {number}: not a payload ({problem})")
                continue
            found.items.append((str(idempotency_key(payload)), encode_payload(payload)))
    return found
