-- What the ingest API needs to converge whatever order deliveries arrive in.

-- Deletions, recorded once per message even before the message itself arrives (Telegram reports
-- deletions by (channel, message id) only). The ingest API consults this table on insert and
-- re-checks it after every write, so a deletion racing its own message still ends up applied.
CREATE TABLE tp_capital.message_tombstones (
    channel_id   bigint      NOT NULL,
    message_id   bigint      NOT NULL,
    deleted_at   timestamptz NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT message_tombstones_pkey PRIMARY KEY (channel_id, message_id)
);

-- Date of the text a signal was parsed from (message date, or the edit date): an older edit
-- arriving late must not overwrite a signal parsed from a newer one.
ALTER TABLE tp_capital.tp_capital_signals ADD COLUMN revision_date timestamptz;

-- A follow-up may arrive with no open signal to attach to (or before it): keep it, unattached.
ALTER TABLE tp_capital.signal_events ALTER COLUMN signal_id DROP NOT NULL;
ALTER TABLE tp_capital.signal_events ADD COLUMN asset text NOT NULL DEFAULT '';

-- "Most recent open signal for this asset" lookups.
CREATE INDEX tp_capital_signals_open_asset_idx ON tp_capital.tp_capital_signals (asset, message_date DESC)
    WHERE deleted_at IS NULL;
