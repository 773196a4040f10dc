-- name: record
INSERT INTO agent_usage
    (event_id, user_id, channel_id, model, outcome, input_tokens, output_tokens,
     cache_read_tokens, cache_write_tokens, requests, tool_calls, duration_ms, cost_usd, error)
VALUES (%(event_id)s, %(user_id)s, %(channel_id)s, %(model)s, %(outcome)s, %(input_tokens)s,
        %(output_tokens)s, %(cache_read_tokens)s, %(cache_write_tokens)s, %(requests)s,
        %(tool_calls)s, %(duration_ms)s, %(cost_usd)s, %(error)s);

-- name: spent_today
SELECT COALESCE(sum(cost_usd), 0) AS spent FROM agent_usage
WHERE created_at >= date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';

-- name: user_questions
-- Questions the user asked before this one within the hour, answered or not yet: counting
-- events (not finished runs) keeps a burst of simultaneous questions within the limit.
SELECT count(*) AS questions FROM events
WHERE event_type = 'slack.question' AND payload ->> 'user' = %(user_id)s
  AND created_at >= now() - INTERVAL '1 hour' AND id < %(event_id)s;
