"""The `api_keys` table: applications' keys for the server's API, each secret only as a hash."""

from __future__ import annotations

import sqlite3

_PUBLIC = "name, created_at, created_by, last_used_at"


def insert(
    conn: sqlite3.Connection,
    name: str,
    *,
    key_id: str,
    secret_hash: str,
    created_at: str,
    created_by: str,
) -> bool:
    """Add a key; False when a key of that name (any case) or that key_id exists."""
    cursor = conn.execute(
        "INSERT OR IGNORE INTO api_keys (name, key_id, secret_hash, created_at, created_by)"
        " VALUES (?, ?, ?, ?, ?)",
        (name, key_id, secret_hash, created_at, created_by),
    )
    return cursor.rowcount == 1


def exists(conn: sqlite3.Connection, name: str) -> bool:
    return conn.execute("SELECT 1 FROM api_keys WHERE name = ?", (name,)).fetchone() is not None


def find_by_key_id(conn: sqlite3.Connection, key_id: str) -> sqlite3.Row | None:
    """(id, name, secret_hash) of the key with this public id, or None."""
    return conn.execute(
        "SELECT id, name, secret_hash FROM api_keys WHERE key_id = ?", (key_id,)
    ).fetchone()


def listed(conn: sqlite3.Connection) -> list[sqlite3.Row]:
    """Every key's name, creation and last use, by name; never the id or the hash."""
    return conn.execute(f"SELECT {_PUBLIC} FROM api_keys ORDER BY name").fetchall()


def delete(conn: sqlite3.Connection, name: str) -> str | None:
    """Remove the key named `name` (any case); its stored name, or None when there was none."""
    row = conn.execute("SELECT id, name FROM api_keys WHERE name = ?", (name,)).fetchone()
    if row is None:
        return None
    conn.execute("DELETE FROM api_keys WHERE id = ?", (row["id"],))
    return row["name"]


def note_use(conn: sqlite3.Connection, key_row_id: int, at: str) -> None:
    conn.execute("UPDATE api_keys SET last_used_at = ? WHERE id = ?", (at, key_row_id))
