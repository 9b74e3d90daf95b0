-- Which tables are TimescaleDB hypertables, on which column, in chunks of what size.
--
-- The runner (ts_runtime/timescaledb.py) reads public.schema_hypertables after the migrations: on
-- a server that preloads TimescaleDB it turns these tables into hypertables (at once while they
-- are empty; with `migrate --hypertables` once they hold rows); on a server with the package but
-- without the preload they stay plain tables and migrate prints one warning; on plain PostgreSQL
-- they stay plain tables. The keys are the same in all three: every unique key below contains
-- its table's partition column, which a hypertable requires (it checks uniqueness per chunk).
--
-- Chunk intervals, for the real rate: a few hundred messages a day across the channels.
-- - forwarded_messages: a row with its indexes is about 1 KB (text, photos and sender JSON), so
--   90 days is 30-45k rows, 30-50 MB: the chunk being written stays in memory, and 3 years of
--   history is 13 chunks (13 years: 53). TimescaleDB's default of 7 days would make 157 chunks
--   for 3 years of a small table, and every query the planner cannot narrow to a few chunks pays
--   planning time per chunk (28 ms with 163 chunks, measured in issue 14). Longer than 90 days
--   gains little and would hold off compression, which works on whole chunks (007).
-- - message_revisions: a row per message plus one per edit, partitioned on the same message date:
--   the same 90 days, so its chunks cover the same days as the messages'. It is the table holding
--   the most text and the only append-only one (INSERT ... ON CONFLICT DO NOTHING, never updated
--   or deleted), which makes it the one whose old chunks can be compressed (007).
-- - tp_capital_signals: one row per signal message, a few dozen a day at most: 365 days is
--   10-20k rows, a few MB per chunk, 3 years in 3 or 4 chunks.
-- Databases whose hypertables were made by 001 before its amendment have 30- and 90-day chunks:
-- the runner sets these intervals for the chunks created from then on.
--
-- No retention policy, ever: the pipeline's promise is that no message is lost.

INSERT INTO public.schema_hypertables (table_name, time_column, chunk_interval) VALUES
    ('tp_capital.forwarded_messages', 'original_timestamp', INTERVAL '90 days'),
    ('tp_capital.message_revisions',  'original_timestamp', INTERVAL '90 days'),
    ('tp_capital.tp_capital_signals', 'message_date',       INTERVAL '365 days')
ON CONFLICT (table_name) DO UPDATE
    SET time_column = EXCLUDED.time_column, chunk_interval = EXCLUDED.chunk_interval;
