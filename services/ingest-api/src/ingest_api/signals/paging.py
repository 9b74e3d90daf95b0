"""Query parameters of the list endpoints: filters, `from`/`to` moments, and opaque cursors.

A cursor names the last row of a page: its message date and id. Pages are ordered by
(message date DESC, id DESC), the hypertables' partition column first, so a cursor bounds the
partition column and TimescaleDB skips every chunk newer than it (db/sql/tp_capital/021).

Cursors are opaque base64url strings. Two forms are read:
- `d<epoch microseconds>:<id>` (written since migration 021): the row's exact message date;
- `<epoch ms>:<id>` (written before, and still by /signal-events): the row's `ts`, the message
  date floored to the millisecond. A page a client was holding still continues where it stopped.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from ..errors import ApiError

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICRO = timedelta(microseconds=1)
_MIN_EPOCH_MS = -62_135_596_800_000  # 0001-01-01T00:00:00Z
_MAX_EPOCH_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z
_MIN_MICROS = _MIN_EPOCH_MS * 1000
_MAX_MICROS = _MAX_EPOCH_MS * 1000 + 999


@dataclass(frozen=True, slots=True)
class Cursor:
    """The last row of the previous page: its id and its message date (`date`, exact) or, in a
    cursor written before migration 021, its `ts` (epoch ms)."""

    id: int
    date: datetime | None = None
    ts: int | None = None

    @property
    def ts_ms(self) -> int:
        """The row's `ts` (epoch ms), from either form."""
        if self.ts is not None:
            return self.ts
        assert self.date is not None
        return micros(self.date) // 1000


@dataclass(frozen=True)
class Filters:
    limit: int = 100
    channel: str | None = None
    signal_type: str | None = None
    search: str | None = None
    from_ms: int | None = None
    to_ms: int | None = None
    cursor: Cursor | None = None
    # /forwarded-messages?channelId=: the channel's id, exactly.
    channel_id: int | None = None


def micros(moment: datetime) -> int:
    """Epoch microseconds of `moment`, exactly (no float)."""
    return (moment - EPOCH) // _MICRO


def from_ms(millis: int) -> datetime:
    """The first instant of epoch millisecond `millis`."""
    return EPOCH + timedelta(milliseconds=millis)


def through_ms(millis: int) -> datetime:
    """The last instant (to the microsecond) of epoch millisecond `millis`: `ts <= millis` is
    `message date <= through_ms(millis)`, since ts is the date floored to the millisecond."""
    return EPOCH + timedelta(milliseconds=millis, microseconds=999)


def parse_moment(name: str, raw: str | None) -> int | None:
    """`from`/`to`: epoch milliseconds or an ISO 8601 date/datetime (UTC when no zone) → epoch ms."""
    if raw is None or raw.strip() == "":
        return None
    raw = raw.strip()
    if raw.lstrip("-").isdigit():
        value = int(raw)
        # Years 1 to 9999 (as the ISO form): the bound becomes a PostgreSQL timestamp, which ends
        # at 4713 BC, so a larger range was a 500 ("timestamp out of range").
        if not _MIN_EPOCH_MS <= value <= _MAX_EPOCH_MS:
            raise ApiError(400, f"{name} is out of range",
                           [f"{name}: epoch milliseconds must be between {_MIN_EPOCH_MS} and {_MAX_EPOCH_MS}"])
        return value
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(400, f"{name} must be epoch milliseconds or an ISO 8601 date",
                       [f"{name}: cannot read {raw[:40]!r} as epoch milliseconds or ISO 8601"]) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    millis = int(moment.timestamp() * 1000)
    if name == "to" and len(raw) == 10:
        # `to=2025-10-07` means up to the end of that day, not its first millisecond.
        millis += 86_400_000 - 1
    return max(_MIN_EPOCH_MS, min(_MAX_EPOCH_MS, millis))


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def encode_cursor(first: int, second: int) -> str:
    """The pre-021 form `<epoch ms>:<id>` (still /signal-events' own)."""
    return _b64(f"{first}:{second}")


def encode_date_cursor(date: datetime, row_id: int) -> str:
    """The form written since 021: the row's exact message date and its id."""
    return _b64(f"d{micros(date)}:{row_id}")


def decode_cursor(raw: str | None) -> Cursor | None:
    if not raw:
        return None
    try:
        text = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
        first, second = text.split(":")
        dated = first.startswith("d")
        values = int(first[1:] if dated else first), int(second)
        if not all(-(2**63) <= v < 2**63 for v in values):
            raise ValueError
        if dated:
            if not _MIN_MICROS <= values[0] <= _MAX_MICROS:
                raise ValueError
            return Cursor(id=values[1], date=EPOCH + timedelta(microseconds=values[0]))
        if not _MIN_EPOCH_MS <= values[0] <= _MAX_EPOCH_MS:
            raise ValueError
        return Cursor(id=values[1], ts=values[0])
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ApiError(400, "cursor is invalid", ["cursor: use the next_cursor of a previous page"]) from None
