"""Profile the ingest API's granian worker under load: `uv run --with py-spy python bench/profile_ingest.py`.

Starts a throwaway embedded PostgreSQL (or uses --database-url), the API as ingest_bench.py runs
it (sampled tracing to the stand-in collector), loads POST /ingest with wrk (or the asyncio
client when wrk is absent) and records the worker with py-spy meanwhile (`--gil`: only samples holding the GIL, i.e. Python CPU time,
not the idle loop) (needs ptrace: root, or
CAP_SYS_PTRACE). Prints the top frames by own time and by inclusive time, as text.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).parent))
import ingest_bench as bench  # noqa: E402

from ts_ops.embedded_pg import EmbeddedPostgres  # noqa: E402
from ts_ops.migrations import migrate_url  # noqa: E402


def _top(collapsed: Path, count: int) -> str:
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, samples = line.rpartition(" ")
        n = int(samples)
        frames = [f.split(" (")[0] + " (" + f.split(" (")[1].split(":")[0].rsplit("/", 1)[-1] + ")"
                  if " (" in f else f for f in stack.split(";")]
        total += n
        own[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
    lines = [f"{total} samples"]
    lines.append("-- own time --")
    lines += [f"{100 * n / total:5.1f}%  {frame}" for frame, n in own.most_common(count)]
    lines.append("-- inclusive time --")
    # Frames on every stack (granian's worker start-up, the loop) say nothing: left out.
    lines += [f"{100 * n / total:5.1f}%  {frame}" for frame, n in inclusive.most_common(count + 40)
              if n < 0.9 * total][:count]
    return "\n".join(lines)


async def main_async(args: argparse.Namespace) -> None:
    root = Path(tempfile.mkdtemp(prefix="tspg-prof-"))
    root.chmod(0o755)
    pg = None
    url = args.database_url
    if url is None:
        pg = EmbeddedPostgres(root / "data").start()
        url = pg.url
    sink = api = None
    try:
        await migrate_url(url, report=lambda line: None)
        sink, sink_port = bench.start_sink()
        api, port = bench.start_api(url, args, sink_port, args.granian)
        await asyncio.sleep(1.0)
        worker = psutil.Process(api.pid).children()[0].pid
        out = root / "profile.txt"
        spy = subprocess.Popen(["py-spy", "record", "--pid", str(worker), "--duration", str(int(args.duration)),
                                "--format", "raw", "--rate", "200", "--output", str(out), "--nonblocking", "--gil"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if shutil.which("wrk"):
            result = await asyncio.to_thread(bench.run_wrk, port, args.concurrency, args.duration)
        else:
            result = bench._asyncio_figures(*await bench.load_single(port, args.concurrency, args.duration, 0.0))
        spy.wait(60)
        print(f"load while profiling: {result['rate']:.0f} req/s p50 {result['p50']:.1f} ms p99 {result['p99']:.1f} ms")
        print(_top(out, args.top))
    finally:
        bench._stop(api)
        if sink is not None:
            bench.stop_sink(sink)
        if pg is not None:
            pg.destroy()
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--connections", dest="concurrency", type=int, default=16)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--sample-ratio", type=float, default=0.1)
    parser.add_argument("--database-url")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--granian", nargs=argparse.REMAINDER, default=[])
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
