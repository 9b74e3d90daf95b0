"""`api_signal_outcomes_total{outcome}`: each outcome a signal reaches, counted once.

Outcomes are the scorecard's (docs/ingest-api.md, "Channel scorecard"): `target_hit` (reached
at least target 1; a final target counts here too), `final_target_hit`, `stopped`, `cancelled`,
`closed`. They come from the signal's live linked events, whatever order those arrived in, so a
batch holding a target hit and then a stop counts both, as a live channel posting them an hour
apart does.

After a write has relinked its channels (`tp_capital.relink_events`), the ingest path calls
`count_new_outcomes`: one statement inserts the outcomes of every live signal that has a live
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

log = logging.getLogger(__name__)

# $1/$2: the channels relinked and the date each was relinked from (events before it did not
# change). Every lookup is by key, in LATERAL or scalar subqueries on purpose: as joins, the
# planner hashes the whole events and signals tables (25-35 ms for 33,000 signals, against well
# under a millisecond for a live write).
RECORD_OUTCOMES = """
WITH touched AS (
    SELECT DISTINCT e.signal_id
    FROM unnest($1::bigint[], $2::timestamptz[]) AS k(channel_id, from_date)
    CROSS JOIN LATERAL (
        SELECT e.signal_id FROM tp_capital.signal_events e
        WHERE e.channel_id = k.channel_id AND e.message_date >= k.from_date
          AND e.signal_id IS NOT NULL AND e.deleted_at IS NULL
          AND e.event_type IN ('target_hit', 'final_target_hit', 'stop_hit', 'cancelled', 'closed')
        OFFSET 0  -- keeps this a per-channel index scan (a plain subquery is flattened into a join)
    ) e
),
reached AS (
    SELECT DISTINCT t.signal_id, o.outcome
    FROM touched t
    CROSS JOIN LATERAL (
        SELECT e.event_type FROM tp_capital.signal_events e
        WHERE e.signal_id = t.signal_id AND e.deleted_at IS NULL
        OFFSET 0
    ) e
    CROSS JOIN LATERAL unnest(tp_capital.event_outcomes(e.event_type)) AS o(outcome)
    WHERE COALESCE((SELECT s.deleted_at IS NULL FROM tp_capital.tp_capital_signals s
                    WHERE s.id = t.signal_id LIMIT 1), false)
)
INSERT INTO tp_capital.signal_outcomes (signal_id, outcome)
SELECT signal_id, outcome FROM reached
ORDER BY signal_id, outcome
ON CONFLICT ON CONSTRAINT signal_outcomes_pkey DO NOTHING
RETURNING outcome
"""


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
    for row in rows:
        metrics.SIGNAL_OUTCOMES.labels(outcome=row["outcome"]).inc()
