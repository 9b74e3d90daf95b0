"""workspace-import benchmark: prints figures, asserts nothing (run: `uv run python bench/workspace_import_bench.py`).

In one run, against a throwaway embedded PostgreSQL (a fresh migrated database per row): the
importer of this working tree and the importer of an earlier commit (`--before`, default the
commit before old LowDB ids were accepted), each on 10,000 items in the old LowDB shape (a third
with metadata), once with UUID ids and once with the LowDB client's `item-<ms>-<random>` ids,
each imported twice (first run, re-run), the whole repeated `--repeat` times (rows interleaved,
so a busy moment of this shared machine hits every row alike); the fastest and slowest of the
repeats are printed. Wall time includes interpreter start; peak RSS from /usr/bin/time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg

from ts_ops.embedded_pg import EmbeddedPostgres
from ts_ops.migrations import migrate_url

ROOT = Path(__file__).resolve().parents[1]
CATEGORIES = ("feature", "bug", "improvement", "documentation", "research", "other")
BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"


def old_library(path: Path, count: int, uuid_ids: bool) -> Path:
    """`count` items as the old LowDB client wrote them (key order, createdBy/updatedBy null)."""
    rnd = random.Random(1)
    items = []
    for n in range(count):
        ms = 1762437912345 + n * 60_000
        created = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000)) + f".{ms % 1000:03d}Z"
        old_id = f"item-{ms}-{''.join(rnd.choice(BASE36) for _ in range(7))}"
        items.append({"title": f"Item {n}", "description": "x" * rnd.randint(0, 300), "category": rnd.choice(CATEGORIES),
                      "priority": "medium", "tags": ["a", "b"], "metadata": {"n": n} if n % 3 == 0 else {},
                      "status": "new", "createdBy": None, "updatedBy": None, "createdAt": created, "updatedAt": created,
                      "id": str(uuid.UUID(int=rnd.getrandbits(128), version=4)) if uuid_ids else old_id})
    path.write_text(json.dumps({"items": items}, indent=2))
    return path


async def fresh_database(server_url: str) -> str:
    name = "bench_" + uuid.uuid4().hex[:8]
    conn = await asyncpg.connect(server_url)
    try:
        await conn.execute(f"CREATE DATABASE {name}")
    finally:
        await conn.close()
    url = server_url.rsplit("/", 1)[0] + "/" + name
    await migrate_url(url, report=lambda _: None)
    return url


def import_once(pythonpath: str | None, path: Path, database_url: str) -> tuple[float, float, str]:
    """(wall seconds, peak MB, summary line) of one `workspace-import` run."""
    env = dict(os.environ)
    if pythonpath:  # ahead of the installed (editable) package
        env["PYTHONPATH"] = pythonpath
    started = time.perf_counter()
    result = subprocess.run(["/usr/bin/time", "-f", "%M", sys.executable, "-m", "workspace_api.importer", str(path),
                             "--database-url", database_url], capture_output=True, text=True, env=env)
    wall = time.perf_counter() - started
    summary = next((line[13:] for line in result.stdout.splitlines() if line.startswith("summary")), "")
    return wall, int(result.stderr.strip().splitlines()[-1]) / 1024, f"exit {result.returncode}: {summary}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", default="bc75772", help="git commit of the importer to compare with")
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="wsibench-"))
    root.chmod(0o755)  # as root, the embedded server runs as its own account
    before = root / "before"
    before.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.before, "services/workspace-api/src"],
                             capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(before)], input=archive, check=True)
    server = EmbeddedPostgres(root / "data").start()
    try:
        files = {kind: old_library(root / f"{kind}.json", args.items, uuid_ids=kind == "uuid") for kind in ("uuid", "old")}
        print(f"{args.items:,} items per file, {files['old'].stat().st_size / 1e6:.1f} MB; "
              f"load average {os.getloadavg()[0]:.1f}; {args.repeat} repeats")
        rows = [(f"before ({args.before})", str(before / "services/workspace-api/src"), kind) for kind in files]
        rows += [("after", None, kind) for kind in files]
        runs: dict[tuple[int, str], list[tuple[float, float, str]]] = {}
        for _ in range(args.repeat):
            for number, (_, pythonpath, kind) in enumerate(rows):
                url = asyncio.run(fresh_database(server.url))
                for attempt in ("first run", "re-run"):
                    runs.setdefault((number, attempt), []).append(import_once(pythonpath, files[kind], url))
        for number, (who, _, kind) in enumerate(rows):
            for attempt in ("first run", "re-run"):
                walls = sorted(r[0] for r in runs[number, attempt])
                peak = max(r[1] for r in runs[number, attempt])
                label = f"{who}, {'UUID' if kind == 'uuid' else 'item-…'} ids"
                print(f"{label:28} {attempt:9}  {walls[0]:5.2f}–{walls[-1]:5.2f} s  {peak:4.0f} MB  "
                      f"{runs[number, attempt][-1][2]}")
    finally:
        server.destroy()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
