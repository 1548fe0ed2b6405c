"""The `grants` table: Write permission of one console user over another user or over a group.

A grant is (actor_id, target_user_id, target_group) with exactly one target set; deleting either
user removes it (ON DELETE CASCADE). What a grant covers and who may hand one out is decided in
`eset2fa.accounts.permissions`; here are only the statements. Changes run inside the caller's write
transaction (`Store.write()`).
"""

from __future__ import annotations

import sqlite3


def targets(conn: sqlite3.Connection, actor_id: int) -> list[tuple[int | None, str | None]]:
    """(target user id, target group) of every grant `actor_id` holds: one of the two is None."""
    return conn.execute(
        "SELECT target_user_id, target_group FROM grants WHERE actor_id = ?", (actor_id,)
    ).fetchall()


def described(conn: sqlite3.Connection, actor_id: int) -> list[sqlite3.Row]:
    """Every grant `actor_id` holds, in the order given: `target_user` (the user's name) or
    `target_group` is set."""
    return conn.execute(
        "SELECT u.name AS target_user, g.target_group FROM grants g"
        " LEFT JOIN users u ON u.id = g.target_user_id WHERE g.actor_id = ? ORDER BY g.id",
        (actor_id,),
    ).fetchall()


def add(
    conn: sqlite3.Connection,
    actor_id: int,
    target_user_id: int | None,
    target_group: str | None,
    created_at: str,
) -> bool:
    """True if the grant was new (an existing one is left as it is)."""
    cursor = conn.execute(
        "INSERT INTO grants (actor_id, target_user_id, target_group, created_at)"
        " VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
        (actor_id, target_user_id, target_group, created_at),
    )
    return cursor.rowcount == 1


def remove(
    conn: sqlite3.Connection, actor_id: int, target_user_id: int | None, target_group: str | None
) -> bool:
    """Remove the grant over the user `target_user_id`, else over `target_group` (any case);
    False when there was none."""
    if target_user_id is not None:
        cursor = conn.execute(
            "DELETE FROM grants WHERE actor_id = ? AND target_user_id = ?",
            (actor_id, target_user_id),
        )
    else:
        cursor = conn.execute(
            "DELETE FROM grants WHERE actor_id = ? AND target_group = ? COLLATE NOCASE",
            (actor_id, target_group),
        )
    return cursor.rowcount > 0
