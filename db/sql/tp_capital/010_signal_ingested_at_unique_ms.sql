-- The old dashboard deletes a signal with `DELETE /signals {"ingestedAt": ...}`, sending back the
-- ingested_at it was served at millisecond precision (JavaScript's toISOString). For that to name
-- one row, no two signals may share an ingested_at millisecond. clock_timestamp() (004) differs
-- per row but only by microseconds: the rows of one batch shared milliseconds.
--
-- From here on each signal's ingested_at comes from `next_signal_ingested_at()`: the current time
-- to the millisecond, or one millisecond after the last value handed out if that is later. So
-- values are unique and increasing, and they are the real time except:
-- - in bursts of more than one signal per millisecond, when they run ahead by one millisecond per
--   signal (a 1,000-signal batch: up to 1 s ahead) and rejoin the clock when the burst ends;
-- - while another ingest transaction that stored signals is still open: the value may then lag
--   the clock (never repeat) until no transaction overlaps.
--
-- The last value lives in a sequence (shared by every connection, not rolled back). Handing out
-- the next value is `nextval`: no lock between concurrent writers. Only when that value has
-- fallen behind the clock (an idle channel) is the sequence moved forward to the clock, with
-- `setval`, which must not run while anyone else takes a value (a concurrent nextval could be
-- handed out again). So every transaction that takes values holds a shared advisory lock until it
-- ends (taken once, free to take again) and the move needs the same lock exclusively: it is only
-- tried (never waited for) and skipped while another transaction is open. A writer waits at most
-- for that move (microseconds), never for another transaction's commit: no deadlock, no
-- serialising of writes. The exclusive lock is a session lock released at once; the exception
-- block releases it even when the statement is cancelled between taking and releasing it (it
-- would otherwise stay held by that connection).
--
-- Works the same on a plain table and on a TimescaleDB hypertable (a column default is copied to
-- every chunk).

-- CACHE 1: every connection takes the sequence's next value, none keeps a private range.
CREATE SEQUENCE tp_capital.signal_ingested_at_ms AS bigint MINVALUE 0 CACHE 1;

CREATE FUNCTION tp_capital.next_signal_ingested_at() RETURNS timestamptz
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    lock_key CONSTANT bigint := 4005015;  -- this function's own advisory lock
    millis bigint;
    now_millis bigint;
BEGIN
    PERFORM pg_advisory_xact_lock_shared(lock_key);
    millis := nextval('tp_capital.signal_ingested_at_ms');
    now_millis := floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint;
    IF millis >= now_millis THEN
        RETURN timestamptz 'epoch' + millis * interval '1 millisecond';
    END IF;
    -- Behind the clock: move the sequence to it, if no other transaction is taking values.
    BEGIN
        IF pg_try_advisory_lock(lock_key) THEN
            SELECT greatest(now_millis, last_value + 1) INTO millis FROM tp_capital.signal_ingested_at_ms;
            PERFORM setval('tp_capital.signal_ingested_at_ms', millis);
            PERFORM pg_advisory_unlock(lock_key);
        END IF;
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
