"""The web dashboard of `heron run`: queue depth and throughput over the last hour,
recent and failed events (with a Replay button), latency percentiles, usage and cost per
day and per user, and the MCP servers' status. Served at /dashboard by the same HTTP
server as /metrics; see auth.py for who may see it."""

from heron.web.dashboard.routes import PATH, dashboard_enabled, dashboard_routes

__all__ = ["PATH", "dashboard_enabled", "dashboard_routes"]
