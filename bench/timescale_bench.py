"""The query API and single-message ingest on TimescaleDB against plain PostgreSQL, 3 years of
history each, side by side in one run. Prints figures, asserts nothing.

    uv run python bench/timescale_bench.py [--years 3] [--per-day 300] [--requests 200]

1. Two servers: a throwaway embedded PostgreSQL (plain) and the TimescaleDB build of
   ../shared/timescaledb/ (`pg-timescale`, extension preloaded: `migrate` makes the hypertables).
   Both migrated by `migrate`, one ingest API under granian (1 worker) on each.
2. History, loaded through the real write path: `POST /ingest/batch` (1,000 messages a request),
   in date order, `--per-day` messages a day over 3 channels: one in ten a signal, one in ten a
   follow-up of a recent signal ("PETR4 ALVO 1 ATINGIDO ✅ +8,5%", "... stop"), the rest chatter
   shaped like the channels' (text of the lengths in shared/reference/tp-capital-messages.jsonl).
   Both databases load at once (one client each), with progress lines.
3. Latency, one request at a time on a keep-alive connection, alternating the APIs in rounds
   so that the machine's drift weighs on both alike: `GET /signals` (default page),
   `GET /signals?from=&to=` (a random week of the history), `GET /signals/{id}` (a random
   signal), `POST /ingest` (a new live message: a signal, a follow-up or chatter). Median and
   p95 of each, and TimescaleDB's median over plain PostgreSQL's (the target: at most 1.2). Twice:
   with the APIs as configured by default, and with two more APIs (same databases) whose
   DATABASE_URL adds `?plan_cache_mode=force_generic_plan`.
4. The tombstone check after each write (issue 14): the statement before migration 021 (three
   UPDATEs joined with the tombstones on (channel, message) only) and the one since
   (`tp_capital.apply_tombstones`), for one new message: planning + execution from EXPLAIN
   ANALYZE (a custom plan, as asyncpg's first runs get) and the median time of the prepared
   statement as the API runs it, on both servers.

The machine is shared (2 cores: PostgreSQL, TimescaleDB, both APIs and this client); absolute
figures move by ±20 % from run to run, the ratios much less.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import asyncpg
import msgspec

sys.path.insert(0, str(Path(__file__).parent))
import ingest_bench  # noqa: E402 - the API launcher and its token

from ts_ops.embedded_pg import EmbeddedPostgres, free_port  # noqa: E402
from ts_ops.migrations import migrate_url  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CHANNELS = (-1001649127710, -1001744113331, -1001987654321)
ASSETS = ("PETR4", "VALE3", "BBAS3", "ITUB4", "BOVAW22", "CYREW296", "MGLU3", "WEGE3", "PRIO3", "B3SA3",
          "PETRX245", "VALEJ630", "BBDC4", "ABEV3", "SUZB3", "RENT3", "GGBR4", "CSNA3", "ELET3", "RADL3")
CHATTER = (
    "Bom dia pessoal! Hoje vamos ter um dia interessante no mercado.",
    "Atenção: amanhã tem vencimento de opções, cuidado com as posições.",
    "Mercado abrindo em alta, dólar caindo. Seguimos atentos aos nossos ativos.",
    "Pessoal, quem ainda não entrou no grupo VIP chama no privado.",
    "Resumo da semana: 7 alvos atingidos, 2 stops. Seguimos firmes!",
)
_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()

# The tombstone check as it was before migration 021 (ingest/sql.py APPLY_TOMBSTONES then).
TOMBSTONES_BEFORE = """
WITH keys AS (
    SELECT DISTINCT channel_id, message_id
    FROM unnest($1::bigint[], $2::bigint[]) AS k(channel_id, message_id)
),
tombstones AS (
    SELECT t.channel_id, t.message_id, t.deleted_at
    FROM tp_capital.message_tombstones t
    JOIN keys USING (channel_id, message_id)
),
messages AS (
    UPDATE tp_capital.forwarded_messages f
    SET deleted_at = t.deleted_at, updated_at = now()
    FROM tombstones t
    WHERE f.channel_id = t.channel_id AND f.message_id = t.message_id AND f.deleted_at IS NULL
    RETURNING 1
),
signals AS (
    UPDATE tp_capital.tp_capital_signals s
    SET deleted_at = t.deleted_at, updated_at = now()
    FROM tombstones t
    WHERE s.channel_id = t.channel_id AND s.message_id = t.message_id AND s.deleted_at IS DISTINCT FROM t.deleted_at
    RETURNING s.channel_id, s.message_date
),
events AS (
    UPDATE tp_capital.signal_events e
    SET deleted_at = t.deleted_at
    FROM tombstones t
    WHERE e.channel_id = t.channel_id AND e.message_id = t.message_id AND e.deleted_at IS DISTINCT FROM t.deleted_at
    RETURNING e.channel_id, e.message_date
)
SELECT channel_id, min(message_date) AS from_date
FROM (SELECT * FROM signals UNION ALL SELECT * FROM events) changed
GROUP BY channel_id
"""
TOMBSTONES_AFTER = """
SELECT tombstoned_channel_id AS channel_id, relink_from AS from_date
FROM tp_capital.apply_tombstones($1::bigint[], $2::bigint[])
"""


# -- history ---------------------------------------------------------------------------------

def _price(rng: random.Random) -> float:
    return round(rng.uniform(0.5, 80.0), 2)


def _br(value: float) -> str:
    return f"{value:.2f}".replace(".", ",")


def signal_text(rng: random.Random, asset: str) -> str:
    low = _price(rng)
    high = round(low * 1.02, 2)
    kind = rng.choice(("🟢Swing Trade", "🟢Day Trade", "🔴Swing Trade - VENDA"))
    return (f"{kind}\nAtivo: {asset}\nCompra: {_br(low)} a {_br(high)}\nAlvo 1: {_br(high * 1.1)}\n"
            f"Alvo 2: {_br(high * 1.25)}\nAlvo final: {_br(high * 1.5)}\nStop: {_br(low * 0.85)}")


def follow_up_text(rng: random.Random, asset: str) -> str:
    roll = rng.random()
    if roll < 0.55:
        return f"{asset} ALVO {rng.choice((1, 1, 2))} ATINGIDO ✅ +{_br(rng.uniform(3, 40))}%"
    if roll < 0.75:
        return f"{asset} ALVO FINAL ATINGIDO 🚀 +{_br(rng.uniform(40, 120))}%"
    return f"{asset} stop -{_br(rng.uniform(5, 30))}%"


class History:
    """Messages of one channel in date order: --per-day/3 a day, ids increasing."""

    def __init__(self, channel: int, start: datetime, days: int, per_day: int, seed: int) -> None:
        self.channel, self.start, self.days, self.per_day = channel, start, days, per_day
        self.rng = random.Random(seed)
        self.next_id = 1
        self.recent: list[str] = []

    def message(self, moment: datetime) -> dict[str, Any]:
        roll = self.rng.random()
        if roll < 0.10 or not self.recent:
            asset = self.rng.choice(ASSETS)
            self.recent = (self.recent + [asset])[-8:]
            text = signal_text(self.rng, asset)
        elif roll < 0.20:
            text = follow_up_text(self.rng, self.rng.choice(self.recent))
        else:
            text = self.rng.choice(CHATTER) + f" #{self.next_id}"
        payload = {"channelId": str(self.channel), "messageId": self.next_id, "text": text,
                   "timestamp": moment.isoformat(), "channelName": f"TP Capital {self.channel % 1000}"}
        self.next_id += 1
        return payload

    def batches(self, size: int = 1000):
        step = timedelta(days=1) / self.per_day
        batch: list[dict[str, Any]] = []
        for n in range(self.days * self.per_day):
            batch.append(self.message(self.start + n * step + timedelta(seconds=self.rng.randint(0, 59))))
            if len(batch) == size:
                yield batch
                batch = []
        if batch:
            yield batch


class Client:
    """One keep-alive HTTP/1.1 connection, one request at a time."""

    def __init__(self, port: int) -> None:
        self.port = port

    async def open(self) -> "Client":
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        return self

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        head = (f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                f"X-Gateway-Token: {ingest_bench.TOKEN}\r\nContent-Length: {len(body)}\r\n\r\n").encode()
        self.writer.write(head + body)
        header = await self.reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in header.split(b"\r\n")[1:]:
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        return int(header[9:12]), await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


async def load_history(name: str, port: int, channels: list[History], total: int) -> float:
    client = await Client(port).open()
    started = time.perf_counter()
    done = 0
    last_report = started
    try:
        # The channels' batches interleaved, so the dates advance together as in a live import.
        iterators = [h.batches() for h in channels]
        while iterators:
            for iterator in list(iterators):
                batch = next(iterator, None)
                if batch is None:
                    iterators.remove(iterator)
                    continue
                status, answer = await client.request("POST", "/ingest/batch", _encoder.encode({"messages": batch}))
                if status != 200:
                    raise RuntimeError(f"{name}: batch answered {status}: {answer[:300]!r}")
                done += len(batch)
                now = time.perf_counter()
                if now - last_report >= 5:
                    last_report = now
                    rate = done / (now - started)
                    print(f"  {name:>11}: {done:>9,} / {total:,} messages ({rate:,.0f}/s)", flush=True)
    finally:
        client.close()
    elapsed = time.perf_counter() - started
    print(f"  {name:>11}: {done:>9,} messages loaded in {elapsed:.0f} s ({done / elapsed:,.0f}/s)", flush=True)
    return elapsed


# -- servers ---------------------------------------------------------------------------------

def timescale_script() -> Path:
    configured = os.environ.get("PG_TIMESCALE")
    for candidate in ([Path(configured)] if configured else []) + [
            REPO.parent / "shared" / "timescaledb" / "pg-timescale", Path("/work/shared/timescaledb/pg-timescale")]:
        if candidate.is_file():
            return candidate
    raise SystemExit("no TimescaleDB build: set PG_TIMESCALE to ../shared/timescaledb/pg-timescale")


async def start_timescale(script: Path, data: Path) -> tuple[str, int]:
    port = free_port()
    url = subprocess.run([str(script), "start", "--port", str(port), "--data", str(data)], check=True,
                         capture_output=True, text=True).stdout.strip().splitlines()[-1]
    # That build ships llvmjit.so without its bitcode files (tests/support/timescale.py).
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("ALTER SYSTEM SET jit = off")
        await conn.execute("SELECT pg_reload_conf()")
    finally:
        await conn.close()
    return url, port


async def create_database(admin_url: str, name: str) -> str:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f"CREATE DATABASE {name}")
    finally:
        await conn.close()
    return admin_url.rsplit("/", 1)[0] + "/" + name


# -- measurements ----------------------------------------------------------------------------

def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


async def timed(client: Client, method: str, path: str, body: bytes = b"") -> float:
    started = time.perf_counter()
    status, answer = await client.request(method, path, body)
    elapsed = time.perf_counter() - started
    if status != 200:
        raise RuntimeError(f"{method} {path} answered {status}: {answer[:300]!r}")
    return elapsed * 1000


class Target:
    def __init__(self, name: str, url: str, port: int) -> None:
        self.name, self.url, self.port = name, url, port
        self.samples: dict[str, list[float]] = {}
        self.live_id = 10_000_000

    def add(self, metric: str, value: float) -> None:
        self.samples.setdefault(metric, []).append(value)


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


async def measure(targets: list[Target], start: datetime, days: int, signal_ids: list[int], requests: int,
                  rounds: int = 5) -> None:
    rng = random.Random(7)
    clients = {t.name: await Client(t.port).open() for t in targets}
    live = History(CHANNELS[0], start + timedelta(days=days), 1, 1, seed=99)
    live_moment = start + timedelta(days=days, hours=1)
    per_round = max(1, requests // rounds)
    try:
        for t in targets:  # warm-up: plans cached, pages in memory
            for _ in range(20):
                await timed(clients[t.name], "GET", "/signals")
        for round_number in range(rounds):
            order = targets if round_number % 2 == 0 else list(reversed(targets))
            weeks = [start + timedelta(days=rng.randrange(0, days - 7)) for _ in range(per_round)]
            ids = [rng.choice(signal_ids) for _ in range(per_round)]
            messages = [live.message(live_moment + timedelta(seconds=i + round_number * per_round))
                        for i in range(per_round)]
            for t in order:
                client = clients[t.name]
                for _ in range(per_round):
                    t.add("GET /signals (default page)", await timed(client, "GET", "/signals"))
                for week in weeks:
                    path = f"/signals?from={_ms(week)}&to={_ms(week + timedelta(days=7)) - 1}"
                    t.add("GET /signals (one week)", await timed(client, "GET", path))
                for signal_id in ids:
                    t.add("GET /signals/{id}", await timed(client, "GET", f"/signals/{signal_id}"))
                for message in messages:
                    t.live_id += 1
                    body = _encoder.encode({**message, "messageId": t.live_id})
                    t.add("POST /ingest (single)", await timed(client, "POST", "/ingest", body))
    finally:
        for client in clients.values():
            client.close()


async def tombstone_check(url: str, tries: int = 200) -> dict[str, tuple[float, float, float]]:
    """{variant: (planning ms, execution ms, median prepared-statement ms)} for one new message."""
    conn = await asyncpg.connect(url)
    try:
        channel = CHANNELS[0]
        message_id = await conn.fetchval("SELECT max(message_id) FROM tp_capital.forwarded_messages "
                                         "WHERE channel_id = $1", channel)
        out: dict[str, tuple[float, float, float]] = {}
        for name, statement in (("before 021", TOMBSTONES_BEFORE), ("since 021", TOMBSTONES_AFTER)):
            prepared = await conn.prepare(statement)
            times = []
            for _ in range(tries):
                started = time.perf_counter()
                await prepared.fetch([channel], [message_id])
                times.append((time.perf_counter() - started) * 1000)
            # After the runs above: a function's first call in a session (compiling it, planning
            # its statements) would count as its execution.
            async with conn.transaction():
                await conn.execute("SET LOCAL plan_cache_mode = force_custom_plan")
                plan = await conn.fetchval(f"EXPLAIN (ANALYZE, FORMAT JSON) {statement}", [channel], [message_id])
                plan = _decoder.decode(plan) if isinstance(plan, (str, bytes)) else plan
            out[name] = (plan[0]["Planning Time"], plan[0]["Execution Time"], statistics.median(times))
        return out
    finally:
        await conn.close()


async def chunk_counts(url: str) -> str:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT hypertable_name, count(*) AS n FROM timescaledb_information.chunks "
                                "WHERE hypertable_schema = 'tp_capital' GROUP BY 1 ORDER BY 1")
        return ", ".join(f"{r['hypertable_name']} {r['n']}" for r in rows)
    finally:
        await conn.close()


async def main_async(args: argparse.Namespace) -> None:
    script = timescale_script()
    root = Path(tempfile.mkdtemp(prefix="tspg-tsbench-"))
    root.chmod(0o755)
    plain = EmbeddedPostgres(root / "plain").start()
    apis: list[subprocess.Popen] = []
    start = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=365 * args.years)
    days = 365 * args.years
    ts_port: int | None = None
    try:
        ts_url, ts_port = await start_timescale(script, root / "timescale")
        urls = {"plain PG": await create_database(plain.url, "tradingsystem"),
                "TimescaleDB": await create_database(ts_url, "tradingsystem")}
        for name, url in urls.items():
            await migrate_url(url, report=lambda line, name=name: print(f"  {name}: {line}") if "hypertable" in line else None)
        targets = []
        for name, url in urls.items():
            api, port = ingest_bench.start_api(url, 1)
            apis.append(api)
            targets.append(Target(name, url, port))
        total = days * args.per_day
        print(f"loading {args.years} years of history ({total:,} messages, {args.per_day}/day over "
              f"{len(CHANNELS)} channels) into both, through POST /ingest/batch ...", flush=True)
        loads = await asyncio.gather(*(
            load_history(t.name, t.port, [History(c, start, days, args.per_day // len(CHANNELS), seed=i)
                                          for i, c in enumerate(CHANNELS)], total)
            for t in targets))
        for t in targets:
            conn = await asyncpg.connect(t.url)
            try:
                await conn.execute("VACUUM ANALYZE")
                counts = await conn.fetchrow(
                    "SELECT (SELECT count(*) FROM tp_capital.forwarded_messages) AS messages,"
                    " (SELECT count(*) FROM tp_capital.tp_capital_signals) AS signals,"
                    " (SELECT count(*) FROM tp_capital.signal_events) AS events")
                if t.name == "plain PG":
                    signal_ids = [r["id"] for r in await conn.fetch("SELECT id FROM tp_capital.tp_capital_signals")]
            finally:
                await conn.close()
            print(f"  {t.name:>11}: {counts['messages']:,} messages, {counts['signals']:,} signals, "
                  f"{counts['events']:,} events")
        print(f"  TimescaleDB chunks: {await chunk_counts(urls['TimescaleDB'])}")
        tombstones = {t.name: await tombstone_check(t.url) for t in targets}
        # The same two databases behind two more APIs whose connections use generic plans
        # (`plan_cache_mode=force_generic_plan`, passed in DATABASE_URL: asyncpg sends unknown URL
        # parameters as server settings). PostgreSQL keeps re-planning a statement whose generic
        # plan looks costlier than its custom ones, and on a hypertable a generic plan holds every
        # chunk (excluded at executor start), so TimescaleDB keeps paying its planning per request.
        for name, url in urls.items():
            api, port = ingest_bench.start_api(url + "?plan_cache_mode=force_generic_plan", 1)
            apis.append(api)
            generic = Target(f"{name}, generic plans", url, port)
            generic.live_id = 20_000_000
            targets.append(generic)
        print(f"measuring ({args.requests} requests of each kind per API, alternating in rounds) ...", flush=True)
        await measure(targets, start, days, signal_ids, args.requests)
    finally:
        for api in apis:
            api.terminate()
            api.wait(10)
        plain.destroy()
        if ts_port is not None:
            subprocess.run([str(script), "stop", "--port", str(ts_port)], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)

    print()
    print(f"machine: {os.cpu_count()} cores, shared by both servers, the APIs and this client; "
          f"history: {args.years} years, {args.per_day} messages/day")
    print(f"history load (POST /ingest/batch): plain PG {loads[0]:.0f} s, TimescaleDB {loads[1]:.0f} s")
    for suffix, label in (("", "asyncpg's default plan caching"), (", generic plans", "plan_cache_mode=force_generic_plan")):
        plain_t, ts_t = (next(t for t in targets if t.name == n + suffix) for n in ("plain PG", "TimescaleDB"))
        print()
        print(f"{label}:")
        print(f"{'latency, ms':<30} {'plain PG p50':>12} {'p95':>8} {'Timescale p50':>14} {'p95':>8} {'ratio p50':>10}")
        for metric in plain_t.samples:
            p, t = plain_t.samples[metric], ts_t.samples[metric]
            ratio = statistics.median(t) / statistics.median(p)
            print(f"{metric:<30} {statistics.median(p):12.2f} {percentile(p, 0.95):8.2f} "
                  f"{statistics.median(t):14.2f} {percentile(t, 0.95):8.2f} {ratio:9.2f}x")
    print()
    print("tombstone check for one new message (planning + execution from EXPLAIN ANALYZE; "
          "median of the prepared statement)")
    for name, variants in tombstones.items():
        for variant, (planning, execution, median) in variants.items():
            print(f"  {name:>11} {variant:<11}: planning {planning:6.2f} ms + execution {execution:6.2f} ms; "
                  f"prepared {median:6.3f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--years", type=int, default=3)
    parser.add_argument("--per-day", type=int, default=300, help="messages a day, all channels (default 300)")
    parser.add_argument("--requests", type=int, default=200, help="requests of each kind per server (default 200)")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
