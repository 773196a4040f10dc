"""MCP servers that expose Heron to AI clients."""
