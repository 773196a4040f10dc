-- The local workspace's named queries: it reads what Heron wrote, never writes.

-- name: archived_messages
-- The local conversations as Heron's archive holds them, oldest first, with the final
-- text of Heron's own replies (a streamed reply's archived text is only its start).
SELECT m.channel_id, m.ts, m.thread_ts, m.user_id, m.bot_id, m.subtype, m.text,
       m.edited_at IS NOT NULL AS edited, m.reactions, m.metadata, r.text AS reply_text
FROM slack_messages AS m
LEFT JOIN slack_replies AS r ON r.channel_id = m.channel_id AND r.message_ts = m.ts
WHERE m.channel_id = ANY(%(channels)s) AND m.deleted_at IS NULL
ORDER BY m.message_at, m.ts;

-- name: question_events
-- Where each question stands in the queue (questions are keyed slack:<channel>:<ts>).
SELECT id, dedupe_key, status, retry_count, attempts, error_message
FROM events
WHERE dedupe_key = ANY(%(keys)s);
