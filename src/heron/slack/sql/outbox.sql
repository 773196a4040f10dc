-- The reply outbox's named queries (table slack_replies, migration 003).

-- name: lock
SELECT pg_advisory_lock(%(namespace)s, %(key)s);

-- name: unlock
SELECT pg_advisory_unlock(%(namespace)s, %(key)s);

-- name: store
INSERT INTO slack_replies (event_id, part, channel_id, thread_ts, text)
SELECT %(event_id)s, ord - 1, %(channel_id)s, %(thread_ts)s, part_text
FROM unnest(%(texts)s::text[]) WITH ORDINALITY AS u(part_text, ord)
ON CONFLICT (event_id, part) DO NOTHING;

-- name: parts
SELECT part, channel_id, thread_ts, text, message_ts, post_attempts
FROM slack_replies WHERE event_id = %(event_id)s ORDER BY part;

-- name: attempt
UPDATE slack_replies SET post_attempts = post_attempts + 1
WHERE event_id = %(event_id)s AND part = %(part)s;

-- name: posted
UPDATE slack_replies SET message_ts = %(message_ts)s, posted_at = now()
WHERE event_id = %(event_id)s AND part = %(part)s AND message_ts IS NULL;
