"""Fault-injection harness: real services as processes, a scripted source, faults, a checker.

Used by the CI-sized run (tests/reliability/test_fault_run.py) and the long run
(bench/fault_run.py); docs/reliability.md explains it.
"""

from .checker import CheckResult, check_database, compare
from tests.support.processes import Database, ManagedProcess
from .proxy import StallableProxy
from .run import Fault, FaultRun, Report, RunConfig, plan_faults
from .script import ExpectedMessage, Script, build_script, replay_final_state

__all__ = [
    "CheckResult",
    "Database",
    "ExpectedMessage",
    "Fault",
    "FaultRun",
    "ManagedProcess",
    "Report",
    "RunConfig",
    "Script",
    "StallableProxy",
    "build_script",
    "check_database",
    "compare",
    "plan_faults",
    "replay_final_state",
]
