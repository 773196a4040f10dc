-- The reply outbox's named queries (table slack_replies, migrations 003 and 004).

-- name: lock
SELECT pg_advisory_lock(%(namespace)s, %(key)s);

-- name: unlock
SELECT pg_advisory_unlock(%(namespace)s, %(key)s);

-- name: store
-- The answer's parts. A streamed part 0 (opened before the answer was known) takes
-- the final text; anything already complete keeps what was delivered.
INSERT INTO slack_replies (event_id, part, channel_id, thread_ts, text)
SELECT %(event_id)s, ord - 1, %(channel_id)s, %(thread_ts)s, part_text
FROM unnest(%(texts)s::text[]) WITH ORDINALITY AS u(part_text, ord)
ON CONFLICT (event_id, part) DO UPDATE SET text = EXCLUDED.text
WHERE NOT slack_replies.complete AND slack_replies.text = '';

-- name: parts
SELECT part, channel_id, thread_ts, text, message_ts, post_attempts, streaming, complete
FROM slack_replies WHERE event_id = %(event_id)s ORDER BY part;

-- name: has_answer
SELECT 1 FROM slack_replies WHERE event_id = %(event_id)s AND text <> '' LIMIT 1;

-- name: open_stream
-- A row back only when this call made it: otherwise an earlier attempt got this far.
INSERT INTO slack_replies (event_id, part, channel_id, thread_ts, text, streaming, post_attempts)
VALUES (%(event_id)s, 0, %(channel_id)s, %(thread_ts)s, '', true, 1)
ON CONFLICT (event_id, part) DO NOTHING
RETURNING part;

-- name: recorded
-- Which of these messages are some event's recorded reply.
SELECT message_ts FROM slack_replies
WHERE channel_id = %(channel_id)s AND message_ts = ANY(%(message_ts)s::text[]);

-- name: attempt
UPDATE slack_replies SET post_attempts = post_attempts + 1
WHERE event_id = %(event_id)s AND part = %(part)s;

-- name: started
UPDATE slack_replies SET message_ts = %(message_ts)s
WHERE event_id = %(event_id)s AND part = %(part)s AND message_ts IS NULL;

-- name: posted
UPDATE slack_replies SET message_ts = %(message_ts)s, posted_at = now(), complete = true
WHERE event_id = %(event_id)s AND part = %(part)s AND NOT complete;
