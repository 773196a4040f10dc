"""GitHub over its REST API: the allow-list, the client, the result models."""
