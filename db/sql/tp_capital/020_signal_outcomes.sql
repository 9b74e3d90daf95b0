-- The outcomes each signal has reached, recorded once: what `api_signal_outcomes_total{outcome}`
-- counts (docs/ingest-api.md, "Channel scorecard"). After every write that relinks follow-ups,
-- the ingest API inserts the outcomes of the signals whose events the write touched with
-- ON CONFLICT DO NOTHING and counts only the rows that were new, so an outcome derived again (a
-- redelivery, an edit, a relink, a reparse followed by a write, an API restart, another granian
-- worker) is counted once. A row stays when its event is later withdrawn: a counter never goes
-- down, and the outcome coming back is not new.
--
-- A plain table on every server (never a hypertable): a handful of rows per signal, keyed by the
-- signal id alone (signal ids are unique; the date in the signals' key is there for the
-- hypertable).
CREATE TABLE tp_capital.signal_outcomes (
    signal_id   bigint      NOT NULL,
    outcome     text        NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT signal_outcomes_pkey PRIMARY KEY (signal_id, outcome),
    CONSTRAINT signal_outcomes_outcome_check
        CHECK (outcome IN ('target_hit', 'final_target_hit', 'stopped', 'cancelled', 'closed'))
);

-- The outcomes one event gives its signal, as the scorecard counts them: a final target is also
-- a target reached (target_hit = "reached at least target 1"); a stop move or a partial exit is
-- no outcome.
CREATE FUNCTION tp_capital.event_outcomes(event_type text) RETURNS text[]
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE event_type
               WHEN 'target_hit' THEN ARRAY['target_hit']
               WHEN 'final_target_hit' THEN ARRAY['target_hit', 'final_target_hit']
               WHEN 'stop_hit' THEN ARRAY['stopped']
               WHEN 'cancelled' THEN ARRAY['cancelled']
               WHEN 'closed' THEN ARRAY['closed']
               ELSE ARRAY[]::text[]
           END
$$;

-- What is on record already was reached before the counter existed: recorded, never counted.
INSERT INTO tp_capital.signal_outcomes (signal_id, outcome)
SELECT DISTINCT e.signal_id, o.outcome
FROM tp_capital.signal_events e
JOIN tp_capital.tp_capital_signals s ON s.id = e.signal_id AND s.deleted_at IS NULL
CROSS JOIN LATERAL unnest(tp_capital.event_outcomes(e.event_type)) AS o(outcome)
WHERE e.deleted_at IS NULL
ON CONFLICT ON CONSTRAINT signal_outcomes_pkey DO NOTHING;
