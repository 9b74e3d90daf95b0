"""One fault-injection run: real PostgreSQL, ingest API and gateway, a scripted source, faults.

    config = RunConfig(seed=42, messages=2000, gateway_kills=3, api_kills=1, db_restarts=1)
    report = FaultRun(config).run()
    assert report.ok, report.render()

Timeline: start PostgreSQL (migrated), the ingest API under granian, the stallable proxy in
front of it and the gateway following an (empty) source file. A writer thread appends the
scripted events to that file at a steady rate for `stream_seconds`; meanwhile the main thread
injects the planned faults one after the other at their seeded moments. When the stream is
written and every service is back, it waits until the gateway's queue is empty and the
database matches the source model, or until `drain_timeout`, and reports the difference.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import shutil
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from tests.support import processes
from tests.support.db import connection

from .checker import CheckResult, check_database
from .proxy import StallableProxy
from .script import Script, build_script, default_base_time

GATEWAY_KILL = "gateway_kill"
API_KILL = "api_kill"
DB_RESTART = "db_restart"
API_SLOW = "api_slow"  # proxy holds requests and answers beyond the gateway's timeout
DB_LOCK = "db_lock"  # a transaction locks the messages table: inserts block beyond the timeout
API_OUTAGE = "api_outage"  # the API is stopped for `api_outage_seconds`


@dataclass
class RunConfig:
    seed: int
    messages: int = 2000
    gateway_kills: int = 3
    api_kills: int = 1
    db_restarts: int = 1
    slow_periods: int = 1
    db_locks: int = 1
    api_outage_seconds: float = 0.0
    # Extra gateway SIGKILLs while the API is down or stalled (the outage if there is one, else a
    # slow period): the gateway dies with a backlog in its queue and requests on the wire.
    gateway_kills_in_outage: int = 0
    # Gateway settings for the run (the gateway's own defaults are 10 s / 3 / 5000 ms).
    api_timeout_seconds: float = 2.0
    max_retry_attempts: int = 5
    retry_delay_ms: int = 200
    # How long a slow period lasts; by default a few seconds beyond the gateway's timeout.
    slow_seconds: float | None = None
    # Seconds over which the events are written; by default from `events_per_second` and the faults.
    stream_seconds: float | None = None
    events_per_second: float = 50.0
    drain_timeout: float = 120.0
    base_time: datetime | None = None
    workdir: Path | None = None
    keep_workdir: bool = False
    quiet: bool = False

    def replay_command(self) -> str:
        args = [
            f"--seed {self.seed}", f"--messages {self.messages}", f"--gateway-kills {self.gateway_kills}",
            f"--api-kills {self.api_kills}", f"--db-restarts {self.db_restarts}",
            f"--gateway-kills-in-outage {self.gateway_kills_in_outage}",
            f"--slow-periods {self.slow_periods}", f"--db-locks {self.db_locks}",
            f"--api-outage-seconds {self.api_outage_seconds:g}", f"--api-timeout {self.api_timeout_seconds:g}",
            f"--max-retry-attempts {self.max_retry_attempts}", f"--retry-delay-ms {self.retry_delay_ms}",
        ]
        if self.stream_seconds:
            args.append(f"--stream-seconds {self.stream_seconds:g}")
        if self.base_time:
            args.append(f"--base-time {self.base_time.isoformat()}")
        return "uv run python bench/fault_run.py " + " ".join(args)


@dataclass
class Fault:
    kind: str
    at: float  # planned start, seconds after the stream started
    hold: float  # seconds the service stays down / slow
    started: float | None = None  # actual, seconds after the stream started
    recovered: float | None = None
    during: str | None = None  # the fault this one is injected inside (its `nested`)
    nested: list["Fault"] = field(default_factory=list)

    def describe(self) -> str:
        when = f"planned +{self.at:.1f}s"
        if self.during:
            when = f"during {self.during}, " + when
        if self.started is not None:
            when += f", injected +{self.started:.1f}s"
        if self.recovered is not None:
            when += f", recovered +{self.recovered:.1f}s"
        return f"{self.kind:<12} hold {self.hold:5.1f}s ({when})"


def plan_faults(config: RunConfig, stream_seconds: float) -> list[Fault]:
    """The faults and their moments, drawn from the seed (a stream separate from the script's)."""
    rng = random.Random(f"faults:{config.seed}")
    slow = config.slow_seconds or config.api_timeout_seconds + 3.0
    faults: list[Fault] = []
    faults += [Fault(GATEWAY_KILL, 0, rng.uniform(0.2, 2.0)) for _ in range(config.gateway_kills)]
    faults += [Fault(API_KILL, 0, rng.uniform(0.5, 3.0)) for _ in range(config.api_kills)]
    faults += [Fault(DB_RESTART, 0, rng.uniform(1.0, 3.0)) for _ in range(config.db_restarts)]
    faults += [Fault(API_SLOW, 0, slow + rng.uniform(0, 2)) for _ in range(config.slow_periods)]
    faults += [Fault(DB_LOCK, 0, slow + rng.uniform(0, 2)) for _ in range(config.db_locks)]
    if config.api_outage_seconds > 0:
        faults.append(Fault(API_OUTAGE, 0, config.api_outage_seconds))
    rng.shuffle(faults)
    if not faults:
        return faults
    # Spread them over 5%..90% of the stream: the free time is cut at random points. Each fault
    # is budgeted a few seconds on top of its hold for the restart itself.
    busy = sum(fault.hold + 4.0 for fault in faults)
    free = max(stream_seconds * 0.85 - busy, 0.0)
    cuts = sorted(rng.uniform(0, free) for _ in faults)
    moment = stream_seconds * 0.05
    previous_cut = 0.0
    for fault, cut in zip(faults, cuts):
        moment += cut - previous_cut
        previous_cut = cut
        fault.at = round(moment, 1)
        moment += fault.hold + 4.0
    _plan_nested_kills(config, faults, rng)
    return faults


def _plan_nested_kills(config: RunConfig, faults: list[Fault], rng: random.Random) -> None:
    """Gateway kills inside the outage (or else the slow periods), spread over its middle part."""
    if not config.gateway_kills_in_outage:
        return
    hosts = [f for f in faults if f.kind == API_OUTAGE] or [f for f in faults if f.kind == API_SLOW]
    if not hosts:
        raise ValueError("gateway_kills_in_outage needs an API outage or a slow period")
    for index in range(config.gateway_kills_in_outage):
        host = hosts[index % len(hosts)]
        host.nested.append(Fault(GATEWAY_KILL, 0, rng.uniform(0.2, 2.0), during=host.kind))
    for host in hosts:
        # Inside [10%, 80%] of the host's hold, one after the other, each with room to restart.
        slot = host.hold * 0.7 / len(host.nested) if host.nested else 0
        for number, kill in enumerate(host.nested):
            start = host.hold * 0.1 + number * slot
            # Not always at the very start of a short stall: some backlog should have built up.
            kill.at = round(host.at + start + rng.uniform(0, max(slot * 0.5, slot - kill.hold - 3.0)), 1)


def all_faults(faults: list[Fault]) -> list[Fault]:
    """The planned faults with the ones nested inside others, in planned order."""
    flat = [fault for top in faults for fault in (top, *top.nested)]
    return sorted(flat, key=lambda fault: fault.at)


def auto_stream_seconds(config: RunConfig, events: int) -> float:
    by_rate = events / config.events_per_second
    slow = config.slow_seconds or config.api_timeout_seconds + 3.0
    holds = (config.gateway_kills * 2 + config.api_kills * 3 + config.db_restarts * 3
             + (config.slow_periods + config.db_locks) * (slow + 2) + config.api_outage_seconds)
    faults = config.gateway_kills + config.api_kills + config.db_restarts + config.slow_periods + config.db_locks
    return max(20.0, by_rate, (holds + faults * 4.0) / 0.8)


@dataclass
class Backlog:
    fault: str
    recovered_at: float  # seconds after the stream started
    depth: int  # the largest queue depth seen during the fault and the seconds after it
    drained_after: float | None  # seconds from recovery until the queue was back to live levels

    def describe(self) -> str:
        after = f"{self.drained_after:.1f}s" if self.drained_after is not None else "- (the next fault began first)"
        return f"after {self.fault} (back at +{self.recovered_at:.1f}s): up to {self.depth} queued, drained in {after}"


class QueueMonitor(threading.Thread):
    """Samples the gateway's queueDepth twice a second (whatever port the current gateway has)."""

    def __init__(self, run: "FaultRun") -> None:
        super().__init__(name="queue-monitor", daemon=True)
        self.run_ = run
        self.samples: list[tuple[float, int]] = []
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.wait(0.5):
            health = processes.gateway_health(self.run_.gateway_port, timeout=0.5)
            if health is not None and isinstance(health.get("queueDepth"), int):
                self.samples.append((self.run_._now(), health["queueDepth"]))

    def stop(self) -> None:
        self._halt.set()

    def queued_at_kills(self, faults: list[Fault]) -> list[int]:
        """The queue depth last seen before each gateway kill (what the restarted gateway had to recover)."""
        depths = []
        for fault in faults:
            if fault.kind == GATEWAY_KILL and fault.started is not None:
                depths.append(next((d for t, d in reversed(self.samples) if t <= fault.started), 0))
        return depths

    def backlogs(self, faults: list[Fault], live_level: int) -> list[Backlog]:
        """For each API or database fault: the backlog when it ended and the time until the queue
        was back at `live_level`, looked for until the next fault began (None: it began first)."""
        found = []
        starts = sorted(f.started for f in faults if f.started is not None)
        for fault in faults:
            if fault.kind not in (API_KILL, API_OUTAGE, API_SLOW, DB_LOCK, DB_RESTART) or fault.recovered is None:
                continue
            until = next((start for start in starts if start > fault.recovered), float("inf"))
            after = [(t, depth) for t, depth in self.samples if fault.recovered <= t < until]
            # The backlog peaks at the end of the fault (the queue empties within a second after).
            depth = max((d for t, d in self.samples if fault.started <= t <= min(fault.recovered + 5, until)),
                        default=0)
            drained = next((t - fault.recovered for t, d in after if d <= live_level), None)
            found.append(Backlog(fault.kind, fault.recovered, depth, drained))
        return found


@dataclass
class Report:
    config: RunConfig
    script: Script
    faults: list[Fault]
    check: CheckResult | None = None
    drained: bool = False
    time_to_drain: float | None = None
    stream_seconds: float = 0.0
    total_seconds: float = 0.0
    gateway_health: dict | None = None
    unexpected_exits: list[str] = field(default_factory=list)
    token_leaks: list[str] = field(default_factory=list)
    # Lines in the gateway's dead-letter and quarantine files (every scripted event is valid, so
    # a dead letter is a message the API wrongly refused; quarantined lines are torn writes
    # found after a SIGKILL, harmless only if the source is re-read past them).
    dead_letters: int = 0
    quarantined: int = 0
    workdir: Path | None = None
    # The gateway's queue depth over the run (from /health): the largest backlog and, after each
    # API fault, how long the backlog took to drain once the API was back.
    peak_queue_depth: int = 0
    queued_at_gateway_kills: list[int] = field(default_factory=list)
    queue_samples: list[tuple[float, int]] = field(default_factory=list)
    backlogs: list["Backlog"] = field(default_factory=list)

    @property
    def lost(self) -> int:
        return len(self.check.lost) if self.check else self.script.stats.messages

    @property
    def duplicated(self) -> int:
        return len(self.check.duplicated) if self.check else 0

    @property
    def ok(self) -> bool:
        return (self.check is not None and self.check.ok and self.drained
                and not self.unexpected_exits and not self.token_leaks and not self.dead_letters)

    def as_dict(self) -> dict:
        """The report's figures, for `--json` (bench/results/)."""
        check = self.check
        return {
            "seed": self.config.seed,
            "base_time": self.script.base_time.isoformat(),
            "messages": self.script.stats.messages,
            "events": self.script.stats.events,
            "script": vars(self.script.stats),
            "faults": [{key: value for key, value in vars(fault).items() if key != "nested"}
                       for fault in self.faults],
            "lost": self.lost,
            "duplicated": self.duplicated,
            "extra": len(check.extra) if check else None,
            "wrong_text": len(check.wrong_text) if check else None,
            "wrong_deleted": len(check.wrong_deleted) if check else None,
            "wrong_revisions": len(check.wrong_revisions) if check else None,
            "drained": self.drained,
            "time_to_drain_seconds": self.time_to_drain,
            "stream_seconds": self.stream_seconds,
            "total_seconds": self.total_seconds,
            "gateway_health": self.gateway_health,
            "unexpected_exits": self.unexpected_exits,
            "token_leaks": self.token_leaks,
            "dead_letters": self.dead_letters,
            "peak_queue_depth": self.peak_queue_depth,
            "queued_at_gateway_kills": self.queued_at_gateway_kills,
            "queue_samples": [[round(t, 2), depth] for t, depth in self.queue_samples],
            "backlogs": [vars(backlog) for backlog in self.backlogs],
            "quarantined": self.quarantined,
            "ok": self.ok,
            "replay": self.config.replay_command(),
        }

    def render(self) -> str:
        stats = self.script.stats
        kinds = Counter(fault.kind for fault in self.faults if fault.started is not None)
        lines = [
            f"fault run seed={self.config.seed} base_time={self.script.base_time.isoformat()}",
            f"messages: {stats.messages} (events {stats.events}: edits {stats.edits} "
            f"[{stats.edits_out_of_order} out of order, {stats.edits_before_create} before create], "
            f"deletions {stats.deletions} [{stats.deletions_before_create} before create, "
            f"{stats.deletions_without_date} without date], duplicates {stats.duplicates}, "
            f"backfilled late {stats.backfilled})",
            f"faults injected: {sum(kinds.values())} ("
            + ", ".join(f"{kind} x{count}" for kind, count in sorted(kinds.items())) + ")",
        ]
        lines += [f"  {fault.describe()}" for fault in self.faults]
        if self.check is not None:
            check = self.check
            lines.append(
                f"lost: {len(check.lost)}  duplicated: {len(check.duplicated)}  extra: {len(check.extra)}  "
                f"wrong text: {len(check.wrong_text)}  wrong timestamp: {len(check.wrong_timestamp)}  "
                f"wrong deleted: {len(check.wrong_deleted)}  wrong revisions: {len(check.wrong_revisions)}  "
                f"wrong signals: {len(check.wrong_signals)}  wrong events: {len(check.wrong_events)}  "
                f"(rows {check.stored_rows}, expected {check.expected})"
            )
            lines += [f"  {sample}" for sample in check.samples]
        drain = f"{self.time_to_drain:.1f}s" if self.time_to_drain is not None else "NOT DRAINED"
        lines.append(f"time to drain: {drain}  stream: {self.stream_seconds:.1f}s  total: {self.total_seconds:.1f}s")
        lines.append(f"gateway health at the end: {self.gateway_health}")
        lines.append(f"gateway dead letters: {self.dead_letters}  quarantined lines: {self.quarantined}")
        lines.append(f"gateway queue: peak {self.peak_queue_depth} queued; at each gateway kill: "
                     f"{', '.join(map(str, self.queued_at_gateway_kills)) or '-'}")
        lines += [f"  backlog {backlog.describe()}" for backlog in self.backlogs]
        if self.unexpected_exits:
            lines.append(f"unexpected exits: {self.unexpected_exits}")
        if self.token_leaks:
            lines.append(f"token leaked (more than 8 characters) in: {self.token_leaks}")
        lines.append(f"result: {'PASS' if self.ok else 'FAIL'}")
        lines.append(f"replay: {self.config.replay_command()}")
        if self.workdir is not None:
            lines.append(f"logs: {self.workdir}")
        return "\n".join(lines)


class SourceWriter(threading.Thread):
    """Appends the scripted events to the source file at a steady rate (whole lines only)."""

    def __init__(self, path: Path, lines: list[bytes], seconds: float) -> None:
        super().__init__(name="source-writer", daemon=True)
        self.path = path
        self.lines = lines
        self.seconds = seconds
        self.written = 0
        self._halt = threading.Event()

    def run(self) -> None:
        started = time.monotonic()
        with open(self.path, "ab") as source:
            while self.written < len(self.lines) and not self._halt.is_set():
                share = min(1.0, (time.monotonic() - started) / self.seconds)
                target = max(self.written, int(share * len(self.lines)))
                if target > self.written:
                    source.write(b"".join(self.lines[self.written:target]))
                    source.flush()
                    self.written = target
                self._halt.wait(0.05)

    def stop(self) -> None:
        self._halt.set()


class FaultRun:
    def __init__(self, config: RunConfig) -> None:
        self.config = config
        self.token = secrets.token_urlsafe(36)
        self.workdir = Path(config.workdir or tempfile.mkdtemp(prefix="tsfault-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.source = self.workdir / "events.jsonl"
        self._t0 = time.monotonic()
        self._stream_t0: float | None = None
        self._run_log = open(self.workdir / "run.log", "a")
        self.db: processes.Database | None = None
        self.api: processes.ManagedProcess | None = None
        self.gateway: processes.ManagedProcess | None = None
        self.proxy: StallableProxy | None = None
        self.api_port = 0
        self.gateway_port = 0
        # Services intentionally down right now (not to be reported as crashes).
        self._down: set[str] = set()
        self.unexpected_exits: list[str] = []

    # -- output ------------------------------------------------------------------------------

    def log(self, message: str) -> None:
        stamp = time.monotonic() - (self._stream_t0 or self._t0)
        line = f"[fault-run {'+' if self._stream_t0 else 'setup '}{stamp:6.1f}s] {message}"
        self._run_log.write(line + "\n")
        self._run_log.flush()
        if not self.config.quiet:
            print(line, flush=True)

    # -- services ----------------------------------------------------------------------------

    def _start_api(self) -> None:
        self.api_port = processes.free_port()
        self.api = processes.ingest_api(self.api_port, self.db.url, self.token, self.workdir / "ingest-api.log",
                                        CORS_ORIGIN="http://localhost:3000")
        self.api.start()
        self.proxy.set_target(self.api_port)

    def _start_gateway(self) -> None:
        self.gateway_port = processes.free_port()
        self.gateway = processes.gateway(
            self.gateway_port, self.source, f"http://127.0.0.1:{self.proxy.port}/ingest", self.token,
            self.workdir, self.workdir / "gateway.log",
            API_TIMEOUT_SECONDS=f"{self.config.api_timeout_seconds:g}",
            MAX_RETRY_ATTEMPTS=str(self.config.max_retry_attempts),
            RETRY_DELAY_MS=str(self.config.retry_delay_ms),
        )
        self.gateway.start()

    def setup(self) -> None:
        self.source.touch()
        self.db = processes.Database(self.workdir / "pg").start()
        self.log(f"{self.db.describe()} up on port {self.db.server.port}, database {self.db.name} migrated")
        self.proxy = StallableProxy(0).start()
        self._start_api()
        self.log(f"ingest API up on port {self.api_port} (proxy {self.proxy.port})")
        self._start_gateway()
        self.log(f"gateway up on port {self.gateway_port}, following {self.source}")

    def teardown(self) -> None:
        for service in (self.gateway, self.api):
            if service is not None:
                service.stop()
        if self.proxy is not None:
            self.proxy.close()
        if self.db is not None:
            self.db.destroy()

    def _watch(self) -> None:
        """A service that died on its own is a finding: record it and bring it back."""
        for name, service, restart in (("gateway", self.gateway, self._start_gateway),
                                       ("ingest-api", self.api, self._start_api)):
            if name in self._down or service is None or service.running:
                continue
            code = service.proc.returncode if service.proc else None
            self.unexpected_exits.append(f"{name} exited with {code} at +{self._now():.1f}s")
            self.log(f"UNEXPECTED: {name} exited with {code}; restarting\n{service.log_tail(15)}")
            restart()

    def _now(self) -> float:
        return time.monotonic() - (self._stream_t0 or self._t0)

    def _sleep_until(self, moment: float) -> None:
        while self._now() < moment:
            self._watch()
            time.sleep(min(0.25, max(0.0, moment - self._now())))

    # -- faults ------------------------------------------------------------------------------

    def inject(self, fault: Fault) -> None:
        fault.started = self._now()
        self.log(f"FAULT {fault.kind}: hold {fault.hold:.1f}s")
        if fault.kind == GATEWAY_KILL:
            self._down.add("gateway")
            self.gateway.kill()
            time.sleep(fault.hold)
            self._start_gateway()
            self._down.discard("gateway")
        elif fault.kind in (API_KILL, API_OUTAGE):
            self._down.add("ingest-api")
            if fault.kind == API_KILL:
                self.api.kill()
            else:
                self.api.stop()
            self._hold(fault)
            self._start_api()
            self._down.discard("ingest-api")
        elif fault.kind == DB_RESTART:
            self.db.crash()
            time.sleep(fault.hold)
            self.db.start_again()
        elif fault.kind == API_SLOW:
            self.proxy.stall()
            self._hold(fault)
            self.proxy.resume()
        elif fault.kind == DB_LOCK:
            asyncio.run(self._hold_table_lock(fault.hold))
        else:  # pragma: no cover - plan_faults only makes the kinds above
            raise ValueError(fault.kind)
        fault.recovered = self._now()
        self.log(f"recovered from {fault.kind} after {fault.recovered - fault.started:.1f}s")

    def _hold(self, fault: Fault) -> None:
        """Keep `fault` up for its hold, injecting the faults nested in it at their moments."""
        end = self._now() + fault.hold
        late = fault.started - fault.at  # the host may start after its planned moment
        for inner in fault.nested:
            self._sleep_until(inner.at + late)
            self.inject(inner)
        self._sleep_until(end)

    async def _hold_table_lock(self, seconds: float) -> None:
        async with connection(self.db.url, timeout=10) as conn:
            async with conn.transaction():
                await conn.execute("LOCK TABLE tp_capital.forwarded_messages IN EXCLUSIVE MODE")
                await asyncio.sleep(seconds)

    # -- the run -------------------------------------------------------------------------------

    def run(self) -> Report:
        config = self.config
        if config.base_time is None:
            config.base_time = default_base_time()
        script = build_script(config.seed, config.messages, base_time=config.base_time)
        stream_seconds = config.stream_seconds or auto_stream_seconds(config, script.stats.events)
        faults = plan_faults(config, stream_seconds)
        report = Report(config=config, script=script, faults=all_faults(faults), workdir=self.workdir)
        self.log(f"seed {config.seed}, base time {config.base_time.isoformat()}, workdir {self.workdir}")
        self.log(f"{script.stats.messages} messages in {script.stats.events} events over {stream_seconds:.0f}s; "
                 f"planned faults:")
        for fault in all_faults(faults):
            self.log(f"  {fault.describe()}")
        self.log(f"replay with: {config.replay_command()}")
        started = time.monotonic()
        monitor: QueueMonitor | None = None
        try:
            self.setup()
            writer = SourceWriter(self.source, script.lines(), stream_seconds)
            self._stream_t0 = time.monotonic()
            writer.start()
            monitor = QueueMonitor(self)
            monitor.start()
            for fault in faults:
                self._sleep_until(fault.at)
                self.inject(fault)
            while writer.is_alive():
                self._watch()
                writer.join(0.25)
            report.stream_seconds = self._now()
            self.log(f"stream written ({writer.written} events); waiting for the drain")
            self._drain(report, script)
        finally:
            report.total_seconds = time.monotonic() - started
            report.unexpected_exits = list(self.unexpected_exits)
            if monitor is not None:
                monitor.stop()
                report.peak_queue_depth = max((depth for _, depth in monitor.samples), default=0)
                report.queued_at_gateway_kills = monitor.queued_at_kills(report.faults)
                report.queue_samples = list(monitor.samples)
                # "Live level": what the steady stream keeps queued (a second's worth of events).
                report.backlogs = monitor.backlogs(report.faults, live_level=int(config.events_per_second))
            try:
                self.teardown()
            finally:
                report.token_leaks = self._token_leaks()
                report.dead_letters = self._count_lines("*dead-letter*")
                report.quarantined = self._count_lines("*quarantine*")
        keep = config.keep_workdir or not report.ok
        if not keep:
            report.workdir = None
        self.log("report:\n" + report.render())
        self._run_log.close()
        if not keep:
            shutil.rmtree(self.workdir, ignore_errors=True)
        return report

    def _drain(self, report: Report, script: Script) -> None:
        drain_started = time.monotonic()
        deadline = drain_started + self.config.drain_timeout
        last_summary = ""
        while True:
            self._watch()
            health = processes.gateway_health(self.gateway_port)
            check = asyncio.run(check_database(self.db.url, script.expected))
            depth = (health or {}).get("queueDepth")
            report.check, report.gateway_health = check, health
            if check.ok and depth == 0:
                report.drained = True
                report.time_to_drain = time.monotonic() - drain_started
                self.log(f"drained in {report.time_to_drain:.1f}s: {check.summary()}")
                return
            summary = f"queueDepth={depth} {check.summary()}"
            if summary != last_summary:
                self.log(f"draining: {summary}")
                last_summary = summary
            if time.monotonic() > deadline:
                self.log(f"NOT drained after {self.config.drain_timeout:.0f}s: {summary}")
                return
            time.sleep(1.0)

    def _count_lines(self, pattern: str) -> int:
        return sum(len(path.read_bytes().splitlines()) for path in self.workdir.glob(pattern) if path.is_file())

    def _token_leaks(self) -> list[str]:
        """Log files holding more than the first 8 characters of the shared token."""
        windows = {self.token[i:i + 9] for i in range(len(self.token) - 8)}
        leaks = []
        for path in sorted(self.workdir.glob("*.log")):
            if path.name == "run.log":
                continue
            text = path.read_text(errors="replace")
            if any(window in text for window in windows):
                leaks.append(path.name)
        return leaks
