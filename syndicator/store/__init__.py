"""The store: engine, sessions, tables, and the queries every layer shares."""

from syndicator.store.db import get_engine, session, upgrade

__all__ = ["get_engine", "session", "upgrade"]
