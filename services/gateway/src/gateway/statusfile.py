"""`gateway-status.json` in the data folder: what `gateway status` shows about the last run.

The queue files say what is queued; this small file adds what only the process knows (pid, last
publish, last error). The running gateway rewrites it every few seconds and at exit; `import` and
`replay` write it when they finish. Written with temp + rename (a reader never sees half a file);
no fsync: losing the newest copy in a crash loses no message, only a line of `gateway status`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import msgspec

FILE_NAME = "gateway-status.json"


def status_path(data_dir: Path) -> Path:
    return Path(data_dir) / FILE_NAME


def write_status(path: Path, state: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(msgspec.json.encode(state))
    os.replace(tmp, path)


def read_status(path: Path) -> dict[str, Any] | None:
    try:
        state = msgspec.json.decode(path.read_bytes())
    except (OSError, msgspec.DecodeError, RecursionError, ValueError):
        return None  # missing or damaged: status shows the queue files without it
    return state if isinstance(state, dict) else None
