-- Every lookup on a hypertable carries its partition column, so TimescaleDB plans and scans only
-- the chunks that can hold the rows (issue 14). The same statements run on plain PostgreSQL,
-- where the indexes below serve them just as well.
--
-- Hypertables: forwarded_messages and message_revisions (on the message date), tp_capital_signals
-- (on message_date). A query that does not bound the partition column makes TimescaleDB plan every
-- chunk (planning time grows with the history) and probe each chunk's index.

-- 1. Signal id -> message date (and ingested_at), a plain table (never a hypertable).
--
-- Clients name a signal by its id (`GET/DELETE /signals/{id}`) or, in the old API, by its
-- ingested_at (`DELETE /signals {"ingestedAt"}`); neither says the date. Signal ids come from an
-- identity column in arrival order, not message-date order (a history import arrives years after
-- its dates), so the id cannot be read as a date, and the ids clients already hold cannot change.
-- A map is a primary-key probe on a small table (about 40 bytes a signal) that gives the date, then
-- one probe into the one chunk that holds the signal. Kept by a trigger rather than by each writer:
-- signals are stored by the ingest statements, `ingest-api reparse` and `redate_message` (which
-- deletes and re-inserts a signal under its new date), and a trigger cannot be forgotten by a new
-- one. It costs one row insert per signal (a few dozen a day); messages pay nothing.
CREATE TABLE tp_capital.signal_keys (
    id           bigint      NOT NULL,
    message_date timestamptz NOT NULL,
    ingested_at  timestamptz NOT NULL,
    CONSTRAINT signal_keys_pkey PRIMARY KEY (id)
);
-- DELETE /signals {"ingestedAt"} looks the signal up here (a millisecond range), then by its key.
CREATE INDEX signal_keys_ingested_at_idx ON tp_capital.signal_keys (ingested_at);

INSERT INTO tp_capital.signal_keys (id, message_date, ingested_at)
SELECT DISTINCT ON (id) id, message_date, ingested_at
FROM tp_capital.tp_capital_signals
ORDER BY id, message_date DESC;

CREATE FUNCTION tp_capital.record_signal_key() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO tp_capital.signal_keys AS k (id, message_date, ingested_at)
    VALUES (NEW.id, NEW.message_date, NEW.ingested_at)
    ON CONFLICT ON CONSTRAINT signal_keys_pkey DO UPDATE
        SET message_date = EXCLUDED.message_date, ingested_at = EXCLUDED.ingested_at
        WHERE (k.message_date, k.ingested_at) IS DISTINCT FROM (EXCLUDED.message_date, EXCLUDED.ingested_at);
    RETURN NULL;
END
$$;

-- A row trigger on the table is copied to every chunk when the table becomes a hypertable (and
-- to every chunk created later).
CREATE TRIGGER signal_keys_sync
AFTER INSERT OR UPDATE OF id, message_date, ingested_at ON tp_capital.tp_capital_signals
FOR EACH ROW EXECUTE FUNCTION tp_capital.record_signal_key();

-- The ingested_at lookup goes through signal_keys: the index on the hypertable only cost writes.
DROP INDEX IF EXISTS tp_capital.tp_capital_signals_ingested_at_idx;

-- 2. GET /signals pages by (message_date DESC, id DESC), the partition column first: TimescaleDB
-- then reads the chunks newest first and stops at the page's end (an ordered ChunkAppend), and a
-- date range skips the other chunks. `ts` is the message date in epoch ms (floor), so the order
-- and the ts filters are the old ones. This index replaces (ts DESC, id DESC), which nothing
-- reads any more, so each signal insert maintains as many indexes as before.
CREATE INDEX tp_capital_signals_date_id_idx ON tp_capital.tp_capital_signals (message_date DESC, id DESC);
DROP INDEX IF EXISTS tp_capital.tp_capital_signals_ts_idx;

-- The relink's "latest earlier signal of this ticker" (below) orders by (message_date, message_id):
-- with both in the index, TimescaleDB reads the chunks newest first and stops at the first row
-- found; with message_date alone a sort had to see one more row, reading every older chunk that
-- has none. Replaces 008's (channel_id, asset, message_date DESC): as many indexes as before.
CREATE INDEX tp_capital_signals_channel_asset_date_idx
    ON tp_capital.tp_capital_signals (channel_id, asset, message_date DESC, message_id DESC);
DROP INDEX IF EXISTS tp_capital.tp_capital_signals_channel_asset_idx;

-- A stored message by its whole key, for the ingest statements' per-row lookups (ingest/sql.py,
-- _LOOKUP). A function, not a subquery, so that the calling statement's plan names no chunk:
-- TimescaleDB excludes chunks at run time in a correlated subquery, but every execution still
-- opens and locks all of them (26 for six years of history), even when no row is looked up. Here
-- the statement is planned with the key: the one chunk of that date. STABLE: it reads the calling
-- statement's snapshot, as the subquery did.
CREATE FUNCTION tp_capital.stored_message(p_channel_id bigint, p_message_id bigint, p_date timestamptz)
RETURNS SETOF tp_capital.forwarded_messages
LANGUAGE plpgsql STABLE ROWS 1 AS $$
BEGIN
    RETURN QUERY
    SELECT * FROM tp_capital.forwarded_messages f
    WHERE f.channel_id = p_channel_id AND f.message_id = p_message_id AND f.original_timestamp = p_date;
END
$$;

-- A signal by id, the same way (through signal_keys, then its one chunk), for the lookups by id
-- inside the functions below.
CREATE FUNCTION tp_capital.stored_signal(p_id bigint)
RETURNS SETOF tp_capital.tp_capital_signals
LANGUAGE plpgsql STABLE ROWS 1 AS $$
DECLARE
    p_date timestamptz;
BEGIN
    SELECT k.message_date INTO p_date FROM tp_capital.signal_keys k WHERE k.id = p_id;
    IF p_date IS NOT NULL THEN
        RETURN QUERY
        SELECT * FROM tp_capital.tp_capital_signals s WHERE s.id = p_id AND s.message_date = p_date;
    END IF;
END
$$;

-- 3. The tombstone check after every write: most messages were never deleted, so the plain
-- tombstones table is read first and the hypertables are not touched at all; a message that has a
-- tombstone is updated by its whole key (the date from message_dates), in its one chunk. The old
-- statement (three UPDATEs joined with the tombstones on (channel, message) only) made
-- TimescaleDB plan every chunk of both hypertables on every write.
-- Answers the (channel, earliest date) of the derived rows it deleted, to relink.
CREATE FUNCTION tp_capital.apply_tombstones(channel_ids bigint[], message_ids bigint[])
RETURNS TABLE (tombstoned_channel_id bigint, relink_from timestamptz)
LANGUAGE plpgsql AS $$
DECLARE
    t record;
    signal_date timestamptz;
    event_date timestamptz;
BEGIN
    FOR t IN
        SELECT DISTINCT x.channel_id, x.message_id, x.deleted_at, d.original_timestamp
        FROM unnest(channel_ids, message_ids) AS k(channel_id, message_id)
        JOIN tp_capital.message_tombstones x ON x.channel_id = k.channel_id AND x.message_id = k.message_id
        LEFT JOIN tp_capital.message_dates d ON d.channel_id = k.channel_id AND d.message_id = k.message_id
        ORDER BY x.channel_id, x.message_id
    LOOP
        -- No date on record: the message itself has not arrived, nothing is stored to mark.
        CONTINUE WHEN t.original_timestamp IS NULL;
        UPDATE tp_capital.forwarded_messages f
        SET deleted_at = t.deleted_at, updated_at = now()
        WHERE f.channel_id = t.channel_id AND f.message_id = t.message_id
          AND f.original_timestamp = t.original_timestamp AND f.deleted_at IS NULL;
        signal_date := NULL;
        UPDATE tp_capital.tp_capital_signals s
        SET deleted_at = t.deleted_at, updated_at = now()
        WHERE s.channel_id = t.channel_id AND s.message_id = t.message_id
          AND s.message_date = t.original_timestamp AND s.deleted_at IS DISTINCT FROM t.deleted_at
        RETURNING s.message_date INTO signal_date;
        WITH u AS (
            UPDATE tp_capital.signal_events e
            SET deleted_at = t.deleted_at
            WHERE e.channel_id = t.channel_id AND e.message_id = t.message_id
              AND e.deleted_at IS DISTINCT FROM t.deleted_at
            RETURNING e.message_date
        )
        SELECT min(u.message_date) INTO event_date FROM u;
        IF signal_date IS NOT NULL OR event_date IS NOT NULL THEN
            tombstoned_channel_id := t.channel_id;
            relink_from := LEAST(signal_date, event_date);
            RETURN NEXT;
        END IF;
    END LOOP;
END
$$;

-- 4. Signal state by id, through signal_keys (the same result as 008's; plpgsql so that its plans
-- are cached per connection, where a SQL function is planned again on every call).
CREATE OR REPLACE FUNCTION tp_capital.refresh_signal_state(signal_ids bigint[]) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    r record;
    changed integer := 0;
BEGIN
    IF cardinality(signal_ids) IS NULL OR cardinality(signal_ids) = 0 THEN
        RETURN 0;
    END IF;
    -- One UPDATE per signal whose state changed, by its whole key: an UPDATE joined with the
    -- computed states would make TimescaleDB probe every chunk for each of them.
    FOR r IN
        SELECT s.id, s.message_date, COALESCE(last_status.status, 'open') AS status,
               COALESCE(last_stop.price, s.stop) AS current_stop
        FROM (SELECT DISTINCT u.id FROM unnest(signal_ids) AS u(id) WHERE u.id IS NOT NULL) k
        CROSS JOIN LATERAL tp_capital.stored_signal(k.id) s  -- by key, in its one chunk
        LEFT JOIN LATERAL (
            SELECT CASE e.event_type
                       WHEN 'stop_hit' THEN 'stopped'
                       WHEN 'target_hit' THEN 'target_' || COALESCE(e.target_number, e.nth) || '_hit'
                       ELSE e.event_type
                   END AS status
            FROM (SELECT x.event_type, x.target_number, x.message_date, x.message_id, x.seq,
                         count(*) FILTER (WHERE x.event_type = 'target_hit')
                             OVER (ORDER BY x.message_date, x.message_id, x.seq) AS nth
                  FROM tp_capital.signal_events x
                  WHERE x.signal_id = s.id AND x.deleted_at IS NULL) e
            WHERE e.event_type IN ('target_hit', 'final_target_hit', 'stop_hit', 'cancelled', 'closed')
            ORDER BY e.message_date DESC, e.message_id DESC, e.seq DESC
            LIMIT 1
        ) last_status ON true
        LEFT JOIN LATERAL (
            SELECT COALESCE(e.price, CASE WHEN e.breakeven THEN tp_capital.entry_price(s.buy_min, s.buy_max) END) AS price
            FROM tp_capital.signal_events e
            WHERE e.signal_id = s.id AND e.deleted_at IS NULL AND e.event_type = 'stop_moved'
            ORDER BY e.message_date DESC, e.message_id DESC, e.seq DESC
            LIMIT 1
        ) last_stop ON true
        WHERE s.status IS DISTINCT FROM COALESCE(last_status.status, 'open')
           OR s.current_stop IS DISTINCT FROM COALESCE(last_stop.price, s.stop)
        ORDER BY s.id
    LOOP
        UPDATE tp_capital.tp_capital_signals s
        SET status = r.status, current_stop = r.current_stop, updated_at = now()
        WHERE s.id = r.id AND s.message_date = r.message_date
          AND (s.status IS DISTINCT FROM r.status OR s.current_stop IS DISTINCT FROM r.current_stop);
        IF FOUND THEN
            changed := changed + 1;
        END IF;
    END LOOP;
    RETURN changed;
END
$$;

-- 5. relink_events (008) with every signal lookup bounded by the message date: the signal of the
-- event's own message (its date), the signal replied to (the replied message's date, from
-- message_dates: one date per message since 009), the latest earlier signal of the ticker or of
-- the channel (at most the event's date; TimescaleDB reads the chunks newest first and stops at the
-- first match). The rules and their order are 008's, unchanged.
CREATE OR REPLACE FUNCTION tp_capital.relink_events(
    channel_ids bigint[], from_dates timestamptz[], refresh_ids bigint[] DEFAULT '{}',
    OUT relinked integer, OUT refreshed integer
)
LANGUAGE plpgsql AS $$
DECLARE
    c record;
    e record;
    target bigint;
    replied boolean;
    replied_date timestamptz;
    touched bigint[] := COALESCE(refresh_ids, '{}');
BEGIN
    relinked := 0;
    FOR c IN
        -- A NULL date means from the first event.
        SELECT k.channel_id, CASE WHEN bool_or(k.from_date IS NULL) THEN NULL ELSE min(k.from_date) END AS from_date
        FROM unnest(channel_ids, from_dates) AS k(channel_id, from_date)
        WHERE k.channel_id IS NOT NULL
        GROUP BY k.channel_id
        ORDER BY k.channel_id
    LOOP
        PERFORM pg_advisory_xact_lock(71013, hashtext(c.channel_id::text));
        FOR e IN
            SELECT x.id, x.asset, x.message_id, x.message_date, x.seq, x.reply_to_message_id, x.signal_id,
                   x.deleted_at
            FROM tp_capital.signal_events x
            WHERE x.channel_id = c.channel_id AND x.message_date >= COALESCE(c.from_date, '-infinity')
            ORDER BY x.message_date, x.message_id, x.seq
        LOOP
            target := NULL;
            IF e.deleted_at IS NULL THEN
                SELECT s.id INTO target
                FROM tp_capital.tp_capital_signals s
                WHERE s.channel_id = c.channel_id AND s.message_id = e.message_id AND s.message_date = e.message_date;
                replied := NULL;
                IF target IS NULL AND e.reply_to_message_id IS NOT NULL THEN
                    SELECT d.original_timestamp INTO replied_date
                    FROM tp_capital.message_dates d
                    WHERE d.channel_id = c.channel_id AND d.message_id = e.reply_to_message_id;
                    IF replied_date IS NOT NULL THEN
                        SELECT s.id, s.deleted_at IS NULL INTO target, replied
                        FROM tp_capital.tp_capital_signals s
                        WHERE s.channel_id = c.channel_id AND s.message_id = e.reply_to_message_id
                          AND s.message_date = replied_date;
                    END IF;
                    IF NOT COALESCE(replied, true) THEN
                        target := NULL;  -- a reply to a deleted signal belongs to no other signal
                    ELSIF target IS NULL THEN
                        SELECT p.signal_id INTO target
                        FROM tp_capital.signal_events p
                        WHERE p.channel_id = c.channel_id AND p.message_id = e.reply_to_message_id
                          AND p.deleted_at IS NULL AND p.signal_id IS NOT NULL
                        ORDER BY p.seq
                        LIMIT 1;
                    END IF;
                END IF;
                IF replied IS NOT NULL AND NOT replied THEN
                    NULL;
                ELSIF target IS NULL AND e.asset IS NOT NULL THEN
                    SELECT s.id INTO target
                    FROM tp_capital.tp_capital_signals s
                    WHERE s.channel_id = c.channel_id AND s.asset = e.asset AND s.deleted_at IS NULL
                      AND s.message_date <= e.message_date
                      AND (s.message_date, s.message_id) < (e.message_date, e.message_id)
                      AND NOT EXISTS (
                          SELECT 1 FROM tp_capital.signal_events t
                          WHERE t.signal_id = s.id AND t.deleted_at IS NULL
                            AND t.event_type IN ('final_target_hit', 'stop_hit', 'cancelled', 'closed')
                            AND (t.message_date, t.message_id, t.seq) < (e.message_date, e.message_id, e.seq))
                    ORDER BY s.message_date DESC, s.message_id DESC
                    LIMIT 1;
                ELSIF target IS NULL THEN
                    SELECT s.id INTO target
                    FROM tp_capital.tp_capital_signals s
                    WHERE s.channel_id = c.channel_id AND s.deleted_at IS NULL
                      AND s.message_date <= e.message_date
                      AND (s.message_date, s.message_id) < (e.message_date, e.message_id)
                      AND s.message_date > e.message_date - interval '24 hours'
                    ORDER BY s.message_date DESC, s.message_id DESC
                    LIMIT 1;
                END IF;
            END IF;
            IF target IS DISTINCT FROM e.signal_id THEN
                UPDATE tp_capital.signal_events SET signal_id = target WHERE id = e.id;
                relinked := relinked + 1;
            END IF;
            -- Refreshed even when the link stays: the event itself may have changed (an edit).
            touched := touched || e.signal_id || target;
        END LOOP;
    END LOOP;
    refreshed := tp_capital.refresh_signal_state(touched);
END
$$;

-- 6. The outcomes reached since the relinked dates, recorded once (020's statement, with the
-- signal looked up through signal_keys); answers the outcomes that were new, to count.
CREATE FUNCTION tp_capital.record_outcomes(channel_ids bigint[], from_dates timestamptz[])
RETURNS SETOF text
LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY
    WITH touched AS (
        SELECT DISTINCT e.signal_id
        FROM unnest(channel_ids, from_dates) AS k(channel_id, from_date)
        CROSS JOIN LATERAL (
            SELECT e.signal_id FROM tp_capital.signal_events e
            WHERE e.channel_id = k.channel_id AND e.message_date >= k.from_date
              AND e.signal_id IS NOT NULL AND e.deleted_at IS NULL
              AND e.event_type IN ('target_hit', 'final_target_hit', 'stop_hit', 'cancelled', 'closed')
            OFFSET 0  -- keeps this a per-channel index scan (a plain subquery is flattened into a join)
        ) e
    ),
    live AS (
        SELECT t.signal_id
        FROM touched t
        CROSS JOIN LATERAL tp_capital.stored_signal(t.signal_id) s  -- by key, in its one chunk
        WHERE s.deleted_at IS NULL
    ),
    reached AS (
        SELECT DISTINCT l.signal_id, o.outcome
        FROM live l
        CROSS JOIN LATERAL (
            SELECT e.event_type FROM tp_capital.signal_events e
            WHERE e.signal_id = l.signal_id AND e.deleted_at IS NULL
            OFFSET 0
        ) e
        CROSS JOIN LATERAL unnest(tp_capital.event_outcomes(e.event_type)) AS o(outcome)
    ),
    inserted AS (
        INSERT INTO tp_capital.signal_outcomes AS so (signal_id, outcome)
        SELECT r.signal_id, r.outcome FROM reached r
        ORDER BY r.signal_id, r.outcome
        ON CONFLICT ON CONSTRAINT signal_outcomes_pkey DO NOTHING
        RETURNING so.outcome
    )
    SELECT i.outcome FROM inserted i;
END
$$;

-- 7. The relink after a write and the outcome count in one statement (one round trip less per
-- write that stored a signal or a follow-up; issue 15).
CREATE FUNCTION tp_capital.relink_and_record(channel_ids bigint[], from_dates timestamptz[], refresh_ids bigint[])
RETURNS SETOF text
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM tp_capital.relink_events(channel_ids, from_dates, refresh_ids);
    IF cardinality(channel_ids) > 0 THEN
        RETURN QUERY SELECT o FROM tp_capital.record_outcomes(channel_ids, from_dates) AS o;
    END IF;
END
$$;
