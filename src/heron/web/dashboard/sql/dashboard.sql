-- Named queries of the dashboard, in psycopg's %(name)s style. Read-only: the one write
-- the dashboard makes (replay) is the queue's own `replay` query.
--
-- The last hour of events and attempts is found through their primary keys: ids grow with
-- time, so the newest row older than the window, found by walking the primary key back
-- from the newest row, bounds an index range scan. The cost follows the window's volume,
-- never the size of the whole table (which has no index on created_at or finished_at).
-- A row committed a moment out of id order at the window's edge may be left out.

-- name: minutes
-- Per minute over the last %(minutes)s minutes (the current one included): events
-- enqueued, attempts that completed, retried or failed for good. `left_queue` counts the
-- events that stopped being pending or processing, for the depth over time.
WITH bounds AS (
    SELECT date_trunc('minute', now()) - make_interval(mins => %(minutes)s - 1) AS since
), event_floor AS (
    SELECT COALESCE((
        SELECT id FROM events WHERE created_at < (SELECT since FROM bounds)
        ORDER BY id DESC LIMIT 1
    ), 0) AS id
), attempt_floor AS (
    SELECT COALESCE((
        SELECT id FROM event_attempts WHERE finished_at < (SELECT since FROM bounds)
        ORDER BY id DESC LIMIT 1
    ), 0) AS id
), enqueued AS (
    SELECT date_trunc('minute', created_at) AS minute, count(*) AS n
    FROM events
    WHERE id > (SELECT id FROM event_floor) AND created_at >= (SELECT since FROM bounds)
    GROUP BY 1
), ended AS (
    SELECT date_trunc('minute', a.finished_at) AS minute,
           count(*) FILTER (WHERE a.outcome = 'completed') AS completed,
           count(*) FILTER (WHERE a.outcome IN ('retry', 'lease_expired')) AS retried,
           count(*) FILTER (WHERE a.outcome = 'failed') AS failed,
           -- A lease that expired on the last retry failed its event for good. A scalar
           -- subquery, not EXISTS: looked up by id for those rows only, never hashed over
           -- a scan of every failed event.
           count(*) FILTER (
               WHERE a.outcome IN ('completed', 'failed')
                  OR (a.outcome = 'lease_expired' AND (
                      SELECT e.status = 'failed' AND e.attempts = a.attempt
                      FROM events AS e WHERE e.id = a.event_id))
           ) AS left_queue
    FROM event_attempts AS a
    WHERE a.id > (SELECT id FROM attempt_floor) AND a.finished_at >= (SELECT since FROM bounds)
    GROUP BY 1
)
SELECT m.minute,
       COALESCE(q.n, 0) AS enqueued,
       COALESCE(d.completed, 0) AS completed,
       COALESCE(d.retried, 0) AS retried,
       COALESCE(d.failed, 0) AS failed,
       COALESCE(d.left_queue, 0) AS left_queue
FROM generate_series((SELECT since FROM bounds), date_trunc('minute', now()),
                     interval '1 minute') AS m(minute)
LEFT JOIN enqueued AS q ON q.minute = m.minute
LEFT JOIN ended AS d ON d.minute = m.minute
ORDER BY m.minute;

-- name: latency
-- Percentiles (p50, p95, p99, in seconds) over the newest %(sample)s completions of the
-- last %(minutes)s minutes: enqueue to completion, and the completing attempt from claim
-- to completion.
WITH bounds AS (
    SELECT now() - make_interval(mins => %(minutes)s) AS since
), attempt_floor AS (
    SELECT COALESCE((
        SELECT id FROM event_attempts WHERE finished_at < (SELECT since FROM bounds)
        ORDER BY id DESC LIMIT 1
    ), 0) AS id
), done AS (
    -- The event's created_at by a lookup per sampled row: a join would be planned as a
    -- hash join over the whole events table.
    SELECT a.started_at, a.finished_at,
           (SELECT e.created_at FROM events AS e WHERE e.id = a.event_id) AS created_at
    FROM event_attempts AS a
    WHERE a.id > (SELECT id FROM attempt_floor) AND a.finished_at >= (SELECT since FROM bounds)
      AND a.outcome = 'completed'
    ORDER BY a.id DESC
    LIMIT %(sample)s
)
SELECT count(*) AS n,
       percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (
           ORDER BY extract(epoch FROM finished_at - created_at)) AS enqueue_to_completed,
       percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (
           ORDER BY extract(epoch FROM finished_at - started_at)) AS attempt
FROM done;

-- name: attempts_of_events
SELECT * FROM event_attempts WHERE event_id = ANY(%(ids)s::bigint[]) ORDER BY event_id, attempt, id;

-- name: usage_per_day
-- UTC days, newest first, over the last %(days)s days (today included).
SELECT (created_at AT TIME ZONE 'UTC')::date AS day,
       count(*) AS runs,
       count(*) FILTER (WHERE outcome = 'answered') AS answered,
       COALESCE(sum(input_tokens), 0) AS input_tokens,
       COALESCE(sum(output_tokens), 0) AS output_tokens,
       COALESCE(sum(cost_usd), 0) AS cost_usd,
       count(*) FILTER (WHERE cost_usd IS NULL AND requests > 0) AS unpriced_runs
FROM agent_usage
WHERE created_at >= (date_trunc('day', now() AT TIME ZONE 'UTC')
                     - make_interval(days => %(days)s - 1)) AT TIME ZONE 'UTC'
GROUP BY 1
ORDER BY 1 DESC;

-- name: usage_per_user
-- Over the same days, the users who cost the most first; names from the Slack directory.
WITH per_user AS (
    SELECT user_id,
           count(*) AS runs,
           COALESCE(sum(input_tokens), 0) AS input_tokens,
           COALESCE(sum(output_tokens), 0) AS output_tokens,
           COALESCE(sum(cost_usd), 0) AS cost_usd,
           max(created_at) AS last_run_at
    FROM agent_usage
    WHERE created_at >= (date_trunc('day', now() AT TIME ZONE 'UTC')
                         - make_interval(days => %(days)s - 1)) AT TIME ZONE 'UTC'
    GROUP BY user_id
)
SELECT p.*,
       COALESCE(NULLIF(u.display_name, ''), NULLIF(u.real_name, ''), NULLIF(u.name, ''))
           AS user_name
FROM per_user AS p
LEFT JOIN slack_users AS u ON u.id = p.user_id
ORDER BY p.cost_usd DESC, p.runs DESC, p.user_id
LIMIT %(limit)s;

-- name: mcp_servers
SELECT name, transport, ok, tools, error, checked_at FROM mcp_server_status ORDER BY name;
