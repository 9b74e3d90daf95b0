-- Fewer indexes to maintain on the ingest path (every index costs each insert).

-- Lookups by (channel_id, message_id) use the primary key's prefix (channel_id, message_id,
-- original_timestamp); a second index on the same two columns only slowed inserts down.
DROP INDEX tp_capital.forwarded_messages_channel_message_idx;

-- "Latest open signal for an asset" uses tp_capital_signals_asset_idx (asset, ts DESC).
DROP INDEX tp_capital.tp_capital_signals_open_asset_idx;
