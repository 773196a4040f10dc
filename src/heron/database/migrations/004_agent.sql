-- Heron 004: what answering costs. One row per agent run (a retried event has one per
-- attempt: each one was paid for), read by the spend cap, the rate limit and the dashboard.

CREATE TABLE IF NOT EXISTS agent_usage (
    id             BIGSERIAL PRIMARY KEY,
    event_id       BIGINT REFERENCES events (id) ON DELETE SET NULL,
    user_id        TEXT,
    channel_id     TEXT,
    model          TEXT NOT NULL,
    outcome        TEXT NOT NULL,         -- answered | failed | limited | retrieval_only
    input_tokens   INTEGER NOT NULL DEFAULT 0,
    output_tokens  INTEGER NOT NULL DEFAULT 0,
    cache_read_tokens  INTEGER NOT NULL DEFAULT 0,
    cache_write_tokens INTEGER NOT NULL DEFAULT 0,
    requests       INTEGER NOT NULL DEFAULT 0,
    tool_calls     INTEGER NOT NULL DEFAULT 0,
    duration_ms    INTEGER NOT NULL DEFAULT 0,
    cost_usd       NUMERIC(14, 6),        -- NULL when the model's price is unknown
    error          TEXT,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT agent_usage_outcome_check
        CHECK (outcome IN ('answered', 'failed', 'limited', 'retrieval_only'))
);
CREATE INDEX IF NOT EXISTS agent_usage_created_idx ON agent_usage (created_at);
CREATE INDEX IF NOT EXISTS agent_usage_user_created_idx ON agent_usage (user_id, created_at);
CREATE INDEX IF NOT EXISTS agent_usage_event_idx ON agent_usage (event_id);

-- The agent's MCP servers as last checked by a running Heron (shown by `heron status`).
CREATE TABLE IF NOT EXISTS mcp_server_status (
    name        TEXT PRIMARY KEY,
    transport   TEXT NOT NULL,
    ok          BOOLEAN NOT NULL,
    tools       TEXT[] NOT NULL DEFAULT '{}',
    error       TEXT,
    checked_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Streamed replies: the message exists (message_ts) while the answer is still being
-- written into it; `complete` says the outbox is done with a part.
ALTER TABLE slack_replies ADD COLUMN IF NOT EXISTS streaming BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE slack_replies ADD COLUMN IF NOT EXISTS complete BOOLEAN NOT NULL DEFAULT false;
UPDATE slack_replies SET complete = true WHERE message_ts IS NOT NULL AND NOT streaming;

-- The per-user question limit counts a user's recent questions.
CREATE INDEX IF NOT EXISTS events_question_user_idx
    ON events ((payload ->> 'user'), created_at) WHERE event_type = 'slack.question';
