-- Follow-ups ("BOVAW22 ALVO 1 ATINGIDO", "CYREW296 stop -25%") belong to a signal by the messages'
-- Telegram dates, not by the order in which they reached the API: a stop that arrives before its
-- signal (out-of-order backfill), or an "ALVO 1" that arrives after "ALVO 2", must end in the same
-- place as if everything had arrived in order.
--
-- `relink_signal_events` recomputes, for the given assets, which signal each event belongs to and
-- the status of every signal whose events changed. It walks the asset's events in message order:
-- an event goes to the asset's most recent live signal posted at or before it that no earlier stop
-- or final target has closed; with none, it stays unattached (and attaches later, when such a
-- signal arrives and the ingest API calls this again). A signal's status is its latest event's.
-- The result depends only on what is stored, never on arrival order, and a second call changes
-- nothing (so the API can call it again on every retry).

CREATE INDEX signal_events_asset_idx ON tp_capital.signal_events (asset, message_date);

CREATE FUNCTION tp_capital.relink_signal_events(
    assets text[], edited_channel_ids bigint[], edited_message_ids bigint[]
) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    event record;
    target bigint;
    closed bigint[] := '{}';   -- signals a stop or final target has ended, so far in message order
    touched bigint[] := '{}';  -- signals that gained or lost an event
BEGIN
    -- An edit may have changed a signal's asset or withdrawn the signal: its events (which keep
    -- the asset they named) are relinked too.
    assets := assets || ARRAY(
        SELECT DISTINCT e.asset
        FROM tp_capital.signal_events e
        JOIN tp_capital.tp_capital_signals s ON s.id = e.signal_id
        JOIN unnest(edited_channel_ids, edited_message_ids) AS k(channel_id, message_id)
          ON s.channel_id = k.channel_id AND s.message_id = k.message_id
    );
    -- Locked in one order (asset, date, key), so two calls for the same asset queue up instead of
    -- deadlocking.
    FOR event IN
        SELECT e.id, e.asset, e.event_type, e.message_date, e.signal_id
        FROM tp_capital.signal_events e
        WHERE e.asset = ANY (assets)
        ORDER BY e.asset, e.message_date, e.channel_id, e.message_id
        FOR UPDATE
    LOOP
        SELECT s.id INTO target
        FROM tp_capital.tp_capital_signals s
        WHERE s.asset = event.asset
          AND s.deleted_at IS NULL
          AND s.ts <= floor(extract(epoch FROM event.message_date) * 1000)::bigint
          AND s.id <> ALL (closed)
        ORDER BY s.ts DESC, s.id DESC
        LIMIT 1;
        IF target IS DISTINCT FROM event.signal_id THEN
            UPDATE tp_capital.signal_events SET signal_id = target WHERE id = event.id;
            touched := touched || event.signal_id || target;
        END IF;
        IF target IS NOT NULL AND event.event_type IN ('stop_hit', 'final_target_hit') THEN
            closed := closed || target;
        END IF;
    END LOOP;

    UPDATE tp_capital.tp_capital_signals s
    SET status = computed.status, updated_at = now()
    FROM (
        SELECT t.id, COALESCE((
            SELECT CASE e.event_type
                       WHEN 'stop_hit' THEN 'stopped'
                       WHEN 'final_target_hit' THEN 'final_target_hit'
                       ELSE 'target_' || COALESCE(e.target_number, 1) || '_hit'
                   END
            FROM tp_capital.signal_events e
            WHERE e.signal_id = t.id
            ORDER BY e.message_date DESC, e.message_id DESC
            LIMIT 1
        ), 'open') AS status
        FROM (SELECT DISTINCT id FROM unnest(touched) AS u(id) WHERE id IS NOT NULL) t
    ) computed
    WHERE s.id = computed.id AND s.status IS DISTINCT FROM computed.status;

    RETURN cardinality(touched);
END
$$;

-- Events stored before this migration were attached in arrival order: recompute them once.
SELECT tp_capital.relink_signal_events(ARRAY(SELECT DISTINCT asset FROM tp_capital.signal_events), '{}', '{}');
