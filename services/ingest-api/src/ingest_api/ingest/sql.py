"""SQL of the ingest path. Every statement is idempotent and takes whole batches (unnest arrays).

Rows are fed to each INSERT sorted by key, so two concurrent batches that share keys lock them in
the same order (no deadlock between coalesced writers).
"""

# New messages: store each raw message once, its text as the first revision, and its signal.
# A tombstone recorded earlier (delete before message) marks the row deleted on the way in.
INSERT_NEW = """
WITH input AS (
    SELECT * FROM unnest(
        $1::int[], $2::bigint[], $3::bigint[], $4::timestamptz[], $5::text[], $6::text[], $7::text[],
        $8::text[], $9::text[], $10::text[], $11::text[], $12::float8[], $13::float8[], $14::float8[],
        $15::float8[], $16::float8[], $17::float8[], $18::text[]
    ) AS i(idx, channel_id, message_id, original_timestamp, message_text, photos, channel_name, sender,
           forward, asset, signal_type, buy_min, buy_max, target_1, target_2, target_final, stop, channel)
),
inserted AS (
    INSERT INTO tp_capital.forwarded_messages AS f
        (channel_id, message_id, original_timestamp, message_text, photos, channel_name, sender, forward,
         deleted_at)
    SELECT i.channel_id, i.message_id, i.original_timestamp, i.message_text, i.photos::jsonb,
           i.channel_name, i.sender::jsonb, i.forward::jsonb, t.deleted_at
    FROM input i
    LEFT JOIN tp_capital.message_tombstones t
           ON t.channel_id = i.channel_id AND t.message_id = i.message_id
    ORDER BY i.channel_id, i.message_id, i.original_timestamp
    ON CONFLICT ON CONSTRAINT forwarded_messages_message_key DO NOTHING
    RETURNING f.channel_id, f.message_id, f.original_timestamp, f.deleted_at
),
revisions AS (
    INSERT INTO tp_capital.message_revisions
        (channel_id, message_id, original_timestamp, revision_date, message_text)
    SELECT channel_id, message_id, original_timestamp, original_timestamp, message_text
    FROM input
    ORDER BY channel_id, message_id, original_timestamp
    ON CONFLICT ON CONSTRAINT message_revisions_key DO NOTHING
),
signals AS (
    INSERT INTO tp_capital.tp_capital_signals
        (ts, channel, signal_type, asset, buy_min, buy_max, target_1, target_2, target_final, stop,
         raw_message, channel_id, message_id, message_date, revision_date, deleted_at)
    SELECT floor(extract(epoch FROM i.original_timestamp) * 1000)::bigint, i.channel, i.signal_type,
           i.asset, i.buy_min, i.buy_max, i.target_1, i.target_2, i.target_final, i.stop,
           i.message_text, i.channel_id, i.message_id, i.original_timestamp, i.original_timestamp,
           s.deleted_at
    FROM input i
    JOIN inserted s USING (channel_id, message_id, original_timestamp)
    WHERE i.asset IS NOT NULL
    ORDER BY i.channel_id, i.message_id, i.original_timestamp
    ON CONFLICT ON CONSTRAINT tp_capital_signals_message_key DO NOTHING
)
SELECT i.idx
FROM input i
JOIN inserted USING (channel_id, message_id, original_timestamp)
"""

# Edits: record each revision once; apply only the newest edit to the message (an older edit
# arriving late is kept as a revision but does not overwrite newer text). An edit arriving before
# its message creates the row with the edited text.
INSERT_EDITS = """
WITH input AS (
    SELECT * FROM unnest(
        $1::int[], $2::bigint[], $3::bigint[], $4::timestamptz[], $5::timestamptz[], $6::text[],
        $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::float8[],
        $14::float8[], $15::float8[], $16::float8[], $17::float8[], $18::float8[], $19::text[]
    ) AS i(idx, channel_id, message_id, original_timestamp, edit_date, message_text, photos,
           channel_name, sender, forward, asset, signal_type, buy_min, buy_max, target_1, target_2,
           target_final, stop, channel)
),
recorded AS (
    INSERT INTO tp_capital.message_revisions AS r
        (channel_id, message_id, original_timestamp, revision_date, message_text)
    SELECT channel_id, message_id, original_timestamp, edit_date, message_text
    FROM input
    ORDER BY channel_id, message_id, original_timestamp, edit_date
    ON CONFLICT ON CONSTRAINT message_revisions_key DO NOTHING
    RETURNING r.channel_id, r.message_id, r.original_timestamp, r.revision_date
),
newest AS (
    SELECT DISTINCT ON (i.channel_id, i.message_id, i.original_timestamp) i.*
    FROM input i
    JOIN recorded r ON r.channel_id = i.channel_id AND r.message_id = i.message_id
                   AND r.original_timestamp = i.original_timestamp AND r.revision_date = i.edit_date
    ORDER BY i.channel_id, i.message_id, i.original_timestamp, i.edit_date DESC
),
applied AS (
    INSERT INTO tp_capital.forwarded_messages AS f
        (channel_id, message_id, original_timestamp, message_text, photos, channel_name, sender, forward,
         edit_date, deleted_at)
    SELECT n.channel_id, n.message_id, n.original_timestamp, n.message_text, n.photos::jsonb,
           n.channel_name, n.sender::jsonb, n.forward::jsonb, n.edit_date, t.deleted_at
    FROM newest n
    LEFT JOIN tp_capital.message_tombstones t
           ON t.channel_id = n.channel_id AND t.message_id = n.message_id
    ORDER BY n.channel_id, n.message_id, n.original_timestamp
    ON CONFLICT ON CONSTRAINT forwarded_messages_message_key DO UPDATE
        SET message_text = EXCLUDED.message_text,
            edit_date = EXCLUDED.edit_date,
            updated_at = now()
        WHERE f.edit_date IS NULL OR f.edit_date < EXCLUDED.edit_date
    RETURNING f.channel_id, f.message_id, f.original_timestamp, f.deleted_at
),
signals AS (
    INSERT INTO tp_capital.tp_capital_signals AS s
        (ts, channel, signal_type, asset, buy_min, buy_max, target_1, target_2, target_final, stop,
         raw_message, channel_id, message_id, message_date, revision_date, deleted_at)
    SELECT floor(extract(epoch FROM n.original_timestamp) * 1000)::bigint, n.channel, n.signal_type,
           n.asset, n.buy_min, n.buy_max, n.target_1, n.target_2, n.target_final, n.stop,
           n.message_text, n.channel_id, n.message_id, n.original_timestamp, n.edit_date, a.deleted_at
    FROM newest n
    JOIN applied a USING (channel_id, message_id, original_timestamp)
    WHERE n.asset IS NOT NULL
    ORDER BY n.channel_id, n.message_id, n.original_timestamp
    ON CONFLICT ON CONSTRAINT tp_capital_signals_message_key DO UPDATE
        SET signal_type = EXCLUDED.signal_type, asset = EXCLUDED.asset,
            buy_min = EXCLUDED.buy_min, buy_max = EXCLUDED.buy_max,
            target_1 = EXCLUDED.target_1, target_2 = EXCLUDED.target_2,
            target_final = EXCLUDED.target_final, stop = EXCLUDED.stop,
            raw_message = EXCLUDED.raw_message, revision_date = EXCLUDED.revision_date,
            deleted_at = EXCLUDED.deleted_at, updated_at = now()
        WHERE s.revision_date IS NULL OR s.revision_date < EXCLUDED.revision_date
),
-- Edited into something that is no longer a signal ("sinal cancelado"): the signal is withdrawn
-- (marked deleted at the edit, kept with the new text); a later edit back into a signal restores it.
withdrawn AS (
    UPDATE tp_capital.tp_capital_signals s
    SET deleted_at = COALESCE(s.deleted_at, n.edit_date), raw_message = n.message_text,
        revision_date = n.edit_date, updated_at = now()
    FROM newest n
    JOIN applied a USING (channel_id, message_id, original_timestamp)
    WHERE n.asset IS NULL
      AND s.channel_id = n.channel_id AND s.message_id = n.message_id AND s.message_date = n.original_timestamp
      AND (s.revision_date IS NULL OR s.revision_date < n.edit_date)
)
SELECT i.idx
FROM input i
JOIN recorded r ON r.channel_id = i.channel_id AND r.message_id = i.message_id
               AND r.original_timestamp = i.original_timestamp AND r.revision_date = i.edit_date
"""

# Deletes: a tombstone per message, recorded once (the answer is "stored" the first time).
INSERT_TOMBSTONES = """
INSERT INTO tp_capital.message_tombstones AS t (channel_id, message_id, deleted_at)
SELECT channel_id, message_id, deleted_at
FROM unnest($1::bigint[], $2::bigint[], $3::timestamptz[]) AS i(channel_id, message_id, deleted_at)
ORDER BY channel_id, message_id
ON CONFLICT ON CONSTRAINT message_tombstones_pkey DO NOTHING
RETURNING t.channel_id, t.message_id
"""

# Run after the writes above have committed, for every key they touched. A message insert and
# a tombstone insert racing each other cannot both miss: whichever commits second sees the
# other here. So a deleted message always ends up marked, in whatever order they arrived.
APPLY_TOMBSTONES = """
WITH keys AS (
    SELECT DISTINCT channel_id, message_id
    FROM unnest($1::bigint[], $2::bigint[]) AS k(channel_id, message_id)
),
tombstones AS (
    SELECT t.channel_id, t.message_id, t.deleted_at
    FROM tp_capital.message_tombstones t
    JOIN keys USING (channel_id, message_id)
),
messages AS (
    UPDATE tp_capital.forwarded_messages f
    SET deleted_at = t.deleted_at, updated_at = now()
    FROM tombstones t
    WHERE f.channel_id = t.channel_id AND f.message_id = t.message_id AND f.deleted_at IS NULL
    RETURNING 1
),
signals AS (
    UPDATE tp_capital.tp_capital_signals s
    SET deleted_at = t.deleted_at, updated_at = now()
    FROM tombstones t
    WHERE s.channel_id = t.channel_id AND s.message_id = t.message_id AND s.deleted_at IS NULL
    RETURNING s.asset
)
SELECT ARRAY(SELECT DISTINCT asset FROM signals) AS deleted_signal_assets, (SELECT count(*) FROM messages) AS messages
"""

# Follow-ups ("BOVAW22 ALVO 1 ATINGIDO"): recorded once each, unattached; RELINK_EVENTS then
# attaches them (and recomputes statuses) from the stored messages' dates, whatever the arrival order.
RECORD_EVENTS = """
INSERT INTO tp_capital.signal_events
    (signal_id, asset, event_type, target_number, percentage, raw_message, channel_id, message_id, message_date)
SELECT NULL, i.asset, i.event_type, i.target_number, i.percentage, i.raw_message, i.channel_id, i.message_id,
       i.message_date
FROM unnest($1::text[], $2::text[], $3::int[], $4::float8[], $5::text[], $6::bigint[], $7::bigint[],
            $8::timestamptz[])
     AS i(asset, event_type, target_number, percentage, raw_message, channel_id, message_id, message_date)
ORDER BY i.channel_id, i.message_id, i.message_date
ON CONFLICT ON CONSTRAINT signal_events_message_key DO NOTHING
"""

# Which signal each follow-up of these assets belongs to, and the signals' statuses (db/sql/
# tp_capital/005): $1 assets, $2/$3 keys of edited messages (whose signal may have changed asset).
RELINK_EVENTS = "SELECT tp_capital.relink_signal_events($1::text[], $2::bigint[], $3::bigint[])"
