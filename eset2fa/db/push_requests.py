"""The `push_requests` table: one row per push, its approval token only as the nonce's hash.

Rows come back with the user's name as `user` (joined from `users`). A pending request whose
`expires_at` has passed is still stored as `pending` until something expires it; `newest` takes
the current time so that its state filter sees such a request as expired, as the core shows it.
"""

from __future__ import annotations

import sqlite3

_SELECT = "SELECT p.*, u.name AS user FROM push_requests p JOIN users u ON u.id = p.user_id"


def find(conn: sqlite3.Connection, request_id: str) -> sqlite3.Row | None:
    """The request (every column, and `user`), or None."""
    return conn.execute(f"{_SELECT} WHERE p.id = ?", (request_id,)).fetchone()


def newest(
    conn: sqlite3.Connection,
    *,
    now: str,
    user: str | None = None,
    state: str | None = None,
    limit: int | None = None,
) -> list[sqlite3.Row]:
    """The newest `limit` requests (all when None), newest first, of `user` and in `state`.

    `state` is the effective one at `now`: "pending" leaves out pending requests past their
    expiry, "expired" takes them in.
    """
    clauses, params = [], []
    if user:
        clauses.append("u.name = ?")
        params.append(user)
    if state == "pending":
        clauses.append("p.state = 'pending' AND p.expires_at > ?")
        params.append(now)
    elif state == "expired":
        clauses.append("(p.state = 'expired' OR (p.state = 'pending' AND p.expires_at <= ?))")
        params.append(now)
    elif state:
        clauses.append("p.state = ?")
        params.append(state)
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    sql = f"{_SELECT}{where} ORDER BY p.created_at DESC, p.rowid DESC"
    if limit:
        sql += f" LIMIT {int(limit)}"
    return conn.execute(sql, params).fetchall()


def count_since(conn: sqlite3.Connection, user_id: int, since: str) -> int:
    """How many requests the user got after `since` (the push rate limit)."""
    return conn.execute(
        "SELECT count(*) FROM push_requests WHERE user_id = ? AND created_at > ?",
        (user_id, since),
    ).fetchone()[0]


def insert(
    conn: sqlite3.Connection,
    request_id: str,
    *,
    user_id: int,
    created_at: str,
    expires_at: str,
    nonce_hash: str,
    transport: str,
    requested_by: str,
    number: int | None = None,
    choices: str | None = None,
    needs_number: bool = False,
) -> bool:
    """Store a new pending request; False when the ID is already taken (draw another).

    `number` is the one shown at login, `choices` the answer page's three ("47,12,85"),
    `needs_number` whether only the answer page (a number pick) may approve with the token.
    """
    try:
        conn.execute(
            "INSERT INTO push_requests (id, user_id, created_at, expires_at, nonce_hash,"
            " transport, requested_by, number, choices, needs_number)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                request_id,
                user_id,
                created_at,
                expires_at,
                nonce_hash,
                transport,
                requested_by,
                number,
                choices,
                int(needs_number),
            ),  # fmt: skip
        )
    except sqlite3.IntegrityError:
        return False
    return True


def decide(
    conn: sqlite3.Connection, request_id: str, state: str, decided_at: str, decided_by: str
) -> bool:
    """Move a pending request to `state`; False when it was no longer pending."""
    cursor = conn.execute(
        "UPDATE push_requests SET state = ?, decided_at = ?, decided_by = ?"
        " WHERE id = ? AND state = 'pending'",
        (state, decided_at, decided_by, request_id),
    )
    return cursor.rowcount > 0


def state(conn: sqlite3.Connection, request_id: str) -> str:
    """The stored state of an existing request."""
    return conn.execute("SELECT state FROM push_requests WHERE id = ?", (request_id,)).fetchone()[0]
