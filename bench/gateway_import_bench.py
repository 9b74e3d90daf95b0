"""`gateway import` of a large Telegram Desktop export: peak RSS, time, rows (printed, not asserted).

    uv run python bench/gateway_import_bench.py [--messages 1000000] [--compare OTHER/.venv/bin/gateway]

Generates an export of N messages in Telegram Desktop's format (plain texts, entity lists,
`text_entities`, edits, replies, service messages) in a temporary folder, starts its own
PostgreSQL and the ingest API (the reliability harness's process control), and runs `gateway
import` on it through the real API. The peak RSS is the kernel's high-water mark of the process
(`VmHWM` in /proc/<pid>/status, read every 20 ms until it exits; `ru_maxrss` would include this
script's own memory, which the child shares between fork and exec). `--compare` runs another checkout's `gateway` on the
same file first, each against a fresh database, so both figures come from one run side by side
(e.g. `git archive <commit> | tar -x -C /tmp/before && (cd /tmp/before && uv sync --frozen)`).
The export is deleted afterwards: it is hundreds of MB.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.reliability.harness
from tests.support import processes

TOKEN = "bench-token-0123456789abcdefghijklmnopqrstuvwxyz"
EXPORT_ID = 1999999999  # → channel -1001999999999
T0 = 1_700_000_000


def _message(i: int) -> dict:
    """Message i of the generated channel: most are plain posts, some in the other shapes."""
    date = T0 + i * 30
    message: dict = {"id": i, "type": "message", "date": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(date)),
                     "date_unixtime": str(date), "from": "TP Capital", "from_id": f"channel{EXPORT_ID}"}
    kind = i % 50
    if kind == 0:
        return {"id": i, "type": "service", "date": message["date"], "date_unixtime": str(date),
                "actor": "TP Capital", "action": "pin_message", "message_id": i - 1, "text": ""}
    text = f"🟢Swing Trade\n\nAtivo: PETR{i % 10}\n\nCompra: 38,50 a 38,70\n\nAlvo 1: 39,20\nStop: 38,00 #{i}"
    if kind < 10:  # an entity list, and the flat `text_entities` newer exports add
        parts = [{"type": "bold", "text": "🟢Swing Trade"}, f"\n\nAtivo: PETR{i % 10}\n\n",
                 {"type": "hashtag", "text": f"#{i}"}]
        message["text"] = parts
        message["text_entities"] = [p if isinstance(p, dict) else {"type": "plain", "text": p} for p in parts]
    else:
        message["text"] = text
        message["text_entities"] = [{"type": "plain", "text": text}]
    if kind in (11, 12):
        message["edited"] = message["date"]
        message["edited_unixtime"] = str(date + 60)
    if kind in (13, 14, 15) and i > 1:
        message["reply_to_message_id"] = i - 1
    return message


def write_export(path: Path, count: int) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(f'{{\n "name": "Bench Channel",\n "type": "public_channel",\n "id": {EXPORT_ID},\n "messages": [\n')
        for i in range(1, count + 1):
            fh.write(("  " if i == 1 else ",\n  ") + json.dumps(_message(i), ensure_ascii=False))
        fh.write("\n ]\n}\n")


def high_water_kb(pid: int) -> int:
    """The process's peak RSS so far (0 once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


async def _rows(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval("SELECT count(*) FROM tp_capital.forwarded_messages WHERE channel_id = $1",
                                   -(10**12 + EXPORT_ID))
    finally:
        await conn.close()


def run_import(gateway: str, export: Path, work: Path) -> dict:
    """One `gateway import` against a fresh database and API; its peak RSS, time and rows."""
    work.mkdir(parents=True)
    db = processes.Database(work / "pg").start()
    api_port = processes.free_port()
    api = processes.ingest_api(api_port, db.url, TOKEN, work / "api.log")
    api.start()
    try:
        env = processes.service_env(API_ENDPOINT=f"http://127.0.0.1:{api_port}/ingest", API_SECRET_TOKEN=TOKEN,
                                    FAILURE_QUEUE_PATH=str(work / "gw" / "queue.jsonl"),
                                    GATEWAY_DATA_DIR=str(work / "gw"), GATEWAY_ENV_FILE=str(work / "none.env"),
                                    LOG_LEVEL="WARNING")
        started = time.perf_counter()
        with open(work / "import.log", "wb") as log:
            proc = subprocess.Popen([gateway, "import", "--no-progress", str(export)], env=env, cwd=work,
                                    stdout=log, stderr=subprocess.STDOUT)
            peak_kb = 0
            while True:
                peak_kb = max(peak_kb, high_water_kb(proc.pid))
                finished, status, usage = os.wait4(proc.pid, os.WNOHANG)
                if finished:
                    break
                time.sleep(0.02)
            proc.returncode = os.waitstatus_to_exitcode(status)
        elapsed = time.perf_counter() - started
        output = (work / "import.log").read_text(errors="replace").strip().splitlines()
        return {"peak_mb": peak_kb / 1024, "seconds": elapsed, "exit": proc.returncode,
                "rows": asyncio.run(_rows(db.url)), "cpu_s": usage.ru_utime + usage.ru_stime,
                "summary": next((line for line in reversed(output) if "stored" in line), output[-1] if output else "")}
    finally:
        api.stop()
        db.destroy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--compare", metavar="GATEWAY", help="another checkout's gateway console script, run first")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="gwimport-"))
    try:
        export = work / "result.json"
        started = time.perf_counter()
        write_export(export, args.messages)
        print(f"export of {args.messages:,} messages written in {time.perf_counter() - started:.1f}s "
              f"({export.stat().st_size / 1e6:.0f} MB)", flush=True)
        variants = ([("compared", args.compare)] if args.compare else []) + [
            ("this checkout", str(processes.script_path("gateway")))]
        results = []
        for name, gateway in variants:
            result = run_import(gateway, export, work / name.replace(" ", "-"))
            results.append((name, result))
            print(f"{name:<14} peak RSS {result['peak_mb']:7.1f} MB   {result['seconds']:6.1f} s "
                  f"({args.messages / result['seconds']:,.0f} msg/s)   CPU {result['cpu_s']:6.1f} s   "
                  f"rows {result['rows']:,}   exit {result['exit']}\n{'':<14} {result['summary']}", flush=True)
        if len(results) == 2:
            (_, before), (_, after) = results
            print(f"peak RSS {before['peak_mb']:.0f} MB → {after['peak_mb']:.0f} MB, "
                  f"time {before['seconds']:.0f} s → {after['seconds']:.0f} s")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
