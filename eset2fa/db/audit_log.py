"""The `audit` table: appending rows, reading them back, walking the hash chain.

The chain itself (what a row's hash covers) is `eset2fa.ops.audit_chain`'s; here are only the
statements. Appends run inside the caller's write transaction, so the audit row and the change it
describes commit together or not at all.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence

# The chain's last hash. The verification path reads it as a sub-select of its user query
# (eset2fa.db.users), saving a round trip on every attempt.
LAST_HASH_SQL = "SELECT hash FROM audit ORDER BY id DESC LIMIT 1"

_INSERT = (
    "INSERT INTO audit (at, actor, action, target, result, details, prev_hash, hash)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)

# (at, actor, action, target, result, details or None, prev_hash, hash); the links are 32 bytes
AuditRow = tuple[str, str, str, "str | None", str, "str | None", bytes, bytes]


def last_hash(conn: sqlite3.Connection) -> bytes | None:
    row = conn.execute(LAST_HASH_SQL).fetchone()
    return row[0] if row else None


def append(conn: sqlite3.Connection, row: Sequence) -> None:
    conn.execute(_INSERT, row)


def append_many(conn: sqlite3.Connection, rows: Sequence[Sequence]) -> None:
    conn.executemany(_INSERT, rows)


def select_events(
    conn: sqlite3.Connection,
    *,
    user: str | None = None,
    since: str | None = None,
    action: str | None = None,
    limit: int | None = 100,
) -> list[sqlite3.Row]:
    """The newest `limit` matching rows (all when limit is None), newest first."""
    clauses, params = [], []
    if user:
        clauses.append("(target = ? COLLATE NOCASE OR actor = ? COLLATE NOCASE)")
        params += [user, user]
    if since:
        clauses.append("at >= ?")
        params.append(since)
    if action:
        clauses.append("(action = ? OR action LIKE ?)")
        params += [action, action + ".%"]
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    sql = (
        f"SELECT id, at, actor, action, target, result, details FROM audit {where} ORDER BY id DESC"
    )
    if limit:
        sql += f" LIMIT {int(limit)}"
    return conn.execute(sql, params).fetchall()


def chain(conn: sqlite3.Connection) -> Iterator[sqlite3.Row]:
    """Every row with its hashes, oldest first (streamed)."""
    return conn.execute(
        "SELECT id, at, actor, action, target, result, details, prev_hash, hash"
        " FROM audit ORDER BY id"
    )


def chain_page(conn: sqlite3.Connection, *, after_id: int, limit: int) -> list[sqlite3.Row]:
    """The next `limit` rows after `after_id` with their hashes, oldest first (keyset pages: the
    rows are re-hashed between pages, which a cursor left open on the table must not see)."""
    return conn.execute(
        "SELECT id, at, actor, action, target, result, details, prev_hash, hash"
        " FROM audit WHERE id > ? ORDER BY id LIMIT ?",
        (after_id, limit),
    ).fetchall()


def set_hashes(conn: sqlite3.Connection, rows: Iterable[tuple[bytes, bytes, int]]) -> None:
    """(prev_hash, hash, id) per row: the chain re-computed (keyed) over unchanged rows."""
    conn.executemany("UPDATE audit SET prev_hash = ?, hash = ? WHERE id = ?", rows)


def count(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT count(*) FROM audit").fetchone()[0]
