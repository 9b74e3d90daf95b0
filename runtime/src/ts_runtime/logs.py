"""Logging: JSON lines on stderr (journald and docker keep them as is), and the recent records
every service serves at `/logs`.

Both outputs are built from the same fields by `record_fields()`, so what `/logs` shows is exactly
what the log file holds: secrets registered with `register_secret()` (the services register their
tokens at start) are cut to their first 8 characters in the message, the `extra={...}` fields and
the traceback, wherever they appear. Code should still log `redact(token)`, never a token: the
masking is the safety net for a token that slips into a message.

The history is a ring buffer of the last `LOG_HISTORY_SIZE` records (200 by default, the old
system's size), per process: with several granian workers each keeps its own.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections import deque
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

import msgspec

from .settings import log_history_size_from_env, redact

DEFAULT_HISTORY_SIZE = 200
# The level names of the old system's /logs (pino's), from Python's levels.
LEVEL_NAMES = ("fatal", "error", "warn", "info", "debug")

_encoder = msgspec.json.Encoder(enc_hook=repr)
_STANDARD_ATTRS = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}

# (secret, what may be shown of it), longest first so that a secret containing another is masked whole.
_secrets: list[tuple[str, str]] = []
_secrets_lock = threading.Lock()


def register_secret(value: str | None) -> None:
    """Mask `value` (beyond its first 8 characters) in every log record from now on."""
    if not value or len(value) <= 8:
        return
    with _secrets_lock:
        if all(secret != value for secret, _ in _secrets):
            _secrets.append((value, redact(value)))
            _secrets.sort(key=lambda pair: len(pair[0]), reverse=True)


def mask(text: str) -> str:
    for secret, shown in _secrets:
        if secret in text:
            text = text.replace(secret, shown)
    return text


def _scrub(value: Any) -> Any:
    """A JSON-ready copy of an `extra` value with registered secrets masked."""
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, (bool, int, float)) or value is None:
        return value
    if isinstance(value, dict):
        return {mask(str(k)): _scrub(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_scrub(v) for v in value]
    try:
        return _scrub(msgspec.to_builtins(value, enc_hook=repr))
    except Exception:  # noqa: BLE001 - a value that cannot be converted is logged as its repr
        return mask(repr(value))


def old_level_name(levelno: int) -> str:
    """Python's level → the old /logs names: CRITICAL fatal, ERROR error, WARNING warn, INFO info, else debug."""
    if levelno >= logging.CRITICAL:
        return "fatal"
    if levelno >= logging.ERROR:
        return "error"
    if levelno >= logging.WARNING:
        return "warn"
    if levelno >= logging.INFO:
        return "info"
    return "debug"


def record_fields(record: logging.LogRecord, formatter: logging.Formatter) -> tuple[str, dict[str, Any], str | None]:
    """(message, extra fields, traceback) of a record, secrets masked: what both outputs show."""
    extras = {key: _scrub(value) for key, value in vars(record).items()
              if key not in _STANDARD_ATTRS and not key.startswith("_")}
    exc = mask(formatter.formatException(record.exc_info)) if record.exc_info else None
    return mask(record.getMessage()), extras, exc


def _iso(created: float) -> datetime:
    return datetime.fromtimestamp(created, timezone.utc)


class JsonFormatter(logging.Formatter):
    """One JSON object per line; `extra={...}` fields are kept as top-level keys."""

    def format(self, record: logging.LogRecord) -> str:
        message, extras, exc = record_fields(record, self)
        entry = {
            "ts": _iso(record.created).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": message,
            **extras,
        }
        if exc:
            entry["exc"] = exc
        return _encoder.encode(entry).decode()


class TextFormatter(logging.Formatter):
    """`LOG_FORMAT=text`: plain lines for humans, masked like the JSON lines."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        return mask(super().format(record))


class LogHistory(logging.Handler):
    """The last `capacity` records as the old `/logs` served them:
    `{"timestamp", "level", "message", "context"}` (context: the logger and the extra fields)."""

    def __init__(self, capacity: int = DEFAULT_HISTORY_SIZE) -> None:
        super().__init__()
        self._entries: deque[dict[str, Any]] = deque(maxlen=capacity)
        self._fields = logging.Formatter()

    @property
    def capacity(self) -> int:
        return self._entries.maxlen or 0

    def resize(self, capacity: int) -> None:
        with self.lock:  # type: ignore[union-attr]
            self._entries = deque(self._entries, maxlen=capacity)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message, extras, exc = record_fields(record, self._fields)
            context: dict[str, Any] = {"logger": record.name, **extras}
            if exc:
                context["exc"] = exc
            moment = _iso(record.created)
            self._entries.append({
                # JavaScript's toISOString(), as the old entries.
                "timestamp": moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z",
                "level": old_level_name(record.levelno),
                "message": message,
                "context": context,
            })
        except Exception:  # noqa: BLE001 - logging must never raise into the caller
            self.handleError(record)

    def recent(self, limit: int | None = None, level: str | None = None) -> list[dict[str, Any]]:
        """Newest first; `level` an exact match on the old names; at most `limit` entries."""
        with self.lock:  # type: ignore[union-attr]
            entries: Iterable[dict[str, Any]] = list(self._entries)
        matching = [e for e in reversed(list(entries)) if level is None or e["level"] == level]
        return matching if limit is None else matching[:limit]

    def clear(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            self._entries.clear()


# One per process: setup_logging() attaches it to the root logger, /logs reads it.
history = LogHistory()
MAX_LIMIT = 100_000


class LogQueryError(ValueError):
    """A /logs query value is wrong; `field` names it, `message` says why."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field} {message}")
        self.field = field
        self.message = message


def parse_logs_query(limit: str | None, level: str | None) -> tuple[int | None, str | None]:
    """`?limit=N&level=L` of /logs, as every service reads it: limit a positive integer, level one
    of the old names (any case). Empty means absent. Raises LogQueryError."""
    count = None
    if limit is not None and limit.strip():
        text = limit.strip()
        if not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
            raise LogQueryError("limit", f"must be an integer from 1 to {MAX_LIMIT:,}, got {text[:20]!r}")
        count = int(text)
    name = None
    if level is not None and level.strip():
        name = level.strip().lower()
        if name not in LEVEL_NAMES:
            raise LogQueryError("level", f"must be one of {', '.join(LEVEL_NAMES)}, got {level.strip()[:20]!r}")
    return count, name


def logs_body(limit: int | None, level: str | None) -> dict[str, list[dict[str, Any]]]:
    """The /logs answer: `{"data": [{timestamp, level, message, context}, ...]}`, newest first."""
    return {"data": history.recent(limit, level)}


def setup_logging(level: str | int = "INFO", *, json: bool = True, history_size: int | None = None) -> None:
    """Configure the root logger once: stderr (`LOG_FORMAT=text` gives plain lines for humans) and
    the in-memory history behind /logs (`LOG_HISTORY_SIZE` records unless `history_size` is given)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if json else TextFormatter())
    history.resize(history_size if history_size is not None else log_history_size_from_env())
    root = logging.getLogger()
    root.handlers[:] = [handler, history]
    root.setLevel(level if isinstance(level, int) else level.upper())
