-- Thread memory from the archive (newest first; the caller cuts to its token budget).

-- name: thread
SELECT m.ts, m.text, m.message_at, m.user_id, m.bot_id,
       COALESCE(NULLIF(u.display_name, ''), NULLIF(u.real_name, ''), u.name, m.user_id,
                'a bot') AS author
FROM slack_messages AS m
LEFT JOIN slack_users AS u ON u.id = m.user_id
WHERE m.channel_id = %(channel_id)s
  AND (m.thread_ts = %(thread_ts)s OR m.ts = %(thread_ts)s)
  AND m.message_at >= to_timestamp(%(thread_ts)s::text::numeric)
  AND m.deleted_at IS NULL AND m.text <> '' AND m.ts <> %(exclude_ts)s
ORDER BY m.message_at DESC, m.ts DESC
LIMIT %(limit)s;

-- name: recent
-- Recent top-level messages of a conversation (a DM's running context).
SELECT m.ts, m.text, m.message_at, m.user_id, m.bot_id,
       COALESCE(NULLIF(u.display_name, ''), NULLIF(u.real_name, ''), u.name, m.user_id,
                'a bot') AS author
FROM slack_messages AS m
LEFT JOIN slack_users AS u ON u.id = m.user_id
WHERE m.channel_id = %(channel_id)s
  AND m.message_at >= now() - make_interval(hours => %(hours)s)
  AND m.deleted_at IS NULL AND m.text <> '' AND m.ts <> %(exclude_ts)s
  AND (m.thread_ts IS NULL OR m.thread_ts = m.ts)
ORDER BY m.message_at DESC, m.ts DESC
LIMIT %(limit)s;

-- name: has_message
SELECT 1 FROM slack_messages
WHERE channel_id = %(channel_id)s AND ts = %(ts)s
  AND message_at = to_timestamp(%(ts)s::text::numeric);
