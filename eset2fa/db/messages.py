"""The `outbox` table: messages the embedded outbox transport kept instead of sending them."""

from __future__ import annotations

import sqlite3

from eset2fa.db.dialect import dialect


def insert(
    conn: sqlite3.Connection,
    at: str,
    channel: str,
    recipient: str,
    user: str | None,
    body: str,
    data: str | None,
    sealed: bytes | None,
) -> int:
    """Keep one message; returns its id."""
    sql = (
        "INSERT INTO outbox (at, channel, recipient, user_name, body, data, sealed)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)"
    )
    params = (at, channel, recipient, user, body, data, sealed)
    if dialect(conn) == "postgresql":
        return conn.execute(sql + " RETURNING id", params).fetchone()[0]
    return conn.execute(sql, params).lastrowid


def newest(
    conn: sqlite3.Connection,
    *,
    user: str | None = None,
    channel: str | None = None,
    limit: int | None = 100,
) -> list[sqlite3.Row]:
    """The newest `limit` messages (all when None), newest first."""
    clauses, params = [], []
    if user:
        clauses.append("user_name = ? COLLATE NOCASE")
        params.append(user)
    if channel:
        clauses.append("channel = ?")
        params.append(channel)
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    sql = f"SELECT id, at, channel, recipient, user_name, body, data, sealed FROM outbox {where}"
    sql += " ORDER BY id DESC"
    if limit:
        sql += f" LIMIT {int(limit)}"
    return conn.execute(sql, params).fetchall()


def sealed(conn: sqlite3.Connection) -> list[tuple[int, str, str, bytes]]:
    """(id, channel, recipient, sealed body) of every sealed message (`db rekey`)."""
    return conn.execute(
        "SELECT id, channel, recipient, sealed FROM outbox WHERE sealed IS NOT NULL"
    ).fetchall()


def set_sealed(conn: sqlite3.Connection, message_id: int, blob: bytes) -> None:
    conn.execute("UPDATE outbox SET sealed = ? WHERE id = ?", (blob, message_id))
