-- Signals as a trader reads them: both sides, the whole lifecycle, replies, and derived state that
-- `ingest-api reparse` can recompute from the stored messages (docs/ingest-api.md, "Signals").
--
-- Works the same on plain PostgreSQL and on the TimescaleDB hypertables of 001: no new unique
-- index on a hypertable, no foreign key to one, and no UPDATE that moves a row to another date.

-- Signals: the side ("long", or "short": then buy_min/buy_max are the sell range), the stop as
-- moved by follow-ups beside the original `stop`, and `dismissed_at` for a signal deleted through
-- the API (a user's decision: unlike a deleted or edited message, nothing re-derives it away).
ALTER TABLE tp_capital.tp_capital_signals ADD COLUMN side text NOT NULL DEFAULT 'long';
ALTER TABLE tp_capital.tp_capital_signals ADD COLUMN current_stop double precision;
ALTER TABLE tp_capital.tp_capital_signals ADD COLUMN dismissed_at timestamptz;
ALTER TABLE tp_capital.tp_capital_signals ADD CONSTRAINT tp_capital_signals_side_check CHECK (side IN ('long', 'short'));

UPDATE tp_capital.tp_capital_signals
SET current_stop = stop, revision_date = COALESCE(revision_date, message_date);
-- Signals deleted through the API before this migration: deleted, their message not, and not at
-- the date of the edit that withdrew them (a withdrawal sets deleted_at to that edit's date).
UPDATE tp_capital.tp_capital_signals s
SET dismissed_at = s.deleted_at
WHERE s.deleted_at IS NOT NULL
  AND s.deleted_at IS DISTINCT FROM s.revision_date
  AND NOT EXISTS (SELECT 1 FROM tp_capital.message_tombstones t
                  WHERE t.channel_id = s.channel_id AND t.message_id = s.message_id);

-- Follow-ups link within their channel ("the latest open signal of that ticker in the channel").
DROP INDEX IF EXISTS tp_capital.tp_capital_signals_asset_idx;
CREATE INDEX tp_capital_signals_channel_asset_idx
    ON tp_capital.tp_capital_signals (channel_id, asset, message_date DESC);

-- The message a message replies to (the gateway sends it when Telegram says so).
ALTER TABLE tp_capital.forwarded_messages ADD COLUMN reply_to_message_id bigint;

-- Events: several per message (seq: "Alvo 1 atingido, stop na entrada" is a target hit and a stop
-- move), the ticker named (NULL: none), the new stop of a stop move (or breakeven: the entry price
-- of the signal it links to), the reply, the revision of the text they were read from, and
-- deleted_at (the message was deleted, or edited into something else).
ALTER TABLE tp_capital.signal_events ALTER COLUMN asset DROP NOT NULL;
ALTER TABLE tp_capital.signal_events ALTER COLUMN asset DROP DEFAULT;
ALTER TABLE tp_capital.signal_events ADD COLUMN seq smallint NOT NULL DEFAULT 0;
ALTER TABLE tp_capital.signal_events ADD COLUMN price double precision;
ALTER TABLE tp_capital.signal_events ADD COLUMN breakeven boolean NOT NULL DEFAULT false;
ALTER TABLE tp_capital.signal_events ADD COLUMN reply_to_message_id bigint;
ALTER TABLE tp_capital.signal_events ADD COLUMN revision_date timestamptz;
ALTER TABLE tp_capital.signal_events ADD COLUMN deleted_at timestamptz;

UPDATE tp_capital.signal_events SET asset = NULLIF(asset, ''), revision_date = message_date;
UPDATE tp_capital.signal_events e
SET deleted_at = t.deleted_at
FROM tp_capital.message_tombstones t
WHERE t.channel_id = e.channel_id AND t.message_id = e.message_id;
ALTER TABLE tp_capital.signal_events ALTER COLUMN revision_date SET NOT NULL;

ALTER TABLE tp_capital.signal_events DROP CONSTRAINT signal_events_message_key;
ALTER TABLE tp_capital.signal_events
    ADD CONSTRAINT signal_events_message_key UNIQUE (channel_id, message_id, message_date, seq);
ALTER TABLE tp_capital.signal_events ADD CONSTRAINT signal_events_event_type_check CHECK (event_type IN (
    'target_hit', 'final_target_hit', 'stop_hit', 'stop_moved', 'cancelled', 'closed', 'partial_exit'));
DROP INDEX IF EXISTS tp_capital.signal_events_asset_idx;
CREATE INDEX signal_events_channel_date_idx ON tp_capital.signal_events (channel_id, message_date);

-- The entry price of a signal: the middle of its entry range, or its one price. A stop moved to
-- breakeven is moved there.
CREATE FUNCTION tp_capital.entry_price(buy_min double precision, buy_max double precision)
RETURNS double precision
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN buy_min IS NOT NULL AND buy_max IS NOT NULL THEN (buy_min + buy_max) / 2
                ELSE COALESCE(buy_max, buy_min) END
$$;

-- Status and current_stop of the given signals, from their live events: the status is the latest
-- status-bearing event's (target_N_hit, final_target_hit, stopped, cancelled, closed; "open"
-- without one; a target hit that names no number counts as the signal's next target), the
-- current stop the latest stop move's price (else the signal's own stop). Returns how many
-- signals changed.
CREATE FUNCTION tp_capital.refresh_signal_state(signal_ids bigint[]) RETURNS integer
LANGUAGE sql AS $$
    WITH state AS (
        SELECT s.id, s.message_date, COALESCE(last_status.status, 'open') AS status,
               COALESCE(last_stop.price, s.stop) AS current_stop
        FROM tp_capital.tp_capital_signals s
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
        WHERE s.id = ANY (signal_ids)
    ),
    changed AS (
        UPDATE tp_capital.tp_capital_signals s
        SET status = state.status, current_stop = state.current_stop, updated_at = now()
        FROM state
        WHERE s.id = state.id AND s.message_date = state.message_date
          AND (s.status IS DISTINCT FROM state.status OR s.current_stop IS DISTINCT FROM state.current_stop)
        RETURNING 1
    )
    SELECT count(*)::integer FROM changed
$$;

-- Which signal each follow-up belongs to, for the given channels from the given dates on, then
-- the state of every signal that gained or lost an event (and of `refresh_ids`).
--
-- The events of a channel are walked in Telegram order (message date, message id, seq), so the
-- result depends only on what is stored, never on arrival order, and a second call changes
-- nothing. A live event links to, in this order:
--   0. the signal of its own message (a signal edited into "sinal cancelado" keeps its follow-up);
--   1. the signal it replies to, or the signal of the follow-up it replies to (a reply to a
--      deleted signal stays unlinked: it is about that signal, not another);
--   2. with a ticker: the latest live signal of that ticker in the channel posted before it that
--      no earlier stop hit, final target, cancellation or close has ended;
--   3. without a ticker: the channel's latest live signal if it was posted less than 24 hours
--      before the event;
--   else it stays unlinked (kept, and shown by GET /signal-events?unlinked=true).
-- A deleted event links to nothing. An event at or after a date depends only on what was posted
-- before it, so a write at date D relinks the channel from D.
--
-- One call per channel at a time (a transaction-level advisory lock, taken in channel order): a
-- call sees every write that committed before it started waiting, so the last of two concurrent
-- calls sees both writes.
CREATE FUNCTION tp_capital.relink_events(
    channel_ids bigint[], from_dates timestamptz[], refresh_ids bigint[] DEFAULT '{}',
    OUT relinked integer, OUT refreshed integer
)
LANGUAGE plpgsql AS $$
DECLARE
    c record;
    e record;
    target bigint;
    replied boolean;
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
                    SELECT s.id, s.deleted_at IS NULL INTO target, replied
                    FROM tp_capital.tp_capital_signals s
                    WHERE s.channel_id = c.channel_id AND s.message_id = e.reply_to_message_id
                    ORDER BY s.deleted_at IS NULL DESC, s.message_date DESC
                    LIMIT 1;
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
                      AND (s.message_date, s.message_id) < (e.message_date, e.message_id)
                      AND s.message_date > e.message_date - interval '24 hours'
                      AND s.ts > floor(extract(epoch FROM e.message_date) * 1000)::bigint - 86400000
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

DROP FUNCTION tp_capital.relink_signal_events(text[], bigint[], bigint[]);

-- Events stored before this migration were linked by asset across channels: relink them all by
-- the rules above.
SELECT tp_capital.relink_events(
    ARRAY(SELECT DISTINCT channel_id FROM tp_capital.signal_events),
    ARRAY(SELECT NULL::timestamptz FROM (SELECT DISTINCT channel_id FROM tp_capital.signal_events) d),
    ARRAY(SELECT id FROM tp_capital.tp_capital_signals));
