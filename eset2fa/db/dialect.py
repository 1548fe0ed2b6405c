"""Which backend a store connection speaks: "sqlite" or "postgresql" (eset2fa.db.pg).

Its own tiny module: the db modules ask it on their hot paths, and importing the PostgreSQL
backend (or anything else) on every start-up would cost the CLI's start-up time for nothing.
"""


def dialect(conn) -> str:
    """ "sqlite" or "postgresql" for a store connection (a plain sqlite3 connection: sqlite)."""
    return getattr(conn, "dialect", "sqlite")
