"""Storage: the SQLite store, its migrations and queries. Nothing here knows about the CLI."""

from eset2fa.db.connection import Store, open_store

__all__ = ["Store", "open_store"]
