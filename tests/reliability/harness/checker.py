"""Compare what the database holds with what the scripted source says it must hold.

Messages: each present once, with its timestamp, newest text, every revision, deletion mark.
Signals and follow-ups, derived with the API's own parser from the source's texts (the harness
tests delivery, not parsing): a message whose newest text is a signal has exactly one signal row
with that asset, live unless the message was deleted; any other message has no live signal; a
message whose newest text is a follow-up has one event row per event it reads (seq 0, 1, ...),
live unless the message was deleted; no other event row of any message is live.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


from ingest_api.parser import FollowUp, Signal, parse
from tests.support.db import connection

from .script import ExpectedMessage

Key = tuple[int, int]

_ROWS = """
SELECT channel_id, message_id, original_timestamp, message_text, edit_date, deleted_at
FROM tp_capital.forwarded_messages
"""


@dataclass
class StoredMessage:
    channel_id: int
    message_id: int
    timestamp: object
    text: str
    edit_date: object
    deleted: bool
    revisions: dict = field(default_factory=dict)


@dataclass
class CheckResult:
    """Differences between the database and the source model (all empty: the run converged)."""

    expected: int
    stored_rows: int
    lost: list[Key] = field(default_factory=list)
    duplicated: list[Key] = field(default_factory=list)
    extra: list[Key] = field(default_factory=list)
    wrong_text: list[Key] = field(default_factory=list)
    wrong_timestamp: list[Key] = field(default_factory=list)
    wrong_deleted: list[Key] = field(default_factory=list)
    # Messages whose revision history (tp_capital.message_revisions) misses or alters a revision.
    wrong_revisions: list[Key] = field(default_factory=list)
    # Messages whose signal row is missing, doubled, live when it must not be (or not when it
    # must), or names another asset.
    wrong_signals: list[Key] = field(default_factory=list)
    # Follow-up messages without their lifecycle events (or other messages with a live one).
    wrong_events: list[Key] = field(default_factory=list)
    # Per problem key, what was expected and what is stored (the first few, for the report).
    samples: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.lost or self.duplicated or self.extra or self.wrong_text or self.wrong_timestamp
                    or self.wrong_deleted or self.wrong_revisions or self.wrong_signals or self.wrong_events)

    def summary(self) -> str:
        return (
            f"expected={self.expected} rows={self.stored_rows} lost={len(self.lost)} "
            f"duplicated={len(self.duplicated)} extra={len(self.extra)} wrong_text={len(self.wrong_text)} "
            f"wrong_timestamp={len(self.wrong_timestamp)} wrong_deleted={len(self.wrong_deleted)} "
            f"wrong_revisions={len(self.wrong_revisions)} wrong_signals={len(self.wrong_signals)} "
            f"wrong_events={len(self.wrong_events)}"
        )


_REVISIONS = """
SELECT channel_id, message_id, revision_date, message_text FROM tp_capital.message_revisions
"""


_SIGNALS = """
SELECT channel_id, message_id, asset, deleted_at IS NOT NULL AS deleted FROM tp_capital.tp_capital_signals
"""
_EVENTS = "SELECT channel_id, message_id, seq, deleted_at IS NOT NULL AS deleted FROM tp_capital.signal_events"


@dataclass
class StoredLifecycle:
    """Signal rows (asset, deleted) and event rows ({seq: deleted}) per message key."""

    signals: dict[Key, list[tuple[str, bool]]] = field(default_factory=dict)
    events: dict[Key, dict[int, bool]] = field(default_factory=dict)


async def fetch_stored(database_url: str, timeout: float = 10.0) -> tuple[list[StoredMessage], StoredLifecycle]:
    async with connection(database_url, timeout=timeout) as conn:
        rows = await conn.fetch(_ROWS, timeout=timeout)
        revisions = await conn.fetch(_REVISIONS, timeout=timeout)
        signals = await conn.fetch(_SIGNALS, timeout=timeout)
        events = await conn.fetch(_EVENTS, timeout=timeout)
    lifecycle = StoredLifecycle()
    for r in events:
        lifecycle.events.setdefault((r["channel_id"], r["message_id"]), {})[r["seq"]] = r["deleted"]
    for r in signals:
        lifecycle.signals.setdefault((r["channel_id"], r["message_id"]), []).append((r["asset"], r["deleted"]))
    history: dict[Key, dict] = {}
    for r in revisions:
        history.setdefault((r["channel_id"], r["message_id"]), {})[r["revision_date"]] = r["message_text"]
    messages = [
        StoredMessage(r["channel_id"], r["message_id"], r["original_timestamp"], r["message_text"],
                      r["edit_date"], r["deleted_at"] is not None,
                      history.get((r["channel_id"], r["message_id"]), {}))
        for r in rows
    ]
    return messages, lifecycle


def compare(expected: dict[Key, ExpectedMessage], stored: list[StoredMessage],
            lifecycle: StoredLifecycle | None = None, max_samples: int = 10) -> CheckResult:
    result = CheckResult(expected=len(expected), stored_rows=len(stored))
    counts = Counter((row.channel_id, row.message_id) for row in stored)
    by_key: dict[Key, StoredMessage] = {}
    for row in stored:
        by_key.setdefault((row.channel_id, row.message_id), row)

    def note(kind: str, key: Key, want: object, got: object) -> None:
        if len(result.samples) < max_samples:
            result.samples.append(f"{kind} {key[0]}:{key[1]}: expected {want!r}, stored {got!r}")

    for key, count in sorted(counts.items()):
        if key not in expected:
            result.extra.append(key)
            note("extra", key, None, by_key[key].text)
        elif count > 1:
            result.duplicated.append(key)
            note("duplicated", key, 1, count)
    for key, want in sorted(expected.items()):
        row = by_key.get(key)
        if row is None:
            result.lost.append(key)
            note("lost", key, want.text, None)
            continue
        if row.text != want.text:
            result.wrong_text.append(key)
            note("wrong text", key, want.text, row.text)
        if row.timestamp != want.timestamp:
            result.wrong_timestamp.append(key)
            note("wrong timestamp", key, want.timestamp, row.timestamp)
        if row.deleted != want.deleted:
            result.wrong_deleted.append(key)
            note("wrong deleted", key, want.deleted, row.deleted)
        if row.revisions != want.revisions:
            result.wrong_revisions.append(key)
            note("wrong revisions", key, len(want.revisions), len(row.revisions))
    if lifecycle is not None:
        _compare_lifecycle(expected, lifecycle, result, note)
    return result


def _compare_lifecycle(expected: dict[Key, ExpectedMessage], lifecycle: StoredLifecycle, result: CheckResult,
                       note) -> None:
    for key in sorted(set(lifecycle.signals) - set(expected)):
        result.wrong_signals.append(key)
        note("signal of an unknown message", key, None, lifecycle.signals[key])
    for key in sorted(set(lifecycle.events) - set(expected)):
        result.wrong_events.append(key)
        note("event of an unknown message", key, 0, lifecycle.events[key])
    for key, want in sorted(expected.items()):
        rows = lifecycle.signals.get(key, [])
        parsed = parse(want.text)
        if isinstance(parsed, Signal):
            good = rows == [(parsed.asset, want.deleted)]
            want_signal: object = [(parsed.asset, want.deleted)]
        else:  # never a live signal; a withdrawn one (edited away) may stay, marked deleted
            good = len(rows) <= 1 and all(deleted for _, deleted in rows)
            want_signal = "no live signal"
        if not good:
            result.wrong_signals.append(key)
            note("wrong signal", key, want_signal, rows)
        # Events come from the newest text, like signals (an edit that is no follow-up withdraws them).
        want_events = len(parsed.events) if isinstance(parsed, FollowUp) else 0
        rows = lifecycle.events.get(key, {})
        good = (all(rows.get(seq) == want.deleted for seq in range(want_events))
                and all(deleted for seq, deleted in rows.items() if seq >= want_events))
        if not good:
            result.wrong_events.append(key)
            note("wrong events", key, f"{want_events} event(s), deleted={want.deleted}", rows)


async def check_database(database_url: str, expected: dict[Key, ExpectedMessage]) -> CheckResult:
    messages, lifecycle = await fetch_stored(database_url)
    return compare(expected, messages, lifecycle)
