"""SQL of the ingest path. Every statement is idempotent and takes whole batches (unnest arrays).

Rows are fed to each INSERT sorted by key, so two concurrent batches that share keys lock them in
the same order (no deadlock between coalesced writers).

Derived rows (signals, events) are a function of a message's revisions (ingest/derive.py): each
row holds what the newest revision that derived it says (`revision_date` is that revision), and
is live only while that revision is the message's current text. A write upserts the rows of the
revisions it carries (an older revision never overwrites a newer one's row); RECONCILE marks
deleted the rows whose revision is no longer current; RELINK attaches events to signals
(db/sql/tp_capital/008).
"""

# Shared by INSERT_NEW and INSERT_EDITS: the date already on record for each message id
# (`message_dates`, one date per Telegram message), the messages that agree with it or are new
# (`fresh`; the others are moved to the new date by the API, see REDATE), and the new ones'
# dates recorded. A message recorded by a concurrent statement in the meantime is not in `dated`
# either: it goes through REDATE too, which merges the two if their dates differ.
# The date on record is read FOR SHARE: a REDATE of that message in progress (it updates the
# date first) makes this statement wait and then read the new date, so it never stores the
# message again under the date being moved away from; and a REDATE waits for this statement.
# (`known` looks each message up by its key, a correlated subquery on purpose: a join lets the
# planner hash the whole table, a scan of every message on record per batch. The LATERAL lookups
# below are there for the same reason.)
# _LOOKUP: a stored message is looked up by its whole key through `tp_capital.stored_message`
# (db/sql/tp_capital/021), a plpgsql function run only for the input rows that need it (a
# redelivery, an edit, a follow-up) with the key as parameters. On TimescaleDB its one statement
# reads only the chunk of that date, and the calling statement names no chunk at all: a lookup
# written inline (a join, or a LATERAL subquery) makes every execution of the statement open and
# lock every chunk of forwarded_messages, even for a new message that looks nothing up.
_DATES = """
known AS (
    SELECT i.idx,
           (SELECT d.original_timestamp FROM tp_capital.message_dates d
            WHERE d.channel_id = i.channel_id AND d.message_id = i.message_id FOR SHARE) AS known_date
    FROM input i
),
fresh AS (
    SELECT i.*, k.known_date
    FROM input i
    JOIN known k USING (idx)
    WHERE k.known_date IS NULL OR k.known_date = i.original_timestamp
),
dated AS (
    INSERT INTO tp_capital.message_dates AS d (channel_id, message_id, original_timestamp)
    SELECT DISTINCT ON (f.channel_id, f.message_id) f.channel_id, f.message_id, f.original_timestamp
    FROM fresh f
    WHERE f.known_date IS NULL
    ORDER BY f.channel_id, f.message_id
    ON CONFLICT ON CONSTRAINT message_dates_pkey DO NOTHING
    RETURNING d.channel_id, d.message_id
)"""

_REDATE_FLAG = """
    (k.known_date IS NOT NULL AND k.known_date <> i.original_timestamp)
    OR (k.known_date IS NULL
        AND NOT EXISTS (SELECT 1 FROM dated d WHERE d.channel_id = i.channel_id AND d.message_id = i.message_id))
    AS redate"""

# New messages: store each raw message once, its text as the first revision, and its signal.
# A tombstone recorded earlier (delete before message) marks the row deleted on the way in.
# Answers, per input row: stored (a new row), redate (another date is on record: see REDATE).
INSERT_NEW = f"""
WITH input AS (
    SELECT * FROM unnest(
        $1::int[], $2::bigint[], $3::bigint[], $4::timestamptz[], $5::text[], $6::text[], $7::text[],
        $8::text[], $9::text[], $10::bigint[], $11::text[], $12::text[], $13::text[], $14::float8[], $15::float8[],
        $16::float8[], $17::float8[], $18::float8[], $19::float8[], $20::text[]
    ) AS i(idx, channel_id, message_id, original_timestamp, message_text, photos, channel_name, sender,
           forward, reply_to_message_id, asset, signal_type, side, buy_min, buy_max, target_1, target_2,
           target_final, stop, channel)
),
{_DATES},
inserted AS (
    INSERT INTO tp_capital.forwarded_messages AS f
        (channel_id, message_id, original_timestamp, message_text, photos, channel_name, sender, forward,
         reply_to_message_id, deleted_at)
    SELECT i.channel_id, i.message_id, i.original_timestamp, i.message_text, i.photos::jsonb,
           i.channel_name, i.sender::jsonb, i.forward::jsonb, i.reply_to_message_id, t.deleted_at
    FROM fresh i
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
    FROM fresh
    ORDER BY channel_id, message_id, original_timestamp
    ON CONFLICT ON CONSTRAINT message_revisions_key DO NOTHING
),
signals AS (
    INSERT INTO tp_capital.tp_capital_signals
        (ts, channel, signal_type, asset, side, buy_min, buy_max, target_1, target_2, target_final, stop,
         current_stop, raw_message, channel_id, message_id, message_date, revision_date, deleted_at)
    SELECT floor(extract(epoch FROM i.original_timestamp) * 1000)::bigint, i.channel, i.signal_type,
           i.asset, i.side, i.buy_min, i.buy_max, i.target_1, i.target_2, i.target_final, i.stop, i.stop,
           i.message_text, i.channel_id, i.message_id, i.original_timestamp, i.original_timestamp, s.deleted_at
    FROM fresh i
    JOIN inserted s USING (channel_id, message_id, original_timestamp)
    WHERE i.asset IS NOT NULL
    ORDER BY i.channel_id, i.message_id, i.original_timestamp
    ON CONFLICT ON CONSTRAINT tp_capital_signals_message_key DO NOTHING
),
-- A message already stored (a redelivery, or the original arriving after an edit): its signal
-- row is the original's only if no newer revision derived one, deleted when the original is no
-- longer the current text.
signals_again AS (
    INSERT INTO tp_capital.tp_capital_signals AS s
        (ts, channel, signal_type, asset, side, buy_min, buy_max, target_1, target_2, target_final, stop,
         current_stop, raw_message, channel_id, message_id, message_date, revision_date, deleted_at)
    SELECT floor(extract(epoch FROM i.original_timestamp) * 1000)::bigint, COALESCE(f.channel_name, i.channel),
           i.signal_type, i.asset, i.side, i.buy_min, i.buy_max, i.target_1, i.target_2, i.target_final, i.stop,
           i.stop, i.message_text, i.channel_id, i.message_id, i.original_timestamp, i.original_timestamp,
           COALESCE(f.deleted_at, CASE WHEN f.edit_date > i.original_timestamp THEN f.edit_date END)
    FROM fresh i
    CROSS JOIN LATERAL tp_capital.stored_message(i.channel_id, i.message_id, i.original_timestamp) f  -- _LOOKUP
    WHERE i.asset IS NOT NULL AND i.known_date IS NOT NULL
    ORDER BY i.channel_id, i.message_id, i.original_timestamp
    ON CONFLICT ON CONSTRAINT tp_capital_signals_message_key DO UPDATE
        SET signal_type = EXCLUDED.signal_type, asset = EXCLUDED.asset, side = EXCLUDED.side,
            buy_min = EXCLUDED.buy_min, buy_max = EXCLUDED.buy_max, target_1 = EXCLUDED.target_1,
            target_2 = EXCLUDED.target_2, target_final = EXCLUDED.target_final, stop = EXCLUDED.stop,
            raw_message = EXCLUDED.raw_message, revision_date = EXCLUDED.revision_date,
            deleted_at = COALESCE(EXCLUDED.deleted_at, s.dismissed_at), updated_at = now()
        WHERE s.revision_date < EXCLUDED.revision_date
)
SELECT i.idx,
       EXISTS (SELECT 1 FROM inserted s WHERE s.channel_id = i.channel_id AND s.message_id = i.message_id
                                          AND s.original_timestamp = i.original_timestamp) AS stored,
       {_REDATE_FLAG}
FROM input i
JOIN known k USING (idx)
"""

# Edits: record each revision once; apply only the newest edit to the message (an older edit
# arriving late is kept as a revision but does not overwrite newer text). An edit arriving before
# its message creates the row with the edited text. The signal and events of the new revisions
# are written here ($21..$28: the events of all edits, flat, with the input row they belong to);
# what the previous text derived and the current one does not is marked deleted by RECONCILE.
# Answers: one row per input row (idx, stored, redate), then one per signal written (signal_id).
INSERT_EDITS = f"""
WITH input AS (
    SELECT * FROM unnest(
        $1::int[], $2::bigint[], $3::bigint[], $4::timestamptz[], $5::timestamptz[], $6::text[],
        $7::text[], $8::text[], $9::text[], $10::text[], $11::bigint[], $12::text[], $13::text[], $14::text[],
        $15::float8[], $16::float8[], $17::float8[], $18::float8[], $19::float8[], $20::float8[]
    ) AS i(idx, channel_id, message_id, original_timestamp, edit_date, message_text, photos,
           channel_name, sender, forward, reply_to_message_id, asset, signal_type, side, buy_min, buy_max,
           target_1, target_2, target_final, stop)
),
{_DATES},
recorded AS (
    INSERT INTO tp_capital.message_revisions AS r
        (channel_id, message_id, original_timestamp, revision_date, message_text)
    SELECT channel_id, message_id, original_timestamp, edit_date, message_text
    FROM fresh
    ORDER BY channel_id, message_id, original_timestamp, edit_date
    ON CONFLICT ON CONSTRAINT message_revisions_key DO NOTHING
    RETURNING r.channel_id, r.message_id, r.original_timestamp, r.revision_date
),
newest AS (
    SELECT DISTINCT ON (i.channel_id, i.message_id, i.original_timestamp) i.*
    FROM fresh i
    JOIN recorded r ON r.channel_id = i.channel_id AND r.message_id = i.message_id
                   AND r.original_timestamp = i.original_timestamp AND r.revision_date = i.edit_date
    ORDER BY i.channel_id, i.message_id, i.original_timestamp, i.edit_date DESC
),
applied AS (
    INSERT INTO tp_capital.forwarded_messages AS f
        (channel_id, message_id, original_timestamp, message_text, photos, channel_name, sender, forward,
         reply_to_message_id, edit_date, deleted_at)
    SELECT n.channel_id, n.message_id, n.original_timestamp, n.message_text, n.photos::jsonb,
           n.channel_name, n.sender::jsonb, n.forward::jsonb, n.reply_to_message_id, n.edit_date, t.deleted_at
    FROM newest n
    LEFT JOIN tp_capital.message_tombstones t
           ON t.channel_id = n.channel_id AND t.message_id = n.message_id
    ORDER BY n.channel_id, n.message_id, n.original_timestamp
    ON CONFLICT ON CONSTRAINT forwarded_messages_message_key DO UPDATE
        SET message_text = EXCLUDED.message_text,
            edit_date = EXCLUDED.edit_date,
            reply_to_message_id = COALESCE(f.reply_to_message_id, EXCLUDED.reply_to_message_id),
            updated_at = now()
        WHERE f.edit_date IS NULL OR f.edit_date < EXCLUDED.edit_date
    RETURNING f.channel_id, f.message_id, f.original_timestamp, f.deleted_at, f.channel_name, f.reply_to_message_id,
              f.edit_date
),
-- Each message's current revision and deletion once this statement is done.
state AS (
    SELECT k.channel_id, k.message_id, k.original_timestamp,
           COALESCE(a.edit_date, o.edit_date, o.original_timestamp) AS current_revision,
           COALESCE(a.deleted_at, o.deleted_at) AS deleted_at,
           COALESCE(a.channel_name, o.channel_name, k.channel_id::text) AS channel,
           COALESCE(a.reply_to_message_id, o.reply_to_message_id) AS reply_to_message_id
    FROM (SELECT DISTINCT channel_id, message_id, original_timestamp FROM fresh) k
    LEFT JOIN applied a USING (channel_id, message_id, original_timestamp)
    LEFT JOIN LATERAL tp_capital.stored_message(k.channel_id, k.message_id, k.original_timestamp) o ON true  -- _LOOKUP
),
-- The rows of the newest new revision of each message that derives them (older ones than what
-- is stored change nothing); deleted when that revision is not the current text.
signals AS (
    INSERT INTO tp_capital.tp_capital_signals AS s
        (ts, channel, signal_type, asset, side, buy_min, buy_max, target_1, target_2, target_final, stop,
         current_stop, raw_message, channel_id, message_id, message_date, revision_date, deleted_at)
    SELECT floor(extract(epoch FROM n.original_timestamp) * 1000)::bigint, st.channel, n.signal_type, n.asset,
           n.side, n.buy_min, n.buy_max, n.target_1, n.target_2, n.target_final, n.stop, n.stop, n.message_text,
           n.channel_id, n.message_id, n.original_timestamp, n.edit_date,
           CASE WHEN n.edit_date >= st.current_revision THEN st.deleted_at
                ELSE COALESCE(st.deleted_at, st.current_revision) END
    FROM (SELECT DISTINCT ON (i.channel_id, i.message_id, i.original_timestamp) i.*
          FROM fresh i
          JOIN recorded r ON r.channel_id = i.channel_id AND r.message_id = i.message_id
                         AND r.original_timestamp = i.original_timestamp AND r.revision_date = i.edit_date
          WHERE i.asset IS NOT NULL
          ORDER BY i.channel_id, i.message_id, i.original_timestamp, i.edit_date DESC) n
    JOIN state st USING (channel_id, message_id, original_timestamp)
    ORDER BY n.channel_id, n.message_id, n.original_timestamp
    ON CONFLICT ON CONSTRAINT tp_capital_signals_message_key DO UPDATE
        SET signal_type = EXCLUDED.signal_type, asset = EXCLUDED.asset, side = EXCLUDED.side,
            buy_min = EXCLUDED.buy_min, buy_max = EXCLUDED.buy_max,
            target_1 = EXCLUDED.target_1, target_2 = EXCLUDED.target_2,
            target_final = EXCLUDED.target_final, stop = EXCLUDED.stop,
            raw_message = EXCLUDED.raw_message, revision_date = EXCLUDED.revision_date,
            -- A signal deleted through the API stays deleted when its message is edited.
            deleted_at = COALESCE(EXCLUDED.deleted_at, s.dismissed_at), updated_at = now()
        WHERE s.revision_date < EXCLUDED.revision_date
    RETURNING s.id
),
events AS (
    INSERT INTO tp_capital.signal_events AS e
        (signal_id, channel_id, message_id, message_date, seq, asset, event_type, target_number, percentage,
         price, breakeven, raw_message, reply_to_message_id, revision_date, deleted_at)
    SELECT NULL, v.channel_id, v.message_id, v.original_timestamp, v.seq, v.asset, v.event_type, v.target_number,
           v.percentage, v.price, v.breakeven, v.message_text, st.reply_to_message_id, v.edit_date,
           CASE WHEN v.edit_date >= st.current_revision THEN st.deleted_at
                ELSE COALESCE(st.deleted_at, st.current_revision) END
    FROM (SELECT DISTINCT ON (i.channel_id, i.message_id, i.original_timestamp, x.seq) i.channel_id, i.message_id,
                 i.original_timestamp, i.edit_date, i.message_text, x.seq, x.asset, x.event_type, x.target_number,
                 x.percentage, x.price, x.breakeven
          FROM unnest($21::int[], $22::int[], $23::text[], $24::text[], $25::int[], $26::float8[], $27::float8[],
                      $28::bool[]) AS x(idx, seq, asset, event_type, target_number, percentage, price, breakeven)
          JOIN fresh i ON i.idx = x.idx
          JOIN recorded r ON r.channel_id = i.channel_id AND r.message_id = i.message_id
                         AND r.original_timestamp = i.original_timestamp AND r.revision_date = i.edit_date
          ORDER BY i.channel_id, i.message_id, i.original_timestamp, x.seq, i.edit_date DESC) v
    JOIN state st USING (channel_id, message_id, original_timestamp)
    ORDER BY v.channel_id, v.message_id, v.original_timestamp, v.seq
    ON CONFLICT ON CONSTRAINT signal_events_message_key DO UPDATE
        SET asset = EXCLUDED.asset, event_type = EXCLUDED.event_type, target_number = EXCLUDED.target_number,
            percentage = EXCLUDED.percentage, price = EXCLUDED.price, breakeven = EXCLUDED.breakeven,
            raw_message = EXCLUDED.raw_message, reply_to_message_id = EXCLUDED.reply_to_message_id,
            revision_date = EXCLUDED.revision_date, deleted_at = EXCLUDED.deleted_at
        WHERE e.revision_date < EXCLUDED.revision_date
)
SELECT i.idx,
       EXISTS (SELECT 1 FROM recorded r WHERE r.channel_id = i.channel_id AND r.message_id = i.message_id
                                          AND r.original_timestamp = i.original_timestamp
                                          AND r.revision_date = i.edit_date) AS stored,
       {_REDATE_FLAG},
       NULL::bigint AS signal_id
FROM input i
JOIN known k USING (idx)
UNION ALL
SELECT NULL, false, false, id FROM signals
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

# Follow-ups of new messages ("BOVAW22 ALVO 1 ATINGIDO"), unlinked (RELINK links them); for a
# message already stored too (an attempt that stored the message and failed before this
# statement is completed by the retry; an original arriving after its edit records its events,
# deleted if the edit does not have them). An older revision never overwrites a newer one's row.
RECORD_EVENTS = """
INSERT INTO tp_capital.signal_events AS e
    (signal_id, channel_id, message_id, message_date, seq, asset, event_type, target_number, percentage, price,
     breakeven, raw_message, reply_to_message_id, revision_date, deleted_at)
SELECT NULL, i.channel_id, i.message_id, i.message_date, i.seq, i.asset, i.event_type, i.target_number,
       i.percentage, i.price, i.breakeven, i.message_text, f.reply_to_message_id, i.message_date,
       CASE WHEN f.edit_date > i.message_date THEN COALESCE(f.deleted_at, f.edit_date) ELSE f.deleted_at END
FROM unnest($1::bigint[], $2::bigint[], $3::timestamptz[], $4::int[], $5::text[], $6::text[], $7::int[],
            $8::float8[], $9::float8[], $10::bool[], $11::text[])
     AS i(channel_id, message_id, message_date, seq, asset, event_type, target_number, percentage, price, breakeven,
          message_text)
CROSS JOIN LATERAL tp_capital.stored_message(i.channel_id, i.message_id, i.message_date) f  -- _LOOKUP
ORDER BY i.channel_id, i.message_id, i.message_date, i.seq
ON CONFLICT ON CONSTRAINT signal_events_message_key DO UPDATE
    SET asset = EXCLUDED.asset, event_type = EXCLUDED.event_type, target_number = EXCLUDED.target_number,
        percentage = EXCLUDED.percentage, price = EXCLUDED.price, breakeven = EXCLUDED.breakeven,
        raw_message = EXCLUDED.raw_message, reply_to_message_id = EXCLUDED.reply_to_message_id,
        revision_date = EXCLUDED.revision_date, deleted_at = EXCLUDED.deleted_at
    WHERE e.revision_date < EXCLUDED.revision_date
"""

# After the writes above have committed, for the messages that were edited (or delivered again):
# a signal or event whose revision is older than the message's current text is not what the
# message says now: it is kept, marked deleted (by the message's deletion, else a signal's
# dismissal, else the current text's date). Run by every write after its own commit, so of two
# racing writes the second sees both. Answers (channel, earliest date) to relink.
RECONCILE = """
WITH keys AS (
    SELECT DISTINCT channel_id, message_id, original_timestamp
    FROM unnest($1::bigint[], $2::bigint[], $3::timestamptz[]) AS k(channel_id, message_id, original_timestamp)
),
current AS (
    SELECT f.channel_id, f.message_id, f.original_timestamp, f.deleted_at,
           COALESCE(f.edit_date, f.original_timestamp) AS revision_date
    FROM keys k
    CROSS JOIN LATERAL tp_capital.stored_message(k.channel_id, k.message_id, k.original_timestamp) f  -- _LOOKUP
),
signals AS (
    UPDATE tp_capital.tp_capital_signals s
    SET deleted_at = COALESCE(c.deleted_at, s.dismissed_at, c.revision_date), updated_at = now()
    FROM current c
    WHERE s.channel_id = c.channel_id AND s.message_id = c.message_id AND s.message_date = c.original_timestamp
      AND s.revision_date < c.revision_date
      AND s.deleted_at IS DISTINCT FROM COALESCE(c.deleted_at, s.dismissed_at, c.revision_date)
    RETURNING s.channel_id, s.message_date
),
events AS (
    UPDATE tp_capital.signal_events e
    SET deleted_at = COALESCE(c.deleted_at, c.revision_date)
    FROM current c
    WHERE e.channel_id = c.channel_id AND e.message_id = c.message_id AND e.message_date = c.original_timestamp
      AND e.revision_date < c.revision_date AND e.deleted_at IS DISTINCT FROM COALESCE(c.deleted_at, c.revision_date)
    RETURNING e.channel_id, e.message_date
)
SELECT channel_id, min(message_date) AS from_date
FROM (SELECT * FROM signals UNION ALL SELECT * FROM events) changed
GROUP BY channel_id
"""

# Run after the writes above have committed, for every message they touched. A message insert
# and a tombstone insert racing each other cannot both miss: whichever commits second sees the
# other here. So a deleted message always ends up marked, in whatever order they arrived, and so
# do its signal and events. Answers (channel, earliest date of derived rows it deleted) to relink.
# `apply_tombstones` (db/sql/tp_capital/021) reads the plain tombstones table first: the usual
# message has none, and then no hypertable is planned or touched; one that has a tombstone is
# updated by its whole key, the date included (one chunk).
APPLY_TOMBSTONES = """
SELECT tombstoned_channel_id AS channel_id, relink_from AS from_date
FROM tp_capital.apply_tombstones($1::bigint[], $2::bigint[])
"""

# Which signal each follow-up belongs to, and the signals' statuses and current stops, for the
# channels a write touched from its earliest date on ($3: signals whose own row changed).
RELINK = "SELECT relinked, refreshed FROM tp_capital.relink_events($1::bigint[], $2::timestamptz[], $3::bigint[])"

# RELINK, then the outcomes the relinked signals reached that were not on record
# (signals/outcomes.py), in one statement: what a write runs after storing a signal or a
# follow-up. Answers one row per new outcome (`outcome`), to count.
RELINK_AND_RECORD = """
SELECT outcome FROM tp_capital.relink_and_record($1::bigint[], $2::timestamptz[], $3::bigint[]) AS outcome
"""

# APPLY_TOMBSTONES, then RELINK_AND_RECORD for the channels the write asks for and those a
# tombstone deleted derived rows in, in one statement (db/sql/tp_capital/023): what a write runs
# after its rows have committed, when it moved no message to another date. $1/$2: the messages
# it touched; $3/$4: channels to relink and the date each from; $5: signals whose row changed.
# Answers one row per new outcome (`outcome`), to count.
SETTLE_WRITE = """
SELECT outcome
FROM tp_capital.settle_write($1::bigint[], $2::bigint[], $3::bigint[], $4::timestamptz[], $5::bigint[]) AS outcome
"""

# The same message sent again with another date: move what is stored to the new date
# (db/sql/tp_capital/009). Answers the earliest date it had, or NULL if nothing moved.
REDATE = "SELECT tp_capital.redate_message($1::bigint, $2::bigint, $3::timestamptz)"
