"""Named queries of the local workspace (package data)."""
