-- TimescaleDB's create_hypertable adds, by default, an index on the partition column alone
-- (`<table>_<column>_idx`, time DESC). Here each of the three hypertables already has what its
-- queries use, so that index only costs every insert one more index entry:
-- - forwarded_messages: forwarded_messages_ts_idx (original_timestamp DESC) is the same index;
-- - tp_capital_signals: tp_capital_signals_date_id_idx (message_date DESC, id DESC, from 021)
--   serves every range and page, and the default one adds nothing to it;
-- - message_revisions: read by its primary key (channel_id, message_id, original_timestamp,
--   revision_date) only; `ingest-api reparse --since` reads whole chunks, which chunk exclusion
--   picks without an index.
-- `migrate` now converts tables with create_default_indexes => false (ts_ops.timescaledb); this
-- file drops the ones made by earlier conversions. On plain PostgreSQL, and on databases converted
-- since, none of them exists and nothing happens.
DROP INDEX IF EXISTS tp_capital.forwarded_messages_original_timestamp_idx;
DROP INDEX IF EXISTS tp_capital.tp_capital_signals_message_date_idx;
DROP INDEX IF EXISTS tp_capital.message_revisions_original_timestamp_idx;
