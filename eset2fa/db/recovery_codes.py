"""The `recovery_codes` table: each user's one-time recovery codes, stored only as hashes."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable


def delete_for_users(conn: sqlite3.Connection, user_ids: Iterable[int]) -> None:
    conn.executemany(
        "DELETE FROM recovery_codes WHERE user_id = ?", ((user_id,) for user_id in user_ids)
    )


def replace(
    conn: sqlite3.Connection, user_id: int, salt: bytes, code_hashes: list[str], created_at: str
) -> int:
    """Drop the user's codes and store new ones; returns how many unused codes were replaced."""
    replaced = conn.execute(
        "DELETE FROM recovery_codes WHERE user_id = ? AND used_at IS NULL", (user_id,)
    ).rowcount
    conn.execute("DELETE FROM recovery_codes WHERE user_id = ?", (user_id,))
    conn.executemany(
        "INSERT INTO recovery_codes (user_id, code_hash, salt, created_at) VALUES (?, ?, ?, ?)",
        [(user_id, code_hash, salt, created_at) for code_hash in code_hashes],
    )
    return replaced


def count_unused(conn: sqlite3.Connection, user_id: int) -> int:
    return conn.execute(
        "SELECT count(*) FROM recovery_codes WHERE user_id = ? AND used_at IS NULL", (user_id,)
    ).fetchone()[0]


def unused(conn: sqlite3.Connection, user_id: int) -> list[sqlite3.Row]:
    """(id, code_hash, salt) of each unused code."""
    return conn.execute(
        "SELECT id, code_hash, salt FROM recovery_codes WHERE user_id = ? AND used_at IS NULL",
        (user_id,),
    ).fetchall()


def mark_used(conn: sqlite3.Connection, code_id: int, used_at: str) -> None:
    conn.execute("UPDATE recovery_codes SET used_at = ? WHERE id = ?", (used_at, code_id))


def all_hashes(conn: sqlite3.Connection) -> list[tuple[int, str]]:
    """(id, code_hash) of every stored code, used or not (re-keying the hashes)."""
    return conn.execute("SELECT id, code_hash FROM recovery_codes ORDER BY id").fetchall()


def set_hashes(conn: sqlite3.Connection, rows: Iterable[tuple[str, int]]) -> None:
    """(code_hash, id) per code."""
    conn.executemany("UPDATE recovery_codes SET code_hash = ? WHERE id = ?", rows)
