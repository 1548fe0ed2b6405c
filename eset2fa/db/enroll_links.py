"""The `enroll_links` table: at most one one-time enrollment link per user, its token only hashed.

A row is found by the token's selector; the rest of the token (the verifier) is stored as its
keyed hash, so neither the database nor a backup holds a usable link.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable


def put(
    conn: sqlite3.Connection,
    user_id: int,
    *,
    selector: str,
    code_hash: str,
    salt: bytes,
    created_at: str,
    expires_at: str,
    created_by: str,
) -> None:
    """Record the user's link, replacing (superseding) an earlier one."""
    conn.execute(
        "INSERT OR REPLACE INTO enroll_links (user_id, selector, code_hash, salt, created_at,"
        " expires_at, created_by) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (user_id, selector, code_hash, salt, created_at, expires_at, created_by),
    )


def find(conn: sqlite3.Connection, selector: str) -> sqlite3.Row | None:
    """The link with this selector (every column, and the user's `name`), or None."""
    return conn.execute(
        "SELECT l.*, u.name AS name FROM enroll_links l JOIN users u ON u.id = l.user_id"
        " WHERE l.selector = ?",
        (selector,),
    ).fetchone()


def delete(conn: sqlite3.Connection, user_id: int, selector: str | None = None) -> bool:
    """Drop the user's link (only if it is still `selector`, when given); True if one went."""
    if selector is None:
        cursor = conn.execute("DELETE FROM enroll_links WHERE user_id = ?", (user_id,))
    else:
        cursor = conn.execute(
            "DELETE FROM enroll_links WHERE user_id = ? AND selector = ?", (user_id, selector)
        )
    return cursor.rowcount > 0


def delete_for_users(conn: sqlite3.Connection, user_ids: Iterable[int]) -> None:
    """Drop the links of these users (bulk disable). Links live minutes, so the table is small:
    reading it first spares 100,000 users one DELETE each (9 % of a bulk disable)."""
    linked = {row[0] for row in conn.execute("SELECT user_id FROM enroll_links")}
    if linked:
        conn.executemany(
            "DELETE FROM enroll_links WHERE user_id = ?",
            ((user_id,) for user_id in user_ids if user_id in linked),
        )
