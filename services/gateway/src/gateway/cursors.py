"""Per-channel backfill cursors: the highest message id whose history is safely in the queue.

Only backfill moves a cursor (it reads history in id order, so everything up to the cursor has
been queued). Live events do not: a live message that arrives after a gap must not let the next
backfill skip the messages of the gap. Written with temp + fsync + rename, after the queue; the
version it replaces stays as `cursors.json.previous` (a hard link, no copy), one step behind.

A damaged `cursors.json` (cut off, not JSON, nested too deeply, wrong types) must neither stop the
gateway nor make it skip messages: a cursor too high loses the messages below it, a cursor too
low only sends messages again (the API answers `duplicate`). So `load()`:

1. keeps the file aside as `cursors.json.damaged-<UTC timestamp>` and logs one error;
2. starts from the last known positions, each a safe lower bound: `cursors.json.previous`, and
   the cursors the running gateway last wrote to `gateway-status.json` (a snapshot of cursors
   that were already on disk); per channel the higher of the two;
3. writes those at once as the new `cursors.json`;
4. backfills a channel with no known position `BACKFILL_RECOVERY_LIMIT` messages deep (default
   1,000) instead of `BACKFILL_INITIAL_LIMIT`, and keeps doing so for channels without a cursor
   while a `cursors.json.damaged-*` file is kept beside it (a crash in the middle of that first
   backfill must not turn the rest into a "first start"). Never from "now".

A file that cannot be read at all (permissions, an I/O error) is not guessed around: `load()`
raises CursorsUnreadable and `gateway run` stops with one line.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any

import msgspec

log = logging.getLogger(__name__)

FILE_NAME = "cursors.json"
DEFAULT_RECOVERY_LIMIT = 1000
# A cursor is a Telegram message id: positive, below 2**63.
_Cursors = dict[str, Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]]
# What decoding a damaged file can raise: msgspec's errors, RecursionError (deep nesting),
# UnicodeDecodeError (a ValueError: invalid UTF-8).
_UNDECODABLE = (msgspec.DecodeError, msgspec.ValidationError, RecursionError, ValueError)


class CursorsUnreadable(RuntimeError):
    """The cursor file exists but cannot be read (permissions, I/O error): nothing to start from."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def decode_cursors(data: bytes | Any) -> dict[int, int]:
    """`{"<channel id>": <message id>}` (bytes, or an already decoded value); raises ValueError
    naming the problem."""
    try:
        if isinstance(data, (bytes, bytearray, memoryview)):
            raw = msgspec.json.decode(data, type=_Cursors)
        else:
            raw = msgspec.convert(data, type=_Cursors)
        return {int(channel): cursor for channel, cursor in raw.items()}
    except RecursionError:
        raise ValueError("nested too deeply") from None
    except _UNDECODABLE as exc:  # int("x") of a key is a ValueError too
        raise ValueError(str(exc) or type(exc).__name__) from None


def _timestamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


class CursorStore:
    def __init__(self, path: Path, *, recovery_limit: int = DEFAULT_RECOVERY_LIMIT,
                 last_known: Callable[[], Mapping[str, Any] | None] | None = None) -> None:
        self.path = Path(path)
        self.recovery_limit = recovery_limit
        # The cursors the last gateway-status.json holds (read only when the file is damaged).
        self._last_known = last_known
        self.cursors: dict[int, int] = {}
        self.loaded = False
        # Set when this start found the file damaged: where it was kept, and what was wrong.
        self.damaged_copy: Path | None = None
        self.damage: str | None = None

    @property
    def previous_path(self) -> Path:
        return self.path.with_name(self.path.name + ".previous")

    def damaged_copies(self) -> list[Path]:
        """Damaged files kept beside the store (this start's and earlier ones), oldest first."""
        return sorted(self.path.parent.glob(self.path.name + ".damaged-*"))

    # -- reading -----------------------------------------------------------------------------

    def read(self) -> dict[int, int]:
        """The cursors on disk, changing nothing ({} when there is no file).

        Raises ValueError when the file is damaged, CursorsUnreadable when it cannot be read."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        except PermissionError as exc:
            raise CursorsUnreadable(f"cannot read {self.path} ({exc.strerror}): run the gateway as the "
                                    "file's owner, or fix its owner/mode", exit_code=2) from None
        except IsADirectoryError:
            raise ValueError("a directory, not a file") from None
        except OSError as exc:
            raise CursorsUnreadable(f"cannot read {self.path}: {exc.strerror or exc}", exit_code=1) from None
        return decode_cursors(data)

    def load(self) -> dict[int, int]:
        """Read the cursors for `gateway run`; a damaged file is kept aside and recovered from."""
        try:
            self.cursors = self.read()
        except ValueError as exc:
            self.cursors = self._recover(str(exc))
        self.loaded = True
        return self.cursors

    def _recover(self, problem: str) -> dict[int, int]:
        self.damage = problem
        self.damaged_copy = target = self.path.with_name(f"{self.path.name}.damaged-{_timestamp()}")
        n = 1
        while target.exists():
            self.damaged_copy = target = self.path.with_name(f"{self.path.name}.damaged-{_timestamp()}-{n}")
            n += 1
        os.replace(self.path, target)
        known, sources = self._known_positions()
        described = ", ".join(f"{channel} → {cursor}" for channel, cursor in sorted(known.items())) or "none"
        log.error(
            "%s is damaged (%s): kept it as %s; backfilling from the last known positions (%s, from %s) and "
            "%d message(s) deep in every channel without one; messages already delivered come back as "
            "duplicates, none is skipped", self.path, problem, target.name, described,
            " and ".join(sources) or "no source", self.recovery_limit)
        self.cursors = dict(known)
        if known:
            self._write()
        return self.cursors

    def _known_positions(self) -> tuple[dict[int, int], list[str]]:
        """Safe lower bounds of the lost cursors: the file's previous version, the status file's copy."""
        known: dict[int, int] = {}
        sources: list[str] = []
        try:
            previous = decode_cursors(self.previous_path.read_bytes())
        except (OSError, ValueError):
            previous = {}
        status: dict[int, int] = {}
        if self._last_known is not None:
            try:
                status = decode_cursors(self._last_known() or {})
            except ValueError:
                status = {}
        for name, found in ((self.previous_path.name, previous), ("gateway-status.json", status)):
            if found:
                sources.append(name)
            for channel, cursor in found.items():
                known[channel] = max(known.get(channel, 0), cursor)
        return known, sources

    # -- asked by the backfill ----------------------------------------------------------------

    def get(self, channel_id: int) -> int | None:
        return self.cursors.get(channel_id)

    def depth_without_cursor(self) -> int | None:
        """How many recent messages a channel without a cursor is backfilled: None for the
        source's default (BACKFILL_INITIAL_LIMIT), the recovery limit after damage."""
        if self.damaged_copy is not None or self.damaged_copies():
            return self.recovery_limit
        return None

    # -- writing -----------------------------------------------------------------------------

    def advance(self, channel_id: int, message_id: int) -> None:
        if message_id <= self.cursors.get(channel_id, 0):
            return
        # In memory only once on disk: /health and gateway-status.json then never show a cursor
        # that a crash could lose, so their copy is a safe lower bound for recovery.
        self._write({**self.cursors, channel_id: message_id})
        self.cursors[channel_id] = message_id

    def _write(self, cursors: Mapping[int, int] | None = None) -> None:
        cursors = self.cursors if cursors is None else cursors
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "wb") as fh:
            fh.write(msgspec.json.encode({str(k): v for k, v in sorted(cursors.items())}))
            fh.flush()
            os.fsync(fh.fileno())
        self._keep_previous()
        os.replace(tmp, self.path)

    def _keep_previous(self) -> None:
        """The version about to be replaced becomes `.previous` (a second name for the same bytes)."""
        link = self.path.with_name(self.path.name + ".previous.tmp")
        try:
            link.unlink(missing_ok=True)
            os.link(self.path, link)
            os.replace(link, self.previous_path)
        except FileNotFoundError:
            pass  # nothing to keep yet
        except OSError as exc:  # e.g. a file system without hard links: only recovery is poorer
            log.debug("could not keep %s: %s", self.previous_path, exc)
