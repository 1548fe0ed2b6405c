"""The `meta` table: facts about the store itself (its id, key check value, which key it uses)."""

from __future__ import annotations

import sqlite3


def get(conn: sqlite3.Connection, key: str) -> str | None:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return row[0] if row else None


def add_if_missing(conn: sqlite3.Connection, key: str, value: str) -> str:
    """Store `value` unless `key` already has one; returns the value in force."""
    conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)", (key, value))
    return get(conn, key)


def put(conn: sqlite3.Connection, values: dict[str, str]) -> None:
    conn.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", list(values.items()))


def delete(conn: sqlite3.Connection, key: str) -> None:
    conn.execute("DELETE FROM meta WHERE key = ?", (key,))
