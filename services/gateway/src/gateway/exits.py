"""Exit statuses of the `gateway` command, and the one-line message a failing command prints.

0 done; 1 runtime failure (API unavailable, messages refused, queue owned by another process, port
in use, a source failure: systemd restarts the unit); 2 configuration or input problem that a
restart cannot fix (missing credentials or session, bad env value, unreadable export), printed as
one line; 3 the work was done, but this run set damaged queue lines aside (quarantined: they are in
`failure-queue.quarantine.jsonl`, and `gateway status` counts them). 1 and 2 win over 3.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

PROG = "gateway"
EXIT_SET_ASIDE = 3
# Problems printed one per line by a command; the rest are counted (all are in the log files).
SHOWN_PROBLEMS = 10


def fail(message: str, status: int) -> int:
    """Print `gateway: <message>` on stderr and return `status`."""
    from ts_runtime.logs import mask

    # Not a log record, but read like one (journald keeps it): secrets cut as in the logs.
    print(f"{PROG}: {mask(message)}", file=sys.stderr, flush=True)
    return status


def print_problems(command: str, problems: Sequence[str]) -> None:
    """The first SHOWN_PROBLEMS problems, one a line, then how many more."""
    for problem in problems[:SHOWN_PROBLEMS]:
        print(f"{command}:   {problem}", file=sys.stderr, flush=True)
    if len(problems) > SHOWN_PROBLEMS:
        print(f"{command}:   … and {len(problems) - SHOWN_PROBLEMS} more", file=sys.stderr, flush=True)
