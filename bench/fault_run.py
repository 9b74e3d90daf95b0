"""Long fault-injection run: the gateway and ingest API under crashes, restarts and an outage.

    uv run python bench/fault_run.py --messages 10000 --gateway-kills 5 --api-kills 2 \
        --db-restarts 1 --api-outage-seconds 300 --seed 20261128

Starts a real PostgreSQL, the ingest API under granian and the gateway, streams the scripted
events through the gateway while injecting the faults, waits for the drain and prints the
report (messages, faults, lost, duplicated, time to drain). Exit status 0 only when nothing was
lost, duplicated, extra or wrong. The harness is shared with the CI-sized run in
tests/reliability/ (see docs/reliability.md).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the harness lives in tests/reliability/harness

from tests.reliability.harness import FaultRun, RunConfig  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="fault_run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: a new one, printed)")
    parser.add_argument("--messages", type=int, default=10_000, help="distinct messages in the stream")
    parser.add_argument("--gateway-kills", type=int, default=5, help="gateway SIGKILLs")
    parser.add_argument("--api-kills", type=int, default=2, help="ingest API SIGKILLs")
    parser.add_argument("--gateway-kills-in-outage", type=int, default=2,
                        help="extra gateway SIGKILLs while the API is down (or stalled), with a backlog queued")
    parser.add_argument("--db-restarts", type=int, default=1, help="PostgreSQL crash restarts (immediate stop)")
    parser.add_argument("--slow-periods", type=int, default=1, help="periods where the proxy holds traffic beyond the timeout")
    parser.add_argument("--db-locks", type=int, default=1, help="periods where a table lock blocks inserts beyond the timeout")
    parser.add_argument("--api-outage-seconds", type=float, default=300, help="one API outage of this length (0: none)")
    parser.add_argument("--api-timeout", type=float, default=10, help="gateway API_TIMEOUT_SECONDS")
    parser.add_argument("--max-retry-attempts", type=int, default=3, help="gateway MAX_RETRY_ATTEMPTS")
    parser.add_argument("--retry-delay-ms", type=int, default=5000, help="gateway RETRY_DELAY_MS")
    parser.add_argument("--stream-seconds", type=float, default=None, help="write the events over this long (default: auto)")
    parser.add_argument("--events-per-second", type=float, default=50, help="source rate when --stream-seconds is auto")
    parser.add_argument("--drain-timeout", type=float, default=900, help="seconds to wait for the drain after the stream")
    parser.add_argument("--base-time", type=datetime.fromisoformat, default=None,
                        help="message dates start here (printed by a previous run; for an exact replay)")
    parser.add_argument("--workdir", type=Path, default=None, help="keep logs and files here (default: a temp folder)")
    parser.add_argument("--keep-workdir", action="store_true", help="keep the folder even when the run passes")
    parser.add_argument("--json", type=Path, default=None, help="also write the report as JSON here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    config = RunConfig(
        seed=seed,
        messages=args.messages,
        gateway_kills=args.gateway_kills,
        api_kills=args.api_kills,
        db_restarts=args.db_restarts,
        gateway_kills_in_outage=args.gateway_kills_in_outage,
        slow_periods=args.slow_periods,
        db_locks=args.db_locks,
        api_outage_seconds=args.api_outage_seconds,
        api_timeout_seconds=args.api_timeout,
        max_retry_attempts=args.max_retry_attempts,
        retry_delay_ms=args.retry_delay_ms,
        stream_seconds=args.stream_seconds,
        events_per_second=args.events_per_second,
        drain_timeout=args.drain_timeout,
        base_time=args.base_time,
        workdir=args.workdir,
        keep_workdir=args.keep_workdir,
    )
    report = FaultRun(config).run()
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report.as_dict(), indent=2))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
