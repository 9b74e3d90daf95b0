-- The old dashboard deletes a signal with `DELETE /signals {"ingestedAt": ...}`, sending back the
-- ingested_at it was served at millisecond precision (JavaScript's toISOString). For that to name
-- one row, no two signals may share an ingested_at millisecond. clock_timestamp() (004) differs
-- per row but only by microseconds: the rows of one batch shared milliseconds.
--
-- From here on each signal's ingested_at comes from `next_signal_ingested_at()`: the current time
-- to the millisecond, or one millisecond after the last value handed out if that is later. So
-- values are unique, increasing, and the real time except in bursts of more than one signal per
-- millisecond, when they run ahead by one millisecond per signal (1,000 signals in one batch: at
-- most 1 s ahead) and fall back to the clock when the burst ends.
--
-- The last value lives in a sequence (shared by every connection, not rolled back with a
-- transaction). Reading it and moving it is a critical section of a few microseconds under an
-- advisory lock that is taken and released per row: concurrent ingest transactions go on in
-- parallel, nothing is held until commit (so no waiting on another transaction, no deadlock).
-- The exception block releases the lock even when a statement is cancelled mid-way, which would
-- otherwise leave it held by that connection and stall every other insert.
--
-- Works the same on a plain table and on a TimescaleDB hypertable (a column default is copied to
-- every chunk).

CREATE SEQUENCE tp_capital.signal_ingested_at_ms AS bigint MINVALUE 0;

CREATE FUNCTION tp_capital.next_signal_ingested_at() RETURNS timestamptz
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    lock_key CONSTANT bigint := 4005015;  -- this function's own advisory lock
    millis bigint;
BEGIN
    BEGIN
        PERFORM pg_advisory_lock(lock_key);
        SELECT greatest(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint, last_value + 1)
          INTO millis FROM tp_capital.signal_ingested_at_ms;
        PERFORM setval('tp_capital.signal_ingested_at_ms', millis);
        PERFORM pg_advisory_unlock(lock_key);
    EXCEPTION WHEN query_canceled OR OTHERS THEN
        PERFORM pg_advisory_unlock(lock_key);
        RAISE;
    END;
    RETURN timestamptz 'epoch' + millis * interval '1 millisecond';
END
$$;

-- Signals stored before this migration: a millisecond shared by several live or deleted signals
-- cannot name one of them, so each of those signals moves to a free millisecond just after it.
-- "Free" means no signal had it before: a client still holding a value it was served earlier then
-- finds either the same signal as before (a value no other signal shared is kept as is) or none
-- (404, it reloads), never another signal.
CREATE TEMPORARY TABLE taken_ms ON COMMIT DROP AS
SELECT DISTINCT floor(extract(epoch FROM ingested_at) * 1000)::bigint AS millis
FROM tp_capital.tp_capital_signals;
CREATE UNIQUE INDEX ON taken_ms (millis);

DO $$
DECLARE
    signal record;
    candidate bigint := 0;
BEGIN
    FOR signal IN
        SELECT id, message_date, floor(extract(epoch FROM ingested_at) * 1000)::bigint AS millis
        FROM (
            SELECT id, message_date, ingested_at,
                   count(*) OVER (PARTITION BY date_trunc('milliseconds', ingested_at)) AS sharing
            FROM tp_capital.tp_capital_signals
        ) s
        WHERE sharing > 1
        ORDER BY ingested_at, id
    LOOP
        candidate := greatest(candidate, signal.millis);
        LOOP
            candidate := candidate + 1;
            EXIT WHEN NOT EXISTS (SELECT 1 FROM taken_ms WHERE millis = candidate);
        END LOOP;
        INSERT INTO taken_ms VALUES (candidate);
        UPDATE tp_capital.tp_capital_signals
        SET ingested_at = timestamptz 'epoch' + candidate * interval '1 millisecond'
        WHERE id = signal.id AND message_date = signal.message_date;
    END LOOP;
    -- New values start after every stored one (and at the clock).
    PERFORM setval('tp_capital.signal_ingested_at_ms', greatest(
        floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint,
        (SELECT coalesce(max(millis), 0) FROM taken_ms)));
END
$$;

ALTER TABLE tp_capital.tp_capital_signals ALTER COLUMN ingested_at SET DEFAULT tp_capital.next_signal_ingested_at();

-- DELETE /signals looks a signal up by its ingested_at (a millisecond range).
CREATE INDEX tp_capital_signals_ingested_at_idx ON tp_capital.tp_capital_signals (ingested_at);
