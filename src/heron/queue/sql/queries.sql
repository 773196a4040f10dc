-- Named queries of the event queue, in psycopg's %(name)s style.
-- Held events are always looked up by `e.id = ANY(%(ids)s)`, so that even a generic
-- plan finds them by id and never walks an index of recent leases.
-- Every write to a claimed event is fenced: it must name the holder's lease_id and the
-- lease must still be running (visibility_timeout >= now()), or it changes nothing.
-- An attempt is written to event_attempts once, when it ends, by the statement that ends
-- it; while it runs, the event's own row (claimed_by, claimed_at, lease_id) shows it.

-- name: enqueue
WITH inserted AS (
    INSERT INTO events (event_type, payload, dedupe_key, run_after)
    VALUES (%(event_type)s, %(payload)s, %(dedupe_key)s,
            now() + make_interval(secs => %(delay_seconds)s))
    ON CONFLICT (dedupe_key) WHERE dedupe_key IS NOT NULL DO NOTHING
    RETURNING *
)
SELECT *, true AS created FROM inserted;

-- name: event_by_dedupe_key
SELECT *, false AS created FROM events WHERE dedupe_key = %(dedupe_key)s;

-- name: enqueue_many
INSERT INTO events (event_type, payload)
SELECT %(event_type)s, p FROM unnest(%(payloads)s::jsonb[]) AS p;

-- name: complete_and_claim
-- One transaction (one WAL flush) completes the events a worker finished and claims up to
-- %(limit)s more for its free slots: the pool's hot path. With empty arrays it only
-- claims; with limit 0 it only completes.
WITH held AS (
    SELECT * FROM unnest(%(ids)s::bigint[], %(lease_ids)s::uuid[]) AS h(id, lease_id)
), done AS (
    UPDATE events AS e
    SET status = 'completed', completed_at = now(), updated_at = now(), visibility_timeout = NULL
    FROM held
    WHERE e.id = ANY(%(ids)s::bigint[]) AND e.id = held.id AND e.lease_id = held.lease_id
      AND e.status = 'processing' AND e.visibility_timeout >= now()
    RETURNING e.id, e.attempts, e.claimed_by, e.lease_id, e.claimed_at
), done_recorded AS (
    INSERT INTO event_attempts
        (event_id, attempt, worker_id, lease_id, started_at, finished_at, outcome)
    SELECT id, attempts, claimed_by, lease_id, claimed_at, now(), 'completed' FROM done
), next AS (
    SELECT id FROM events
    WHERE status = 'pending' AND run_after <= now()
    ORDER BY run_after, id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
), claimed AS (
    UPDATE events AS e
    SET status = 'processing',
        claimed_by = %(worker_id)s,
        claimed_at = now(),
        updated_at = now(),
        visibility_timeout = now() + make_interval(secs => %(lease_seconds)s),
        lease_id = gen_random_uuid(),
        attempts = e.attempts + 1
    -- = ANY(ARRAY(...)), not a join: a cached generic plan cannot know the LIMIT and
    -- would hash-join `next` against a full scan of events.
    WHERE e.id = ANY(ARRAY(SELECT id FROM next))
    RETURNING e.*
)
SELECT claimed.*, d.completed_ids
FROM (SELECT coalesce(array_agg(id), '{}') AS completed_ids FROM done) AS d
LEFT JOIN claimed ON true
ORDER BY claimed.run_after, claimed.id;

-- name: end_attempt
-- A failure reported by the holder (lease_expired false: its lease must still run), or
-- the rescue of a dead holder's event (lease_expired true: its lease must have run out).
WITH done AS (
    UPDATE events
    SET status = %(status)s,
        retry_count = %(retry_count)s,
        error_message = %(error)s,
        run_after = now() + make_interval(secs => %(delay_seconds)s),
        visibility_timeout = NULL,
        updated_at = now()
    WHERE id = %(id)s AND lease_id = %(lease_id)s AND status = 'processing'
      AND (visibility_timeout < now()) = %(lease_expired)s
    RETURNING id, attempts, claimed_by, lease_id, claimed_at
), recorded AS (
    INSERT INTO event_attempts
        (event_id, attempt, worker_id, lease_id, started_at, finished_at, outcome, error)
    SELECT id, attempts, claimed_by, lease_id, claimed_at, now(), %(outcome)s, %(error)s
    FROM done
)
SELECT id FROM done;

-- name: heartbeat
UPDATE events AS e
SET visibility_timeout = now() + make_interval(secs => %(lease_seconds)s), updated_at = now()
FROM unnest(%(ids)s::bigint[], %(lease_ids)s::uuid[]) AS h(id, lease_id)
WHERE e.id = ANY(%(ids)s::bigint[]) AND e.id = h.id AND e.lease_id = h.lease_id
  AND e.status = 'processing' AND e.visibility_timeout >= now()
RETURNING e.id;

-- name: release
WITH held AS (
    SELECT * FROM unnest(%(ids)s::bigint[], %(lease_ids)s::uuid[]) AS h(id, lease_id)
), done AS (
    UPDATE events AS e
    SET status = 'pending', run_after = now(), visibility_timeout = NULL, updated_at = now()
    FROM held
    WHERE e.id = ANY(%(ids)s::bigint[]) AND e.id = held.id AND e.lease_id = held.lease_id
      AND e.status = 'processing'
    RETURNING e.id, e.attempts, e.claimed_by, e.lease_id, e.claimed_at
), recorded AS (
    INSERT INTO event_attempts
        (event_id, attempt, worker_id, lease_id, started_at, finished_at, outcome, error)
    SELECT id, attempts, claimed_by, lease_id, claimed_at, now(), 'released',
           'released at shutdown'
    FROM done
)
SELECT id FROM done;

-- name: expired_leases
SELECT id, lease_id, retry_count, claimed_by FROM events
WHERE status = 'processing' AND visibility_timeout < now()
ORDER BY visibility_timeout
LIMIT %(limit)s
FOR UPDATE SKIP LOCKED;

-- name: replay
UPDATE events
SET status = 'pending', retry_count = 0, run_after = now(), visibility_timeout = NULL,
    error_message = NULL, updated_at = now()
WHERE id = %(id)s AND status = 'failed'
RETURNING *;

-- name: event_by_id
SELECT * FROM events WHERE id = %(id)s;

-- name: attempts_of_event
SELECT * FROM event_attempts WHERE event_id = %(id)s ORDER BY attempt, id;

-- name: list_events
SELECT * FROM events
WHERE %(status)s::text IS NULL OR status = %(status)s::text
ORDER BY id DESC
LIMIT %(limit)s;

-- name: queue_stats
SELECT status, count(*) AS n FROM events GROUP BY status;

-- name: queue_depth
SELECT count(*) AS n FROM events WHERE status = 'pending';
