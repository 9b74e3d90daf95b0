-- The old API's `DELETE /signals {"ingestedAt": ...}` identifies one signal by its ingested_at.
-- With `DEFAULT now()` (the transaction's start time) every signal stored by one statement (an
-- /ingest/batch, or concurrent /ingest calls coalesced into one INSERT) got the same value, so
-- that delete hit all of them. clock_timestamp() is read per row: distinct within a statement.
--
-- SET DEFAULT works the same on a plain table and on a TimescaleDB hypertable (propagated to its
-- chunks). Rows stored before this keep their shared values; the API refuses (409) a delete that
-- matches more than one of them.
ALTER TABLE tp_capital.tp_capital_signals ALTER COLUMN ingested_at SET DEFAULT clock_timestamp();
