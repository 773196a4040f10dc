-- Heron 003: the Slack archive (the team's memory), the ingest ledger and the reply outbox.
-- Plain SQL, safe to run twice.
--
-- slack_messages is partitioned on the message's own time (derived from its ts), which
-- must then be part of every unique index: the key is (channel_id, ts, message_at), and
-- since message_at follows from ts, (channel_id, ts) stays unique in practice. With
-- TimescaleDB loadable (shared_preload_libraries) the table becomes a hypertable with
-- 7-day chunks, compressed after 45 days and segmented by channel; otherwise it is
-- natively range-partitioned by week, and heron_slack_ensure_partitions() creates the
-- weeks ahead (Heron calls it at startup, hourly and before every import batch).

-- The workspace Heron is installed in (from auth.test at startup): permalinks need its URL.
CREATE TABLE IF NOT EXISTS slack_workspace (
    team_id     TEXT PRIMARY KEY,
    name        TEXT NOT NULL DEFAULT '',
    url         TEXT NOT NULL DEFAULT '',            -- https://acme.slack.com/
    bot_user_id TEXT NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS slack_users (
    id            TEXT PRIMARY KEY,
    team_id       TEXT,
    name          TEXT NOT NULL DEFAULT '',
    real_name     TEXT NOT NULL DEFAULT '',
    display_name  TEXT NOT NULL DEFAULT '',
    tz            TEXT,
    is_bot        BOOLEAN NOT NULL DEFAULT false,
    deleted       BOOLEAN NOT NULL DEFAULT false,
    raw           JSONB NOT NULL DEFAULT '{}'::jsonb,
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS slack_channels (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL DEFAULT '',
    is_private   BOOLEAN NOT NULL DEFAULT false,   -- private channels, DMs and group DMs
    is_im        BOOLEAN NOT NULL DEFAULT false,
    is_mpim      BOOLEAN NOT NULL DEFAULT false,
    is_archived  BOOLEAN NOT NULL DEFAULT false,
    is_deleted   BOOLEAN NOT NULL DEFAULT false,
    topic        TEXT NOT NULL DEFAULT '',
    purpose      TEXT NOT NULL DEFAULT '',
    created_at   TIMESTAMPTZ,
    raw          JSONB NOT NULL DEFAULT '{}'::jsonb,
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Who is in which private channel or DM: what access control reads.
CREATE TABLE IF NOT EXISTS slack_channel_members (
    channel_id  TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    joined_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (channel_id, user_id)
);
CREATE INDEX IF NOT EXISTS slack_channel_members_user_idx ON slack_channel_members (user_id);

CREATE OR REPLACE FUNCTION heron_slack_messages_columns() RETURNS text
LANGUAGE sql IMMUTABLE AS $$ SELECT $cols$
    channel_id     TEXT NOT NULL,
    ts             TEXT NOT NULL,                 -- Slack's id for the message
    message_at     TIMESTAMPTZ NOT NULL,          -- to_timestamp(ts): the partition key
    thread_ts      TEXT,                          -- set on parents and replies alike
    user_id        TEXT,
    bot_id         TEXT,
    subtype        TEXT,
    text           TEXT NOT NULL DEFAULT '',
    previous_texts TEXT[] NOT NULL DEFAULT '{}',  -- earlier versions, oldest first
    edited_at      TIMESTAMPTZ,
    deleted_at     TIMESTAMPTZ,                   -- soft delete: gone from memory and search
    reply_count    INTEGER NOT NULL DEFAULT 0,
    files          JSONB NOT NULL DEFAULT '[]'::jsonb,
    reactions      JSONB NOT NULL DEFAULT '{}'::jsonb,   -- {"name": ["U1", ...]}
    metadata       JSONB,
    raw            JSONB NOT NULL DEFAULT '{}'::jsonb,
    search         TSVECTOR GENERATED ALWAYS AS (to_tsvector('english', text)) STORED,
    ingested_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (channel_id, ts, message_at)
$cols$ $$;

DO $$
DECLARE
    timescale boolean := EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb')
        AND current_setting('shared_preload_libraries') LIKE '%timescaledb%';
BEGIN
    IF to_regclass('slack_messages') IS NOT NULL THEN
        RETURN;
    END IF;
    IF timescale THEN
        CREATE EXTENSION IF NOT EXISTS timescaledb;
        EXECUTE format('CREATE TABLE slack_messages (%s)', heron_slack_messages_columns());
        PERFORM create_hypertable('slack_messages', 'message_at',
                                  chunk_time_interval => INTERVAL '7 days');
        BEGIN
            -- Compression is in TimescaleDB's community edition, not the Apache-2 one.
            EXECUTE 'ALTER TABLE slack_messages SET (timescaledb.compress, '
                    'timescaledb.compress_segmentby = ''channel_id'', '
                    'timescaledb.compress_orderby = ''message_at DESC, ts DESC'')';
            PERFORM add_compression_policy('slack_messages', INTERVAL '45 days');
        EXCEPTION WHEN feature_not_supported OR insufficient_privilege THEN
            RAISE NOTICE 'TimescaleDB compression unavailable: %', SQLERRM;
        END;
    ELSE
        EXECUTE format('CREATE TABLE slack_messages (%s) PARTITION BY RANGE (message_at)',
                       heron_slack_messages_columns());
    END IF;
END;
$$;

CREATE INDEX IF NOT EXISTS slack_messages_thread_idx
    ON slack_messages (channel_id, thread_ts, ts) WHERE thread_ts IS NOT NULL;
CREATE INDEX IF NOT EXISTS slack_messages_channel_time_idx
    ON slack_messages (channel_id, message_at DESC);
CREATE INDEX IF NOT EXISTS slack_messages_user_time_idx
    ON slack_messages (user_id, message_at DESC);
CREATE INDEX IF NOT EXISTS slack_messages_search_idx ON slack_messages USING gin (search);

-- Which storage this database uses: 'timescaledb', 'partitioned' or 'plain'.
CREATE OR REPLACE FUNCTION heron_slack_storage_mode() RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT CASE
        WHEN EXISTS (SELECT 1 FROM pg_partitioned_table
                     WHERE partrelid = to_regclass('slack_messages')) THEN 'partitioned'
        WHEN EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') THEN 'timescaledb'
        ELSE 'plain'
    END
$$;

-- Create the weekly partitions (Monday 00:00 UTC to the next Monday) covering
-- [from_at, to_at]; returns how many it created. A no-op unless natively partitioned.
-- Serialised by an advisory lock so that concurrent processes never race on a name.
CREATE OR REPLACE FUNCTION heron_slack_ensure_partitions(from_at timestamptz, to_at timestamptz)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    week_start timestamptz;
    created integer := 0;
    name text;
BEGIN
    IF heron_slack_storage_mode() <> 'partitioned' THEN
        RETURN 0;
    END IF;
    IF to_at - from_at > INTERVAL '100 years' THEN
        RAISE EXCEPTION 'refusing to create partitions for % .. %', from_at, to_at;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('heron_slack_partitions'));
    week_start := date_trunc('week', from_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
    WHILE week_start <= to_at LOOP
        name := 'slack_messages_w' || to_char(week_start AT TIME ZONE 'UTC', 'YYYYMMDD');
        IF to_regclass(name) IS NULL THEN
            EXECUTE format(
                'CREATE TABLE %I PARTITION OF slack_messages FOR VALUES FROM (%L) TO (%L)',
                name, week_start, week_start + INTERVAL '7 days');
            created := created + 1;
        END IF;
        week_start := week_start + INTERVAL '7 days';
    END LOOP;
    RETURN created;
END;
$$;

SELECT heron_slack_ensure_partitions(now() - INTERVAL '7 days', now() + INTERVAL '28 days');

-- Every Slack event id taken in, so that redeliveries change nothing.
CREATE TABLE IF NOT EXISTS slack_event_receipts (
    event_id     TEXT PRIMARY KEY,
    event_type   TEXT NOT NULL,
    received_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS slack_event_receipts_received_idx
    ON slack_event_receipts (received_at);

-- Payloads Heron could not take in: kept for inspection, never blocking the stream.
CREATE TABLE IF NOT EXISTS slack_ingest_errors (
    id           BIGSERIAL PRIMARY KEY,
    event_id     TEXT,
    event_type   TEXT,
    error        TEXT NOT NULL,
    raw          JSONB NOT NULL,
    received_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- The reply outbox: each part of an answer is written here before it is posted, and
-- marked with the posted message's ts afterwards. A retry after a crash in between finds
-- the posted message by its metadata (heron_event_id, part) and adopts it.
CREATE TABLE IF NOT EXISTS slack_replies (
    event_id    BIGINT NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    part        INTEGER NOT NULL,
    channel_id  TEXT NOT NULL,
    thread_ts   TEXT,
    text        TEXT NOT NULL,
    message_ts  TEXT,                             -- NULL until posted (or adopted)
    post_attempts INTEGER NOT NULL DEFAULT 0,     -- > 0 and no message_ts: look before posting
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    posted_at   TIMESTAMPTZ,
    PRIMARY KEY (event_id, part)
);

-- Where a Web API backfill stands, so that a restart carries on from there.
CREATE TABLE IF NOT EXISTS slack_import_cursors (
    channel_id   TEXT NOT NULL,
    scope        TEXT NOT NULL,                   -- 'history' or 'replies:<thread_ts>'
    cursor       TEXT,                            -- next page; NULL = from the start
    done         BOOLEAN NOT NULL DEFAULT false,
    messages     INTEGER NOT NULL DEFAULT 0,
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (channel_id, scope)
);
