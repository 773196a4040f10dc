-- name: save_status
INSERT INTO mcp_server_status (name, transport, ok, tools, error, checked_at)
VALUES (%(name)s, %(transport)s, %(ok)s, %(tools)s, %(error)s, now())
ON CONFLICT (name) DO UPDATE SET
    transport = EXCLUDED.transport, ok = EXCLUDED.ok, tools = EXCLUDED.tools,
    error = EXCLUDED.error, checked_at = now();

-- name: statuses
SELECT name, transport, ok, tools, error, checked_at FROM mcp_server_status ORDER BY name;

-- name: asker
SELECT
    (SELECT COALESCE(NULLIF(display_name, ''), NULLIF(real_name, ''), name)
     FROM slack_users WHERE id = %(user_id)s) AS display_name,
    (SELECT real_name FROM slack_users WHERE id = %(user_id)s) AS real_name,
    (SELECT tz FROM slack_users WHERE id = %(user_id)s) AS tz,
    (SELECT name FROM slack_channels WHERE id = %(channel_id)s) AS channel_name,
    (SELECT is_im FROM slack_channels WHERE id = %(channel_id)s) AS is_im;
