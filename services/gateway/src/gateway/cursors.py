"""Per-channel backfill cursors: the highest message id whose history is safely in the queue.

Only backfill moves a cursor (it reads history in id order, so everything up to the cursor has
been queued). Live events do not: a live message that arrives after a gap must not let the next
backfill skip the messages of the gap. Written with temp + fsync + rename, after the queue.
"""

from __future__ import annotations

import os
from pathlib import Path

import msgspec


class CursorStore:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.cursors: dict[int, int] = {}

    def load(self) -> dict[int, int]:
        try:
            raw = msgspec.json.decode(self.path.read_bytes(), type=dict[str, int])
        except FileNotFoundError:
            raw = {}
        self.cursors = {int(k): v for k, v in raw.items()}
        return self.cursors

    def get(self, channel_id: int) -> int | None:
        return self.cursors.get(channel_id)

    def advance(self, channel_id: int, message_id: int) -> None:
        if message_id <= self.cursors.get(channel_id, 0):
            return
        self.cursors[channel_id] = message_id
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "wb") as fh:
            fh.write(msgspec.json.encode({str(k): v for k, v in sorted(self.cursors.items())}))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
