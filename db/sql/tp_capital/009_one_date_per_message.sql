-- A Telegram message has one date. The message key holds the date because a hypertable's unique
-- indexes must contain its partition column, so (channel, message id) alone cannot be unique on
-- forwarded_messages; this plain table (never a hypertable) is that uniqueness. When the same
-- message arrives with another date (an export read in the wrong time zone, then the live post),
-- the ingest API moves the message, its revisions, signal and events to the newest delivery's
-- date with `redate_message` below and says so in its answer, instead of storing it twice.
CREATE TABLE tp_capital.message_dates (
    channel_id         bigint      NOT NULL,
    message_id         bigint      NOT NULL,
    original_timestamp timestamptz NOT NULL,
    CONSTRAINT message_dates_pkey PRIMARY KEY (channel_id, message_id)
);

-- Messages already stored under two dates keep the date of their latest delivery here;
-- `ingest-api reparse` merges their rows.
INSERT INTO tp_capital.message_dates (channel_id, message_id, original_timestamp)
SELECT DISTINCT ON (channel_id, message_id) channel_id, message_id, original_timestamp
FROM tp_capital.forwarded_messages
ORDER BY channel_id, message_id, received_at DESC, original_timestamp DESC;

-- Move every row of one message to `new_date`: the message row (keeping the id and received_at
-- of the first stored row, the newest revision's text and the newest delivery's metadata), its
-- revisions (the original revision moves with the date, edits keep theirs), its signal (keeping
-- the first signal id, which clients know) and its events. Rows are deleted and inserted again,
-- not updated: an UPDATE cannot move a row to another chunk of a hypertable. The caller then
-- re-derives the signal and events from the merged text and relinks the channel. Returns the
-- earliest date the message had (NULL when it already had only `new_date`).
CREATE FUNCTION tp_capital.redate_message(p_channel_id bigint, p_message_id bigint, new_date timestamptz)
RETURNS timestamptz
LANGUAGE plpgsql AS $$
DECLARE
    moved_from timestamptz;
    first_row tp_capital.forwarded_messages%ROWTYPE;
    latest_row tp_capital.forwarded_messages%ROWTYPE;
    newest record;
    reply bigint;
    tombstone timestamptz;
    first_signal tp_capital.tp_capital_signals%ROWTYPE;
    newest_signal tp_capital.tp_capital_signals%ROWTYPE;
BEGIN
    -- The same lock as relink_events: a relink never sees a message half moved. Then the date on
    -- record, then the message rows: the order in which the ingest statements take them too.
    PERFORM pg_advisory_xact_lock(71013, hashtext(p_channel_id::text));
    INSERT INTO tp_capital.message_dates AS d (channel_id, message_id, original_timestamp)
    VALUES (p_channel_id, p_message_id, new_date)
    ON CONFLICT ON CONSTRAINT message_dates_pkey DO UPDATE SET original_timestamp = EXCLUDED.original_timestamp;
    PERFORM 1 FROM tp_capital.forwarded_messages
    WHERE channel_id = p_channel_id AND message_id = p_message_id
    FOR UPDATE;

    SELECT min(original_timestamp) INTO moved_from
    FROM tp_capital.forwarded_messages
    WHERE channel_id = p_channel_id AND message_id = p_message_id AND original_timestamp <> new_date;
    IF moved_from IS NULL THEN
        RETURN NULL;
    END IF;

    INSERT INTO tp_capital.message_revisions AS r
        (channel_id, message_id, original_timestamp, revision_date, message_text, recorded_at)
    SELECT channel_id, message_id, new_date,
           CASE WHEN revision_date = original_timestamp THEN new_date ELSE revision_date END,
           message_text, recorded_at
    FROM tp_capital.message_revisions
    WHERE channel_id = p_channel_id AND message_id = p_message_id AND original_timestamp <> new_date
    ORDER BY recorded_at
    ON CONFLICT ON CONSTRAINT message_revisions_key DO NOTHING;
    DELETE FROM tp_capital.message_revisions
    WHERE channel_id = p_channel_id AND message_id = p_message_id AND original_timestamp <> new_date;

    SELECT * INTO first_row FROM tp_capital.forwarded_messages
    WHERE channel_id = p_channel_id AND message_id = p_message_id ORDER BY received_at, id LIMIT 1;
    SELECT * INTO latest_row FROM tp_capital.forwarded_messages
    WHERE channel_id = p_channel_id AND message_id = p_message_id ORDER BY received_at DESC, id DESC LIMIT 1;
    SELECT reply_to_message_id INTO reply FROM tp_capital.forwarded_messages
    WHERE channel_id = p_channel_id AND message_id = p_message_id AND reply_to_message_id IS NOT NULL
    ORDER BY received_at DESC LIMIT 1;
    SELECT revision_date, message_text INTO newest FROM tp_capital.message_revisions
    WHERE channel_id = p_channel_id AND message_id = p_message_id AND original_timestamp = new_date
    ORDER BY revision_date DESC LIMIT 1;
    SELECT deleted_at INTO tombstone FROM tp_capital.message_tombstones
    WHERE channel_id = p_channel_id AND message_id = p_message_id;

    DELETE FROM tp_capital.forwarded_messages WHERE channel_id = p_channel_id AND message_id = p_message_id;
    INSERT INTO tp_capital.forwarded_messages
        (id, channel_id, message_id, original_timestamp, message_text, photos, channel_name, sender, forward,
         reply_to_message_id, edit_date, deleted_at, received_at, updated_at)
    VALUES (first_row.id, p_channel_id, p_message_id, new_date, COALESCE(newest.message_text, latest_row.message_text),
            latest_row.photos, latest_row.channel_name, latest_row.sender, latest_row.forward, reply,
            CASE WHEN newest.revision_date <> new_date THEN newest.revision_date END, tombstone,
            first_row.received_at, now());

    SELECT * INTO first_signal FROM tp_capital.tp_capital_signals
    WHERE channel_id = p_channel_id AND message_id = p_message_id ORDER BY id LIMIT 1;
    IF first_signal.id IS NOT NULL THEN
        SELECT * INTO newest_signal FROM tp_capital.tp_capital_signals
        WHERE channel_id = p_channel_id AND message_id = p_message_id ORDER BY revision_date DESC NULLS LAST, id DESC LIMIT 1;
        DELETE FROM tp_capital.tp_capital_signals WHERE channel_id = p_channel_id AND message_id = p_message_id;
        INSERT INTO tp_capital.tp_capital_signals
            (id, ts, channel, signal_type, asset, side, buy_min, buy_max, target_1, target_2, target_final, stop,
             current_stop, raw_message, source, channel_id, message_id, message_date, revision_date, status,
             deleted_at, dismissed_at, ingested_at, created_at, updated_at)
        VALUES (first_signal.id, floor(extract(epoch FROM new_date) * 1000)::bigint, newest_signal.channel,
                newest_signal.signal_type, newest_signal.asset, newest_signal.side, newest_signal.buy_min,
                newest_signal.buy_max, newest_signal.target_1, newest_signal.target_2, newest_signal.target_final,
                newest_signal.stop, newest_signal.current_stop, newest_signal.raw_message, newest_signal.source,
                p_channel_id, p_message_id, new_date,
                CASE WHEN newest_signal.revision_date = newest_signal.message_date THEN new_date
                     ELSE newest_signal.revision_date END,
                newest_signal.status, newest_signal.deleted_at, first_signal.dismissed_at, first_signal.ingested_at,
                first_signal.created_at, now());
    END IF;

    -- Events: one set per message; the rows already at the new date win, then the newest revision.
    DELETE FROM tp_capital.signal_events e
    WHERE e.channel_id = p_channel_id AND e.message_id = p_message_id AND e.message_date <> new_date
      AND EXISTS (SELECT 1 FROM tp_capital.signal_events k
                  WHERE k.channel_id = p_channel_id AND k.message_id = p_message_id AND k.seq = e.seq
                    AND (k.message_date = new_date OR (k.revision_date, k.id) > (e.revision_date, e.id)));
    UPDATE tp_capital.signal_events
    SET message_date = new_date,
        revision_date = CASE WHEN revision_date = message_date THEN new_date ELSE revision_date END
    WHERE channel_id = p_channel_id AND message_id = p_message_id AND message_date <> new_date;
    RETURN moved_from;
END
$$;
