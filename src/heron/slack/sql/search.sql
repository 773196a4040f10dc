-- Reading the Slack archive as one Slack user (%(user_id)s) sees it.
--
-- Access control is defined once, in `readable`, and heron.slack.search runs every other
-- query of this file behind it (the `readable` text, then the query's): those queries
-- start with `SELECT` or with `, more_ctes AS (...)`. Search's queries also run behind
-- `searchable` (`readable`, then `searchable`, then the query's). A user reads
--   * public channels (not private, not a DM or group DM) that are not deleted, and
--   * the private channels, DMs and group DMs they are a member of, not deleted;
-- never a deleted message or a placeholder (a row with no text yet).
-- `readable` is NOT MATERIALIZED so that each use is inlined and its filters (channel,
-- time: the partition key) reach slack_messages.

-- name: readable
WITH visible AS (
    SELECT c.id FROM slack_channels AS c
    WHERE NOT c.is_deleted
      AND ((NOT c.is_private AND NOT c.is_im AND NOT c.is_mpim)
           OR EXISTS (SELECT 1 FROM slack_channel_members AS cm
                      WHERE cm.channel_id = c.id AND cm.user_id = %(user_id)s))
), readable AS NOT MATERIALIZED (
    SELECT m.channel_id, m.ts, m.message_at, m.thread_ts, m.user_id, m.subtype, m.text,
           m.reply_count, m.search,
           COALESCE(NULLIF(c.name, ''), c.id) AS channel_name,
           COALESCE(NULLIF(u.display_name, ''), NULLIF(u.real_name, ''), NULLIF(u.name, ''),
                    m.raw ->> 'username', m.user_id, m.bot_id, 'unknown') AS author,
           (m.thread_ts IS NULL OR m.thread_ts = m.ts OR m.subtype = 'thread_broadcast')
               AS top_level
    FROM slack_messages AS m
    JOIN visible ON visible.id = m.channel_id
    JOIN slack_channels AS c ON c.id = m.channel_id
    LEFT JOIN slack_users AS u ON u.id = m.user_id
    WHERE m.deleted_at IS NULL AND m.text <> ''
)

-- name: channels
SELECT c.id, COALESCE(NULLIF(c.name, ''), c.id) AS name, c.is_private, c.is_im, c.is_mpim,
       c.is_archived, c.topic, c.purpose,
       (SELECT count(*) FROM slack_channel_members AS cm WHERE cm.channel_id = c.id)
           AS member_count,
       CASE WHEN c.is_im OR c.is_mpim THEN ARRAY(
           SELECT COALESCE(NULLIF(u.display_name, ''), NULLIF(u.real_name, ''),
                           NULLIF(u.name, ''), cm.user_id)
           FROM slack_channel_members AS cm LEFT JOIN slack_users AS u ON u.id = cm.user_id
           WHERE cm.channel_id = c.id ORDER BY 1) END AS members
FROM slack_channels AS c
JOIN visible ON visible.id = c.id
WHERE %(name)s::text IS NULL OR strpos(lower(c.name), lower(%(name)s::text)) > 0
ORDER BY c.is_im, c.is_mpim, c.is_private, lower(c.name), c.id
LIMIT %(limit)s

-- name: channel_by_ref
-- A visible channel by id or by name: an invisible one is as absent as a missing one.
SELECT c.id FROM slack_channels AS c
JOIN visible ON visible.id = c.id
WHERE c.id = %(ref)s OR (c.name <> '' AND lower(c.name) = lower(%(ref)s))
ORDER BY c.id = %(ref)s DESC, c.id
LIMIT 1

-- name: users
-- The directory is the same for everyone (as in Slack): this one runs alone.
SELECT u.id, u.name, u.real_name, u.display_name, u.is_bot, u.deleted, u.tz
FROM slack_users AS u
WHERE %(name)s::text IS NULL OR u.id = upper(%(name)s::text)
   OR strpos(lower(concat_ws(' ', u.name, u.real_name, u.display_name)),
             lower(%(name)s::text)) > 0
ORDER BY u.deleted, u.is_bot,
         lower(COALESCE(NULLIF(u.display_name, ''), NULLIF(u.real_name, ''), u.name)), u.id
LIMIT %(limit)s

-- name: bot_user_id
-- Heron's Slack user, as the latest saved workspace knows it (none: an export only); runs
-- alone.
SELECT bot_user_id FROM slack_workspace WHERE bot_user_id <> ''
ORDER BY updated_at DESC LIMIT 1

-- name: user_by_ref
-- People an id or a name may mean, an exact id first (runs alone).
SELECT u.id, COALESCE(NULLIF(u.display_name, ''), NULLIF(u.real_name, ''),
                      NULLIF(u.name, ''), u.id) AS label
FROM slack_users AS u
WHERE u.id = upper(%(ref)s::text) OR lower(u.name) = lower(%(ref)s::text)
   OR lower(u.display_name) = lower(%(ref)s::text) OR lower(u.real_name) = lower(%(ref)s::text)
ORDER BY u.id = upper(%(ref)s::text) DESC, u.deleted, u.id
LIMIT 5

-- name: history
-- The newest top-level messages of a channel in [since, until); the caller reverses them.
SELECT m.* FROM readable AS m
WHERE m.channel_id = %(channel_id)s AND m.top_level
  AND (%(since)s::timestamptz IS NULL OR m.message_at >= %(since)s::timestamptz)
  AND (%(until)s::timestamptz IS NULL OR m.message_at < %(until)s::timestamptz)
ORDER BY m.message_at DESC, m.ts DESC
LIMIT %(limit)s

-- name: thread
-- A thread in order, found from its parent's ts or from any reply's.
, root AS (
    SELECT COALESCE(
        (SELECT s.thread_ts FROM slack_messages AS s
         WHERE s.channel_id = %(channel_id)s AND s.ts = %(ts)s
           AND s.message_at = to_timestamp(%(ts)s::text::numeric)),
        %(ts)s::text) AS ts
)
SELECT m.* FROM readable AS m, root
WHERE m.channel_id = %(channel_id)s AND (m.ts = root.ts OR m.thread_ts = root.ts)
  AND m.message_at >= to_timestamp(root.ts::numeric)
ORDER BY m.message_at, m.ts
LIMIT %(limit)s

-- name: context
-- A message and its neighbours at its own level: the channel's top-level messages, or
-- the rest of its thread. Nothing when the message is not readable.
, target AS MATERIALIZED (
    SELECT m.* FROM readable AS m
    WHERE m.channel_id = %(channel_id)s AND m.ts = %(ts)s
      AND m.message_at = to_timestamp(%(ts)s::text::numeric)
), neighbours AS NOT MATERIALIZED (
    SELECT m.* FROM readable AS m
    WHERE m.channel_id = %(channel_id)s AND m.ts <> %(ts)s
      AND CASE WHEN (SELECT t.top_level FROM target AS t) THEN m.top_level
               ELSE m.thread_ts = (SELECT t.thread_ts FROM target AS t) END
)
SELECT * FROM (
    SELECT * FROM target
    UNION ALL
    (SELECT n.* FROM neighbours AS n
     WHERE (n.message_at, n.ts) < (SELECT t.message_at, t.ts FROM target AS t)
     ORDER BY n.message_at DESC, n.ts DESC LIMIT %(before)s)
    UNION ALL
    (SELECT n.* FROM neighbours AS n
     WHERE (n.message_at, n.ts) > (SELECT t.message_at, t.ts FROM target AS t)
     ORDER BY n.message_at, n.ts LIMIT %(after)s)
) AS around
ORDER BY message_at, ts

-- name: with_user
-- Messages by %(other_id)s, and everything in the DMs between the two, newest first.
SELECT m.* FROM readable AS m
WHERE (m.user_id = %(other_id)s
       OR m.channel_id IN (
           SELECT mine.channel_id
           FROM slack_channel_members AS mine
           JOIN slack_channel_members AS theirs ON theirs.channel_id = mine.channel_id
           JOIN slack_channels AS c ON c.id = mine.channel_id AND c.is_im
           WHERE mine.user_id = %(user_id)s AND theirs.user_id = %(other_id)s))
  AND (%(since)s::timestamptz IS NULL OR m.message_at >= %(since)s::timestamptz)
  AND (%(until)s::timestamptz IS NULL OR m.message_at < %(until)s::timestamptz)
ORDER BY m.message_at DESC, m.ts DESC
LIMIT %(limit)s

-- name: searchable
-- What search ranks: `readable`, less Heron's own messages and the questions put to it
-- (the messages that mention it) when Heron's user id is given: an answer made of its
-- earlier answers and the questions asked of it only has Heron quote itself. The one
-- definition of that rule, for full text and vectors alike; no id leaves nothing out.
-- NOT LIKE rather than strpos() = 0: the planner takes NOT LIKE to pass nearly every
-- message, as it does, and strpos() = 0 to pass nearly none.
, searchable AS NOT MATERIALIZED (
    SELECT m.* FROM readable AS m
    WHERE %(bot_user_id)s::text IS NULL
       OR (m.user_id IS DISTINCT FROM %(bot_user_id)s::text
           AND m.text NOT LIKE '%%<@' || %(bot_user_id)s::text || '>%%'
           AND m.text NOT LIKE '%%<@' || %(bot_user_id)s::text || '|%%')
)

-- name: text_candidates
-- Ranked by all of the query's words (a question's words rarely all appear in the
-- message that answers it), best first, within the filters. The candidates to rank are
-- only the messages with one of its uncommon words: a word in more than
-- `common_messages` messages (say "deploy" or "use" in a large archive) would have a
-- large part of the archive ranked for every question; it still counts in the rank of
-- the candidates. When every word is common, the messages with both of the two least
-- common are the candidates (a single word chooses however common). How
-- many messages have a word comes from ANALYZE (most_common_elems of `search` times the
-- rows, for the partitioned parent or the plain table); a word it does not list is
-- rarer than every word it does. Before the first ANALYZE there are none and every word
-- chooses candidates, as in an archive too small for any word to be common. The
-- tsqueries are scalar subqueries so that the GIN index on `search` applies.
, words AS MATERIALIZED (
    SELECT l.word, s.freqs[array_position(s.elems, l.word)] * s.messages AS messages
    FROM unnest(tsvector_to_array(to_tsvector('english', %(query)s))) AS l(word)
    LEFT JOIN (
        -- most_common_elem_freqs ends with a few summary numbers past the lexemes'
        SELECT st.most_common_elems::text::text[] AS elems,
               st.most_common_elem_freqs AS freqs, c.reltuples AS messages
        FROM pg_class AS c
        JOIN pg_namespace AS n ON n.oid = c.relnamespace
        JOIN pg_stats AS st ON st.schemaname = n.nspname AND st.tablename = c.relname
        WHERE c.oid = 'slack_messages'::regclass AND st.attname = 'search'
        ORDER BY st.inherited DESC
        LIMIT 1
    ) AS s ON true
), query AS MATERIALIZED (
    SELECT to_tsquery('simple', coalesce(string_agg(quote_literal(w.word), ' | '), '')) AS q,
           CASE WHEN bool_or(w.uncommon) OR count(*) < 2 THEN
                    to_tsquery('simple', coalesce(string_agg(quote_literal(w.word), ' | ')
                                                  FILTER (WHERE w.uncommon OR w.n = 1), ''))
                ELSE to_tsquery('simple', string_agg(quote_literal(w.word), ' & ')
                                          FILTER (WHERE w.n <= 2))
           END AS candidates
    FROM (
        -- NULLS FIRST: n = 1 is uncommon whenever any word is, else the least common
        SELECT wd.word, coalesce(wd.messages <= %(common_messages)s::float8, true) AS uncommon,
               row_number() OVER (ORDER BY wd.messages NULLS FIRST, wd.word) AS n
        FROM words AS wd
    ) AS w
)
SELECT m.*, ts_rank_cd(m.search, (SELECT q FROM query)) AS rank
FROM searchable AS m
WHERE m.search @@ (SELECT candidates FROM query)
  AND (%(channel_id)s::text IS NULL OR m.channel_id = %(channel_id)s::text)
  AND (%(author_id)s::text IS NULL OR m.user_id = %(author_id)s::text)
  AND (%(since)s::timestamptz IS NULL OR m.message_at >= %(since)s::timestamptz)
  AND (%(until)s::timestamptz IS NULL OR m.message_at < %(until)s::timestamptz)
  AND NOT (m.channel_id = %(exclude_channel)s AND m.ts = %(exclude_ts)s)
ORDER BY rank DESC, m.message_at DESC
LIMIT %(limit)s

-- name: vector_nearest
-- The nearest messages by cosine distance, through the model's HNSW index: the model's
-- name and the dimension are formatted in as literals so that its partial index applies.
-- Access and time are filters on the index scan itself (pgvector >= 0.8 goes on scanning
-- while they reject); deleted messages drop out in the join. Heron's messages are left out
-- on the scan too (through `searchable`), else its answers, close to the questions they
-- answered, could fill the nearest and leave nothing after the join. That check is one
-- lookup per candidate the scan visits (about a hundred): OFFSET 0 keeps the planner,
-- which expects the scan to visit half the table, from hashing every searchable message
-- first instead (200 ms a search at 100k messages).
, nearest AS MATERIALIZED (
    SELECT e.channel_id, e.ts,
           e.embedding::vector({dims}) <=> %(vector)s::vector({dims}) AS distance
    FROM slack_message_embeddings AS e
    WHERE e.model = {model}
      AND e.channel_id IN (SELECT id FROM visible)
      AND (%(since)s::timestamptz IS NULL
           OR to_timestamp(e.ts::numeric) >= %(since)s::timestamptz)
      AND (%(until)s::timestamptz IS NULL
           OR to_timestamp(e.ts::numeric) < %(until)s::timestamptz)
      AND (%(bot_user_id)s::text IS NULL
           OR EXISTS (SELECT 1 FROM searchable AS s
                      WHERE s.channel_id = e.channel_id AND s.ts = e.ts
                        AND s.message_at = to_timestamp(e.ts::numeric)
                      OFFSET 0))
    ORDER BY e.embedding::vector({dims}) <=> %(vector)s::vector({dims})
    LIMIT %(nearest)s
)
SELECT m.*, 1 - n.distance AS rank
FROM nearest AS n
JOIN searchable AS m ON m.channel_id = n.channel_id AND m.ts = n.ts
                  AND m.message_at = to_timestamp(n.ts::numeric)
ORDER BY n.distance
LIMIT %(limit)s

-- name: vector_exact
-- Nearest messages within a channel or by an author: few enough to measure them all.
SELECT m.*, 1 - (e.embedding::vector({dims}) <=> %(vector)s::vector({dims})) AS rank
FROM searchable AS m
JOIN slack_message_embeddings AS e
  ON e.channel_id = m.channel_id AND e.ts = m.ts AND e.model = {model}
WHERE (%(channel_id)s::text IS NULL OR m.channel_id = %(channel_id)s::text)
  AND (%(author_id)s::text IS NULL OR m.user_id = %(author_id)s::text)
  AND (%(since)s::timestamptz IS NULL OR m.message_at >= %(since)s::timestamptz)
  AND (%(until)s::timestamptz IS NULL OR m.message_at < %(until)s::timestamptz)
ORDER BY e.embedding::vector({dims}) <=> %(vector)s::vector({dims})
LIMIT %(limit)s

-- Embeddings (heron.slack.embeddings); these run alone, without `readable`.

-- name: embed_lock
-- One embedder per model at a time. `mark`: a later pass needs to look only at messages
-- changed after it; the margin covers transactions that started before and commit after
-- this pass (updated_at is their start time).
SELECT pg_try_advisory_xact_lock(hashtext('heron slack_message_embeddings ' || %(model)s))
           AS locked,
       now() - INTERVAL '15 minutes' AS mark

-- name: prune_embeddings
-- A deleted message's vector goes with its text. Every write to a message sets its
-- updated_at, so changed_since (NULL: look at everything) bounds the scan.
DELETE FROM slack_message_embeddings AS e
USING slack_messages AS m
WHERE m.channel_id = e.channel_id AND m.ts = e.ts
  AND m.message_at = to_timestamp(e.ts::numeric)
  AND (m.deleted_at IS NOT NULL OR m.text = '')
  AND (%(changed_since)s::timestamptz IS NULL OR m.updated_at > %(changed_since)s::timestamptz)

-- name: pending_embeddings
-- Messages without a vector from this model, or whose text changed since, newest first.
SELECT m.channel_id, m.ts, m.text
FROM slack_messages AS m
LEFT JOIN slack_message_embeddings AS e
       ON e.channel_id = m.channel_id AND e.ts = m.ts AND e.model = %(model)s
WHERE m.deleted_at IS NULL AND m.text <> ''
  AND (%(changed_since)s::timestamptz IS NULL OR m.updated_at > %(changed_since)s::timestamptz)
  AND (e.ts IS NULL OR (m.updated_at > e.embedded_at AND e.text_hash <> md5(m.text)))
ORDER BY m.message_at DESC
LIMIT %(batch)s

-- name: count_pending_embeddings
-- How many messages pending_embeddings would give over the whole archive: keep the two
-- in step (tests/integration/test_slack_search.py embeds exactly this many).
SELECT count(*) AS n
FROM slack_messages AS m
LEFT JOIN slack_message_embeddings AS e
       ON e.channel_id = m.channel_id AND e.ts = m.ts AND e.model = %(model)s
WHERE m.deleted_at IS NULL AND m.text <> ''
  AND (e.ts IS NULL OR (m.updated_at > e.embedded_at AND e.text_hash <> md5(m.text)))

-- name: save_embeddings
INSERT INTO slack_message_embeddings AS e (channel_id, ts, model, embedding, text_hash)
SELECT v.channel_id, v.ts, %(model)s, v.embedding::vector, v.text_hash
FROM unnest(%(channel_ids)s::text[], %(tss)s::text[], %(embeddings)s::text[],
            %(text_hashes)s::text[]) AS v(channel_id, ts, embedding, text_hash)
ON CONFLICT (channel_id, ts, model) DO UPDATE SET
    embedding = EXCLUDED.embedding, text_hash = EXCLUDED.text_hash, embedded_at = now()

-- name: vector_version
SELECT extversion FROM pg_extension WHERE extname = 'vector'
