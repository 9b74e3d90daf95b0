-- Database time per ingest flush (issue 15, docs/ingest-api.md "Database time per flush").
-- bench/write_cost.py measured a flush of 16 new messages (4 signals): three statements, one
-- commit; after the insert, two more round trips (tombstones, then relink + outcomes), and the
-- outcomes query planned again on every call.

-- 1. record_outcomes (021) ran its one query with a custom plan every time: its arrays are
-- parameters, so the generic plan's estimate (unnest of unknown arrays: 10 rows) never looked
-- cheaper than the custom plans (the arrays' real few rows), and each call paid 0.25 ms of
-- planning for 0.01 ms of execution. The plan has the same shape either way (per-channel index
-- scans, then each signal by key through stored_signal): planned once per connection from now on.
-- Nothing in it names a hypertable (signal_events and signal_outcomes are plain tables, the
-- signals are read through stored_signal), so TimescaleDB's chunk exclusion is not at stake.
ALTER FUNCTION tp_capital.record_outcomes(bigint[], timestamptz[]) SET plan_cache_mode = force_generic_plan;

-- 2. What a write runs after its rows have committed, in one statement (one round trip): apply
-- the tombstones of the messages it touched (apply_tombstones, 021), then relink the channels it
-- stored signals or follow-ups in, together with those a tombstone deleted derived rows in, and
-- record the new outcomes (relink_and_record, 021). The ingest API ran the same two functions as
-- two statements, each its own transaction; here they share one, the relink after the tombstones
-- as before, so it sees what they marked deleted. The tombstones are still read after the
-- write's commit (a new statement, a new snapshot): of a message and its tombstone racing each
-- other, whichever commits second sees the other.
-- Locks: the relink locks each channel (advisory, 008) and then updates its rows, as
-- redate_message does. Tombstone updates taken first and held through the relink would reverse
-- that order (a relink of the same channel updating the deleted event waits for this
-- transaction, which waits for its channel lock: a deadlock). So when a touched message has a
-- tombstone, every channel this statement will relink is locked first, in channel order (the
-- relink's own order), and only then are the tombstones applied. The usual write has none: it
-- reads the plain tombstones table once and takes no lock before the relink.
-- $1/$2: the (channel, message) ids the write touched; $3/$4: the channels to relink and the
-- date each from (NULL: from the first event); $5: the signals whose own row changed.
-- Answers one row per outcome recorded as new, to count.
CREATE FUNCTION tp_capital.settle_write(
    touched_channel_ids bigint[], touched_message_ids bigint[],
    channel_ids bigint[], from_dates timestamptz[], refresh_ids bigint[]
) RETURNS SETOF text
LANGUAGE plpgsql AS $$
DECLARE
    t record;
    relink_channels bigint[] := COALESCE(channel_ids, '{}');
    relink_dates timestamptz[] := COALESCE(from_dates, '{}');
    tombstoned bigint[];
    lock_channel bigint;
BEGIN
    SELECT array_agg(DISTINCT x.channel_id) INTO tombstoned
    FROM unnest(touched_channel_ids, touched_message_ids) AS k(channel_id, message_id)
    JOIN tp_capital.message_tombstones x ON x.channel_id = k.channel_id AND x.message_id = k.message_id;
    IF tombstoned IS NOT NULL THEN
        FOR lock_channel IN
            SELECT DISTINCT c FROM unnest(relink_channels || tombstoned) AS u(c) WHERE c IS NOT NULL ORDER BY c
        LOOP
            PERFORM pg_advisory_xact_lock(71013, hashtext(lock_channel::text));
        END LOOP;
        FOR t IN SELECT * FROM tp_capital.apply_tombstones(touched_channel_ids, touched_message_ids) LOOP
            relink_channels := relink_channels || t.tombstoned_channel_id;
            relink_dates := relink_dates || t.relink_from;
        END LOOP;
    END IF;
    IF cardinality(relink_channels) > 0 OR cardinality(refresh_ids) > 0 THEN
        RETURN QUERY SELECT o FROM tp_capital.relink_and_record(relink_channels, relink_dates, refresh_ids) AS o;
    END IF;
END
$$;
