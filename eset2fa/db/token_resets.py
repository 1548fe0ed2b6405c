"""The `token_resets` table: at most one pending token reset per user, its code only hashed."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable


def exists(conn: sqlite3.Connection, user_id: int) -> bool:
    """Whether the user has a pending token reset."""
    return (
        conn.execute("SELECT 1 FROM token_resets WHERE user_id = ?", (user_id,)).fetchone()
        is not None
    )


def find(conn: sqlite3.Connection, user_id: int) -> sqlite3.Row | None:
    """The user's pending reset (code_hash, salt, expires_at, attempts, backup, ...), or None."""
    return conn.execute("SELECT * FROM token_resets WHERE user_id = ?", (user_id,)).fetchone()


def put(
    conn: sqlite3.Connection,
    user_id: int,
    *,
    code_hash: str,
    salt: bytes,
    phone: str,
    created_at: str,
    expires_at: str,
    requested_by: str,
    backup: str,
) -> None:
    """Record a reset with no attempts yet, replacing the user's earlier one."""
    conn.execute(
        "INSERT INTO token_resets (user_id, code_hash, salt, phone, created_at,"
        " expires_at, attempts, requested_by, backup) VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?)"
        " ON CONFLICT (user_id) DO UPDATE SET code_hash = excluded.code_hash,"
        " salt = excluded.salt, phone = excluded.phone, created_at = excluded.created_at,"
        " expires_at = excluded.expires_at, attempts = 0,"
        " requested_by = excluded.requested_by, backup = excluded.backup",
        (user_id, code_hash, salt, phone, created_at, expires_at, requested_by, backup),
    )


def set_attempts(conn: sqlite3.Connection, user_id: int, attempts: int) -> None:
    conn.execute("UPDATE token_resets SET attempts = ? WHERE user_id = ?", (attempts, user_id))


def delete(conn: sqlite3.Connection, user_id: int) -> None:
    conn.execute("DELETE FROM token_resets WHERE user_id = ?", (user_id,))


def delete_for_users(conn: sqlite3.Connection, user_ids: Iterable[int]) -> None:
    conn.executemany(
        "DELETE FROM token_resets WHERE user_id = ?", ((user_id,) for user_id in user_ids)
    )


def all_hashes(conn: sqlite3.Connection) -> list[tuple[int, str]]:
    """(user_id, code_hash) of every pending reset (re-keying the hashes)."""
    return conn.execute("SELECT user_id, code_hash FROM token_resets ORDER BY user_id").fetchall()


def set_hashes(conn: sqlite3.Connection, rows: Iterable[tuple[str, int]]) -> None:
    """(code_hash, user_id) per pending reset."""
    conn.executemany("UPDATE token_resets SET code_hash = ? WHERE user_id = ?", rows)
