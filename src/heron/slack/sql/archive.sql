-- The Slack archive's named queries. Every lookup of a message names message_at
-- (= to_timestamp(ts)) too, so that PostgreSQL reads one partition, not all of them.

-- name: receipt
INSERT INTO slack_event_receipts (event_id, event_type) VALUES (%(event_id)s, %(event_type)s)
ON CONFLICT (event_id) DO NOTHING
RETURNING event_id;

-- name: take_message
-- The ack path's common case in one statement, so one round trip and one transaction
-- where the general path (receipt, then each action) takes five: a message event whose
-- plan is its channel's flags and the message, and no question. The receipt gates both
-- writes, so a redelivery changes nothing. The two inserts are save_channel (with only the
-- flags given) and save_message below: keep them in step (tests/integration/
-- test_slack_archive.py runs edits, deletes and placeholders through this path).
WITH receipt AS (
    INSERT INTO slack_event_receipts (event_id, event_type) VALUES (%(event_id)s, %(event_type)s)
    ON CONFLICT (event_id) DO NOTHING
    RETURNING event_id
), channel AS (
    INSERT INTO slack_channels AS c (id, is_private, is_im, is_mpim)
    SELECT %(channel_id)s, %(is_private)s, %(is_im)s, %(is_mpim)s FROM receipt
    WHERE NOT EXISTS (
        SELECT 1 FROM slack_channels AS s
        WHERE s.id = %(channel_id)s
          AND (s.is_private, s.is_im, s.is_mpim) = (%(is_private)s, %(is_im)s, %(is_mpim)s))
    ON CONFLICT (id) DO UPDATE SET
        is_private = EXCLUDED.is_private, is_im = EXCLUDED.is_im, is_mpim = EXCLUDED.is_mpim,
        updated_at = now()
    WHERE (c.is_private, c.is_im, c.is_mpim)
          IS DISTINCT FROM (EXCLUDED.is_private, EXCLUDED.is_im, EXCLUDED.is_mpim)
), message AS (
    INSERT INTO slack_messages AS m
        (channel_id, ts, message_at, thread_ts, user_id, bot_id, subtype, text, previous_texts,
         edited_at, reply_count, files, reactions, metadata, raw)
    SELECT
        %(channel_id)s, %(ts)s, to_timestamp(%(ts)s::text::numeric), %(thread_ts)s, %(user_id)s,
        %(bot_id)s, %(subtype)s, %(text)s,
        CASE WHEN %(previous_text)s::text <> %(text)s THEN ARRAY[%(previous_text)s::text]
             ELSE '{}'::text[] END,
        to_timestamp(%(edited_ts)s::text::numeric), %(reply_count)s, %(files)s, %(reactions)s,
        %(metadata)s, %(raw)s
    FROM receipt
    ON CONFLICT (channel_id, ts, message_at) DO UPDATE SET
        thread_ts = COALESCE(EXCLUDED.thread_ts, m.thread_ts),
        user_id = COALESCE(m.user_id, EXCLUDED.user_id),
        bot_id = COALESCE(m.bot_id, EXCLUDED.bot_id),
        subtype = COALESCE(m.subtype, EXCLUDED.subtype),
        text = CASE WHEN COALESCE(EXCLUDED.edited_at, '-infinity') >= COALESCE(m.edited_at, '-infinity')
                    THEN EXCLUDED.text ELSE m.text END,
        previous_texts = CASE
            WHEN COALESCE(EXCLUDED.edited_at, '-infinity') >= COALESCE(m.edited_at, '-infinity')
                 AND EXCLUDED.text <> m.text AND m.text <> ''
            THEN m.previous_texts || m.text
            WHEN m.text = '' AND m.previous_texts = '{}' THEN EXCLUDED.previous_texts
            ELSE m.previous_texts END,
        edited_at = GREATEST(m.edited_at, EXCLUDED.edited_at),
        reply_count = GREATEST(m.reply_count, EXCLUDED.reply_count),
        files = CASE WHEN m.files = '[]'::jsonb THEN EXCLUDED.files ELSE m.files END,
        reactions = CASE WHEN m.reactions = '{}'::jsonb THEN EXCLUDED.reactions ELSE m.reactions END,
        metadata = COALESCE(EXCLUDED.metadata, m.metadata),
        raw = CASE WHEN COALESCE(EXCLUDED.edited_at, '-infinity') >= COALESCE(m.edited_at, '-infinity')
                   THEN EXCLUDED.raw ELSE m.raw END,
        updated_at = now()
    WHERE m.deleted_at IS NULL
)
SELECT event_id FROM receipt;

-- name: save_message
-- Insert, or update what changed. An older version (an app_mention redelivered after an
-- edit) never overwrites a newer one, and a deleted message is never brought back.
INSERT INTO slack_messages AS m
    (channel_id, ts, message_at, thread_ts, user_id, bot_id, subtype, text, previous_texts,
     edited_at, reply_count, files, reactions, metadata, raw)
VALUES (
    %(channel_id)s, %(ts)s, to_timestamp(%(ts)s::text::numeric), %(thread_ts)s, %(user_id)s,
    %(bot_id)s, %(subtype)s, %(text)s,
    CASE WHEN %(previous_text)s::text <> %(text)s THEN ARRAY[%(previous_text)s::text]
         ELSE '{}'::text[] END,
    to_timestamp(%(edited_ts)s::text::numeric), %(reply_count)s, %(files)s, %(reactions)s,
    %(metadata)s, %(raw)s)
ON CONFLICT (channel_id, ts, message_at) DO UPDATE SET
    thread_ts = COALESCE(EXCLUDED.thread_ts, m.thread_ts),
    user_id = COALESCE(m.user_id, EXCLUDED.user_id),
    bot_id = COALESCE(m.bot_id, EXCLUDED.bot_id),
    subtype = COALESCE(m.subtype, EXCLUDED.subtype),
    text = CASE WHEN COALESCE(EXCLUDED.edited_at, '-infinity') >= COALESCE(m.edited_at, '-infinity')
                THEN EXCLUDED.text ELSE m.text END,
    previous_texts = CASE
        WHEN COALESCE(EXCLUDED.edited_at, '-infinity') >= COALESCE(m.edited_at, '-infinity')
             AND EXCLUDED.text <> m.text AND m.text <> ''
        THEN m.previous_texts || m.text
        -- a placeholder (a reaction came first) learns the edit's previous text
        WHEN m.text = '' AND m.previous_texts = '{}' THEN EXCLUDED.previous_texts
        ELSE m.previous_texts END,
    edited_at = GREATEST(m.edited_at, EXCLUDED.edited_at),
    reply_count = GREATEST(m.reply_count, EXCLUDED.reply_count),
    files = CASE WHEN m.files = '[]'::jsonb THEN EXCLUDED.files ELSE m.files END,
    reactions = CASE WHEN m.reactions = '{}'::jsonb THEN EXCLUDED.reactions ELSE m.reactions END,
    metadata = COALESCE(EXCLUDED.metadata, m.metadata),
    raw = CASE WHEN COALESCE(EXCLUDED.edited_at, '-infinity') >= COALESCE(m.edited_at, '-infinity')
               THEN EXCLUDED.raw ELSE m.raw END,
    updated_at = now()
WHERE m.deleted_at IS NULL;

-- name: delete_message
-- Soft delete: the row stays (so a late redelivery cannot resurrect it) without content.
INSERT INTO slack_messages AS m (channel_id, ts, message_at, deleted_at)
VALUES (%(channel_id)s, %(ts)s, to_timestamp(%(ts)s::text::numeric), now())
ON CONFLICT (channel_id, ts, message_at) DO UPDATE SET
    deleted_at = COALESCE(m.deleted_at, now()),
    text = '', previous_texts = '{}', files = '[]', metadata = NULL, raw = '{}',
    updated_at = now();

-- name: react_add
-- Events race: a reaction can be taken in before its message. Then the row starts as a
-- placeholder (raw '{}', no text) that the message fills in when it arrives.
INSERT INTO slack_messages AS m (channel_id, ts, message_at, reactions)
VALUES (%(channel_id)s, %(ts)s, to_timestamp(%(ts)s::text::numeric),
        jsonb_build_object(%(name)s::text, jsonb_build_array(%(user_id)s::text)))
ON CONFLICT (channel_id, ts, message_at) DO UPDATE SET
    reactions = jsonb_set(m.reactions, ARRAY[%(name)s::text],
        (COALESCE(m.reactions -> %(name)s::text, '[]') - %(user_id)s::text)
        || to_jsonb(%(user_id)s::text)),
    updated_at = now()
WHERE m.deleted_at IS NULL;

-- name: react_remove
UPDATE slack_messages SET
    reactions = CASE
        WHEN jsonb_array_length(COALESCE(reactions -> %(name)s::text, '[]') - %(user_id)s::text) = 0
        THEN reactions - %(name)s::text
        ELSE jsonb_set(reactions, ARRAY[%(name)s::text],
                       (reactions -> %(name)s::text) - %(user_id)s::text)
    END,
    updated_at = now()
WHERE channel_id = %(channel_id)s AND ts = %(ts)s
  AND message_at = to_timestamp(%(ts)s::text::numeric) AND deleted_at IS NULL;

-- name: save_channel
-- NULL parameters keep what is stored; a no-op (the common case: a message in a known
-- channel) writes nothing and locks nothing. ON CONFLICT DO UPDATE locks the row even when
-- its WHERE skips the update, and that lock would last until the ack's commit, making
-- every message of a busy channel wait for the one before it: so a channel that already
-- reads as given is not even proposed for insertion.
INSERT INTO slack_channels AS c
    (id, name, is_private, is_im, is_mpim, is_archived, is_deleted, topic, purpose,
     created_at, raw)
SELECT
    %(id)s, COALESCE(%(name)s::text, ''), COALESCE(%(is_private)s::boolean, false),
    COALESCE(%(is_im)s::boolean, false), COALESCE(%(is_mpim)s::boolean, false), COALESCE(%(is_archived)s::boolean, false),
    COALESCE(%(is_deleted)s::boolean, false), COALESCE(%(topic)s::text, ''), COALESCE(%(purpose)s::text, ''),
    to_timestamp(%(created_ts)s::text::numeric), COALESCE(%(raw)s::jsonb, '{}')
WHERE NOT EXISTS (
    SELECT 1 FROM slack_channels AS s
    WHERE s.id = %(id)s
      AND (s.name, s.is_private, s.is_im, s.is_mpim, s.is_archived, s.is_deleted, s.topic,
           s.purpose, s.raw)
          IS NOT DISTINCT FROM
          (COALESCE(%(name)s::text, s.name), COALESCE(%(is_private)s::boolean, s.is_private),
           COALESCE(%(is_im)s::boolean, s.is_im), COALESCE(%(is_mpim)s::boolean, s.is_mpim),
           COALESCE(%(is_archived)s::boolean, s.is_archived), COALESCE(%(is_deleted)s::boolean, s.is_deleted),
           COALESCE(%(topic)s::text, s.topic), COALESCE(%(purpose)s::text, s.purpose), COALESCE(%(raw)s::jsonb, s.raw)))
ON CONFLICT (id) DO UPDATE SET
    name = COALESCE(%(name)s::text, c.name),
    is_private = COALESCE(%(is_private)s::boolean, c.is_private),
    is_im = COALESCE(%(is_im)s::boolean, c.is_im),
    is_mpim = COALESCE(%(is_mpim)s::boolean, c.is_mpim),
    is_archived = COALESCE(%(is_archived)s::boolean, c.is_archived),
    is_deleted = COALESCE(%(is_deleted)s::boolean, c.is_deleted),
    topic = COALESCE(%(topic)s::text, c.topic),
    purpose = COALESCE(%(purpose)s::text, c.purpose),
    created_at = COALESCE(c.created_at, EXCLUDED.created_at),
    raw = COALESCE(%(raw)s::jsonb, c.raw),
    updated_at = now()
WHERE (c.name, c.is_private, c.is_im, c.is_mpim, c.is_archived, c.is_deleted, c.topic,
       c.purpose, c.raw)
      IS DISTINCT FROM
      (COALESCE(%(name)s::text, c.name), COALESCE(%(is_private)s::boolean, c.is_private),
       COALESCE(%(is_im)s::boolean, c.is_im), COALESCE(%(is_mpim)s::boolean, c.is_mpim),
       COALESCE(%(is_archived)s::boolean, c.is_archived), COALESCE(%(is_deleted)s::boolean, c.is_deleted),
       COALESCE(%(topic)s::text, c.topic), COALESCE(%(purpose)s::text, c.purpose), COALESCE(%(raw)s::jsonb, c.raw));

-- name: join
INSERT INTO slack_channel_members (channel_id, user_id) VALUES (%(channel_id)s, %(user_id)s)
ON CONFLICT DO NOTHING;

-- name: leave
DELETE FROM slack_channel_members WHERE channel_id = %(channel_id)s AND user_id = %(user_id)s;

-- name: set_members_remove
DELETE FROM slack_channel_members
WHERE channel_id = %(channel_id)s AND NOT user_id = ANY(%(user_ids)s::text[]);

-- name: set_members_add
INSERT INTO slack_channel_members (channel_id, user_id)
SELECT %(channel_id)s, u FROM unnest(%(user_ids)s::text[]) AS u
ON CONFLICT DO NOTHING;

-- name: file_text
-- A small text file's content, downloaded by a worker, kept with the file's metadata.
UPDATE slack_messages SET
    files = (SELECT jsonb_agg(CASE WHEN f ->> 'id' = %(file_id)s
                                   THEN f || jsonb_build_object('content', %(content)s::text)
                                   ELSE f END)
             FROM jsonb_array_elements(files) AS f),
    updated_at = now()
WHERE channel_id = %(channel_id)s AND ts = %(ts)s
  AND message_at = to_timestamp(%(ts)s::text::numeric) AND deleted_at IS NULL
  AND jsonb_array_length(files) > 0;

-- name: save_user
INSERT INTO slack_users AS u
    (id, team_id, name, real_name, display_name, tz, is_bot, deleted, raw)
VALUES (%(id)s, %(team_id)s, %(name)s, %(real_name)s, %(display_name)s, %(tz)s, %(is_bot)s,
        %(deleted)s, %(raw)s)
ON CONFLICT (id) DO UPDATE SET
    team_id = EXCLUDED.team_id, name = EXCLUDED.name, real_name = EXCLUDED.real_name,
    display_name = EXCLUDED.display_name, tz = EXCLUDED.tz, is_bot = EXCLUDED.is_bot,
    deleted = EXCLUDED.deleted, raw = EXCLUDED.raw, updated_at = now()
WHERE u.raw IS DISTINCT FROM EXCLUDED.raw;

-- name: record_error
INSERT INTO slack_ingest_errors (event_id, event_type, error, raw)
VALUES (%(event_id)s, %(event_type)s, %(error)s, %(raw)s);

-- name: storage_mode
SELECT heron_slack_storage_mode() AS mode;

-- name: try_lock_analyze
-- One process at a time refreshes the archive's statistics (Partitions.analyze).
SELECT pg_try_advisory_lock(hashtext('heron analyze slack_messages')) AS locked

-- name: unlock_analyze
SELECT pg_advisory_unlock(hashtext('heron analyze slack_messages'))

-- name: archive_rows
-- The archive's rows now (its partitions' or chunks' live rows, which the server counts as
-- they are written) and at the last ANALYZE of the whole (the parent's reltuples; -1 when
-- never analyzed).
SELECT coalesce(sum(s.n_live_tup), 0)::bigint AS live, p.reltuples::bigint AS analyzed
FROM pg_class AS p
LEFT JOIN pg_inherits AS i ON i.inhparent = p.oid
LEFT JOIN pg_stat_user_tables AS s ON s.relid = i.inhrelid
WHERE p.oid = 'slack_messages'::regclass
GROUP BY p.reltuples

-- name: ensure_partitions
SELECT heron_slack_ensure_partitions(%(from_at)s, %(to_at)s) AS created;

-- name: staging
CREATE TEMP TABLE IF NOT EXISTS slack_import_staging (
    channel_id TEXT, ts TEXT, thread_ts TEXT, user_id TEXT, bot_id TEXT, subtype TEXT,
    text TEXT, edited_ts TEXT, reply_count INTEGER, files JSONB, reactions JSONB,
    metadata JSONB, raw JSONB
) ON COMMIT DELETE ROWS;

-- name: copy_staging
COPY slack_import_staging (channel_id, ts, thread_ts, user_id, bot_id, subtype, text,
                           edited_ts, reply_count, files, reactions, metadata, raw)
FROM STDIN;

-- name: import_staged
-- Imports never overwrite: what the live archive has (edits, deletes) wins. DO NOTHING
-- also skips a message repeated within the batch, so no sort is needed.
INSERT INTO slack_messages
    (channel_id, ts, message_at, thread_ts, user_id, bot_id, subtype, text, edited_at,
     reply_count, files, reactions, metadata, raw)
SELECT
    channel_id, ts, to_timestamp(ts::numeric), thread_ts, user_id, bot_id, subtype, text,
    to_timestamp(edited_ts::numeric), reply_count, files, reactions, metadata, raw
FROM slack_import_staging
ON CONFLICT (channel_id, ts, message_at) DO NOTHING;

-- name: save_workspace
INSERT INTO slack_workspace (team_id, name, url, bot_user_id)
VALUES (%(team_id)s, %(name)s, %(url)s, %(bot_user_id)s)
ON CONFLICT (team_id) DO UPDATE SET
    name = EXCLUDED.name, url = EXCLUDED.url, bot_user_id = EXCLUDED.bot_user_id,
    updated_at = now();

-- name: workspace_url
SELECT url FROM slack_workspace WHERE url <> '' ORDER BY updated_at DESC LIMIT 1;
