"""`api_signal_outcomes_total{outcome}`: each outcome a signal reaches, counted once.

Outcomes are the scorecard's (docs/ingest-api.md, "Channel scorecard"): `target_hit` (reached
at least target 1; a final target counts here too), `final_target_hit`, `stopped`, `cancelled`,
`closed`. They come from the signal's live linked events, whatever order those arrived in, so a
batch holding a target hit and then a stop counts both, as a live channel posting them an hour
apart does.

After a write has relinked its channels (`tp_capital.relink_events`, in the same statement:
`tp_capital.relink_and_record`), one statement inserts the outcomes of every live signal that has a live
event from the relinked dates on into `tp_capital.signal_outcomes` (key: signal, outcome) with
ON CONFLICT DO NOTHING, and only the rows it inserted are counted. A redelivery, an edit, a
relink or a reparse that derives the same outcome again inserts nothing, so nothing is counted
twice, across restarts and granian workers too (the database decides, not the process).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

from .. import metrics
from ..ingest import sql

log = logging.getLogger(__name__)

# $1/$2: the channels relinked and the date each was relinked from (events before it did not
# change). The statement is `tp_capital.record_outcomes` (db/sql/tp_capital/021): every lookup
# by key, the signal through `signal_keys` so that only its chunk is read on TimescaleDB. The
# ingest path runs it in the same statement as its relink (`tp_capital.relink_and_record`,
# ingest/sql.py RELINK_AND_RECORD) and counts the rows with `count_outcomes`.
RECORD_OUTCOMES = """
SELECT outcome FROM tp_capital.record_outcomes($1::bigint[], $2::timestamptz[]) AS outcome
"""


def count_outcomes(rows: Sequence[Any]) -> None:
    """Count the outcomes a statement recorded as new (rows with an `outcome` column)."""
    for row in rows:
        metrics.SIGNAL_OUTCOMES.labels(outcome=row["outcome"]).inc()


async def count_new_outcomes(conn: Any, channel_ids: Sequence[int], from_dates: Sequence[datetime]) -> None:
    """Record and count the outcomes reached since `from_dates` that were not on record yet.

    The write it follows has committed: a failure here is logged and leaves the answer alone
    (the outcome is recorded by the next write that touches the signal).
    """
    if not channel_ids:
        return
    try:
        rows = await conn.fetch(RECORD_OUTCOMES, list(channel_ids), list(from_dates))
    except (asyncpg.UndefinedTableError, asyncpg.UndefinedFunctionError):
        log.warning("signal outcomes not recorded: migration tp_capital/020 is not applied (run `uv run migrate`)")
        return
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as exc:
        log.warning("signal outcomes not recorded: %s: %s", type(exc).__name__, exc)
        return
    count_outcomes(rows)


async def relink_and_count(conn: Any, channel_ids: Sequence[int], from_dates: Sequence[datetime],
                           refresh_ids: Sequence[int]) -> None:
    """After a write: relink its channels and count the new outcomes, in one statement
    (`RELINK_AND_RECORD`). On a database without migration 020 the outcomes cannot be recorded:
    the relink runs alone and `count_new_outcomes` says so in the log, as before."""
    try:
        rows = await conn.fetch(sql.RELINK_AND_RECORD, list(channel_ids), list(from_dates), list(refresh_ids))
    except (asyncpg.UndefinedTableError, asyncpg.UndefinedFunctionError):
        await conn.execute(sql.RELINK, list(channel_ids), list(from_dates), list(refresh_ids))
        await count_new_outcomes(conn, channel_ids, from_dates)
        return
    count_outcomes(rows)


async def settle_and_count(conn: Any, touched: Sequence[tuple[int, int]], channel_ids: Sequence[int],
                           from_dates: Sequence[datetime], refresh_ids: Sequence[int]) -> None:
    """After a write's rows have committed: apply the tombstones of the `touched` (channel,
    message) ids, relink (the given channels and those a tombstone changed) and count the new
    outcomes, in one statement (`SETTLE_WRITE`, db/sql/tp_capital/023). On a database without
    migration 023 the same runs as the two statements it replaces."""
    try:
        rows = await conn.fetch(sql.SETTLE_WRITE, [c for c, _ in touched], [m for _, m in touched],
                                list(channel_ids), list(from_dates), list(refresh_ids))
    except asyncpg.UndefinedFunctionError:
        relink = dict(zip(channel_ids, from_dates))
        for row in await conn.fetch(sql.APPLY_TOMBSTONES, [c for c, _ in touched], [m for _, m in touched]):
            current = relink.get(row["channel_id"])
            if current is None or row["from_date"] < current:
                relink[row["channel_id"]] = row["from_date"]
        if relink or refresh_ids:
            channels = sorted(relink)
            await relink_and_count(conn, channels, [relink[c] for c in channels], refresh_ids)
        return
    count_outcomes(rows)
