-- Heron 001: the event queue.
-- Plain SQL, safe to run twice: `psql "$DATABASE_URL" -f 001_initial_schema.sql` works on a
-- plain PostgreSQL >= 14; `heron db migrate` applies it and records it in heron_migrations.

-- The seed's events table, every column kept, plus what exactly-once processing needs.
CREATE TABLE IF NOT EXISTS events (
    id                  BIGSERIAL PRIMARY KEY,
    event_type          VARCHAR(100) NOT NULL,
    payload             JSONB NOT NULL DEFAULT '{}'::jsonb,
    status              VARCHAR(20) NOT NULL DEFAULT 'pending',
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    claimed_at          TIMESTAMPTZ,
    claimed_by          VARCHAR(255),
    completed_at        TIMESTAMPTZ,
    retry_count         INTEGER NOT NULL DEFAULT 0,
    error_message       TEXT,
    -- While processing: the lease deadline. A holder past it has lost the event.
    visibility_timeout  TIMESTAMPTZ,
    -- Added by Heron:
    dedupe_key          TEXT,                         -- e.g. Slack's event_id; unique
    run_after           TIMESTAMPTZ NOT NULL DEFAULT now(),  -- not claimable before (backoff)
    lease_id            UUID,                         -- fencing token of the current holder
    attempts            INTEGER NOT NULL DEFAULT 0,   -- claims so far, expired leases included
    CONSTRAINT events_status_check
        CHECK (status IN ('pending', 'processing', 'completed', 'failed'))
);

-- Partial: most events have no key, and an index entry per row version would be pure cost.
CREATE UNIQUE INDEX IF NOT EXISTS events_dedupe_key_uidx
    ON events (dedupe_key) WHERE dedupe_key IS NOT NULL;
-- The claim reads only this index: visible pending events, oldest first.
CREATE INDEX IF NOT EXISTS events_pending_idx ON events (run_after, id) WHERE status = 'pending';
-- The rescuer reads only this one: the events held right now. It is on id, not on the
-- lease deadline: a deadline index invites the planner to answer the fenced writes'
-- `visibility_timeout >= now()` by walking every lease granted in the last few minutes
-- (dead entries included) instead of looking the held ids up.
CREATE INDEX IF NOT EXISTS events_processing_idx ON events (id) WHERE status = 'processing';

-- One row per finished attempt, written by the statement that ends it: who ran it, when,
-- and how it ended. A running attempt shows in its event's row (claimed_by, claimed_at).
CREATE TABLE IF NOT EXISTS event_attempts (
    id           BIGSERIAL PRIMARY KEY,
    event_id     BIGINT NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    attempt      INTEGER NOT NULL,
    worker_id    VARCHAR(255) NOT NULL,
    lease_id     UUID NOT NULL,
    started_at   TIMESTAMPTZ NOT NULL,
    finished_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    outcome      VARCHAR(20) NOT NULL,
    error        TEXT,
    CONSTRAINT event_attempts_outcome_check
        CHECK (outcome IN ('completed', 'retry', 'failed', 'lease_expired', 'released'))
);
CREATE UNIQUE INDEX IF NOT EXISTS event_attempts_event_attempt_uidx
    ON event_attempts (event_id, attempt);

-- Wake idle workers the moment an event becomes claimable, whoever inserted it (even psql).
-- Identical notifications in one transaction are delivered once, so a bulk insert wakes
-- the workers once.
CREATE OR REPLACE FUNCTION heron_notify_events() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('heron_events', '');
    RETURN NULL;
END;
$$;

DROP TRIGGER IF EXISTS events_notify_insert ON events;
CREATE TRIGGER events_notify_insert
    AFTER INSERT ON events
    FOR EACH STATEMENT EXECUTE FUNCTION heron_notify_events();

-- Replays and rescues make an event claimable again: wake the workers for those too.
DROP TRIGGER IF EXISTS events_notify_requeue ON events;
CREATE TRIGGER events_notify_requeue
    AFTER UPDATE OF status ON events
    FOR EACH ROW
    WHEN (NEW.status = 'pending' AND OLD.status IS DISTINCT FROM 'pending'
          AND NEW.run_after <= now())
    EXECUTE FUNCTION heron_notify_events();
