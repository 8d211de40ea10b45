"""The store: SQLAlchemy engine, sessions and migrations."""

from engine.store.db import connect, migrate, session_scope

__all__ = ["connect", "migrate", "session_scope"]
