-- Where a Web API backfill stands (slack_import_cursors): one row per conversation's
-- history and one per thread, each with the cursor of the next page to fetch.

-- name: start_history
INSERT INTO slack_import_cursors (channel_id, scope)
SELECT channel_id, 'history' FROM unnest(%(channel_ids)s::text[]) AS channel_id
ON CONFLICT (channel_id, scope) DO NOTHING;

-- name: history_cursors
SELECT channel_id, cursor, done FROM slack_import_cursors
WHERE scope = 'history' AND channel_id = ANY(%(channel_ids)s::text[]);

-- name: pending_replies
SELECT channel_id, substr(scope, length('replies:') + 1) AS thread_ts, cursor
FROM slack_import_cursors
WHERE scope LIKE 'replies:%%' AND NOT done AND channel_id = ANY(%(channel_ids)s::text[])
ORDER BY channel_id, scope;

-- name: add_threads
INSERT INTO slack_import_cursors (channel_id, scope)
SELECT %(channel_id)s, 'replies:' || thread_ts FROM unnest(%(thread_ts)s::text[]) AS thread_ts
ON CONFLICT (channel_id, scope) DO NOTHING;

-- name: advance
UPDATE slack_import_cursors
SET cursor = %(cursor)s, done = %(done)s, messages = messages + %(messages)s, updated_at = now()
WHERE channel_id = %(channel_id)s AND scope = %(scope)s;
