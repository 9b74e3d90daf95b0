"""Compare what the database holds with what the scripted source says it must hold."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import asyncpg

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
    # Per problem key, what was expected and what is stored (the first few, for the report).
    samples: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.lost or self.duplicated or self.extra or self.wrong_text
                    or self.wrong_timestamp or self.wrong_deleted or self.wrong_revisions)

    def summary(self) -> str:
        return (
            f"expected={self.expected} rows={self.stored_rows} lost={len(self.lost)} "
            f"duplicated={len(self.duplicated)} extra={len(self.extra)} wrong_text={len(self.wrong_text)} "
            f"wrong_timestamp={len(self.wrong_timestamp)} wrong_deleted={len(self.wrong_deleted)} "
            f"wrong_revisions={len(self.wrong_revisions)}"
        )


_REVISIONS = """
SELECT channel_id, message_id, revision_date, message_text FROM tp_capital.message_revisions
"""


async def fetch_stored(database_url: str, timeout: float = 10.0) -> list[StoredMessage]:
    conn = await asyncpg.connect(database_url, timeout=timeout)
    try:
        rows = await conn.fetch(_ROWS, timeout=timeout)
        revisions = await conn.fetch(_REVISIONS, timeout=timeout)
    finally:
        await conn.close()
    history: dict[Key, dict] = {}
    for r in revisions:
        history.setdefault((r["channel_id"], r["message_id"]), {})[r["revision_date"]] = r["message_text"]
    return [
        StoredMessage(r["channel_id"], r["message_id"], r["original_timestamp"], r["message_text"],
                      r["edit_date"], r["deleted_at"] is not None,
                      history.get((r["channel_id"], r["message_id"]), {}))
        for r in rows
    ]


def compare(expected: dict[Key, ExpectedMessage], stored: list[StoredMessage], max_samples: int = 10) -> CheckResult:
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
    return result


async def check_database(database_url: str, expected: dict[Key, ExpectedMessage]) -> CheckResult:
    return compare(expected, await fetch_stored(database_url))
