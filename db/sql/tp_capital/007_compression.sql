-- Compression of old chunks, where the server has TimescaleDB's Timescale License features
-- (`timescaledb.license = 'timescale'`: the timescale/timescaledb image compose runs). Elsewhere
-- (the Apache-2.0 build, plain PostgreSQL) migrate skips it with one info line.
--
-- Only tp_capital.message_revisions is compressed, chunks older than 30 days. Why that table alone:
-- TimescaleDB (2.11 and later) still accepts INSERT, ON CONFLICT, UPDATE and DELETE on compressed
-- chunks by decompressing the batches a statement may touch first, and it can narrow those down
-- only with the statement's own filters on the segmentby/orderby columns; when the filters come
-- from a join it decompresses much more, and a statement past 100,000 decompressed rows fails.
-- - message_revisions is written only by INSERT ... ON CONFLICT DO NOTHING, routed to one chunk by
--   the message date; the conflict check decompresses the one batch whose channel_id segment and
--   message_id range can hold the key (the whole key is in segmentby + orderby, as TimescaleDB
--   asks for unique keys). A revision of an old message (an edit weeks later, an imported history)
--   is still stored, at the price of that batch being decompressed until the policy recompresses it.
-- - forwarded_messages and tp_capital_signals are updated in place by every ingest write: the
--   tombstone check (an UPDATE joined with the tombstones, without the message date) and the
--   signal lifecycle (status updates, months after the signal). Compressed, each of those writes
--   could decompress every old chunk, or fail: they stay uncompressed, at a few hundred messages a
--   day about 100 MB a year. Revisit when those statements carry filters TimescaleDB can use.
--
-- 30 days: Telegram edits come within hours or days of a message; a revision arriving later
-- lands in a compressed chunk and is still accepted. A chunk (90 days) is compressed once all of
-- it is older than that. The runner also lifts the 100,000-row limit for this database
-- (timescaledb.max_tuples_decompressed_per_dml_transaction = 0): a slow write beats a refused one,
-- which the gateway would retry forever.

UPDATE public.schema_hypertables
SET compress_after     = INTERVAL '30 days',
    compress_segmentby = 'channel_id',
    compress_orderby   = 'message_id, original_timestamp, revision_date'
WHERE table_name = 'tp_capital.message_revisions';
