"""The `config` table: settings as text, credentials sealed (`eset2fa.ops.settings` knows which)."""

from __future__ import annotations

import sqlite3


def value(conn: sqlite3.Connection, key: str) -> str | None:
    """A stored plain value (None: not set, the default applies)."""
    row = conn.execute("SELECT value FROM config WHERE key = ?", (key,)).fetchone()
    return row[0] if row else None


def values_with_prefix(conn: sqlite3.Connection, prefix: str) -> list[tuple[str, str]]:
    """(key, value) of the plain settings whose key starts with `prefix`, by key."""
    return conn.execute(
        "SELECT key, value FROM config WHERE substr(key, 1, ?) = ? AND value IS NOT NULL"
        " ORDER BY key",
        (len(prefix), prefix),
    ).fetchall()


def secret(conn: sqlite3.Connection, key: str) -> bytes | None:
    """A stored sealed credential (None: not set)."""
    row = conn.execute("SELECT secret FROM config WHERE key = ?", (key,)).fetchone()
    return row[0] if row else None


def all_rows(conn: sqlite3.Connection) -> list[sqlite3.Row]:
    """(key, value, secret) of every stored setting."""
    return conn.execute("SELECT key, value, secret FROM config").fetchall()


def put_value(conn: sqlite3.Connection, key: str, value: str, updated_at: str) -> None:
    conn.execute(
        "INSERT INTO config (key, value, updated_at) VALUES (?, ?, ?)"
        " ON CONFLICT (key) DO UPDATE SET value = excluded.value, secret = NULL,"
        " updated_at = excluded.updated_at",
        (key, value, updated_at),
    )


def put_secret(conn: sqlite3.Connection, key: str, sealed: bytes, updated_at: str) -> None:
    conn.execute(
        "INSERT INTO config (key, secret, updated_at) VALUES (?, ?, ?)"
        " ON CONFLICT (key) DO UPDATE SET secret = excluded.secret, value = NULL,"
        " updated_at = excluded.updated_at",
        (key, sealed, updated_at),
    )


def delete(conn: sqlite3.Connection, key: str) -> bool:
    """False when the key was not set."""
    return conn.execute("DELETE FROM config WHERE key = ?", (key,)).rowcount > 0


def sealed(conn: sqlite3.Connection) -> list[tuple[str, bytes]]:
    """(key, sealed secret) of every stored credential (`db rekey`)."""
    return conn.execute("SELECT key, secret FROM config WHERE secret IS NOT NULL").fetchall()


def set_sealed(conn: sqlite3.Connection, key: str, blob: bytes) -> None:
    conn.execute("UPDATE config SET secret = ? WHERE key = ?", (blob, key))
