"""Database access: connection and sessions, migrations, the embedded server."""

from heron.database.connection import DatabaseConnection, get_session, init_db

__all__ = ["DatabaseConnection", "get_session", "init_db"]
