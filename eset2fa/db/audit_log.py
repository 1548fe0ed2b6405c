"""The `audit` table: appending rows, reading them back, walking the hash chain.

The chain itself (what a row's hash covers) is `eset2fa.ops.audit_chain`'s; here are only the
statements. Appends run inside the caller's write transaction, so the audit row and the change it
describes commit together or not at all.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from itertools import islice

from eset2fa.db.dialect import dialect

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


def _events_query(
    columns: str, user: str | None, since: str | None, action: str | None, limit: int | None
) -> tuple[str, list]:
    """The newest `limit` matching rows (all when limit is None), oldest first."""
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
    if not limit:
        return f"SELECT {columns} FROM audit {where} ORDER BY id", params
    newest = f"SELECT * FROM audit {where} ORDER BY id DESC LIMIT {int(limit)}"
    return f"SELECT {columns} FROM ({newest}) AS newest ORDER BY id", params


def plain_rows(conn: sqlite3.Connection, sql: str, params: Sequence) -> Iterator[tuple]:
    """The query's rows as plain tuples, fetched a batch at a time (sqlite3.Row and a call per
    row cost more than SQLite's own work on a long listing); on PostgreSQL from a server-side
    cursor, so that long listings stay flat in memory there too."""
    for batch in _batches(conn, sql, params):
        yield from batch


def first_column(conn: sqlite3.Connection, sql: str, params: Sequence) -> Iterator:
    """The first column of the query's rows (a JSON text each, for the listings), streamed like
    plain_rows."""
    for batch in _batches(conn, sql, params):
        yield from [row[0] for row in batch]


def _batches(conn: sqlite3.Connection, sql: str, params: Sequence) -> Iterator[list[tuple]]:
    if dialect(conn) == "postgresql":
        rows = conn.stream(sql, params)
        while batch := list(islice(rows, 1000)):
            yield batch
        return
    cursor = conn.cursor()
    cursor.row_factory = None
    cursor.execute(sql, params)
    while batch := cursor.fetchmany(1000):
        yield batch


def select_events(
    conn: sqlite3.Connection,
    *,
    user: str | None = None,
    since: str | None = None,
    action: str | None = None,
    limit: int | None = 100,
) -> Iterator[tuple]:
    """(id, at, actor, action, target, result, details JSON or None) of the newest `limit`
    matching rows (all when limit is None), oldest first, streamed."""
    sql, params = _events_query(
        "id, at, actor, action, target, result, details", user, since, action, limit
    )
    return plain_rows(conn, sql, params)


# One row as JSON text: the dict eset2fa.ops.audit_chain.event_of makes, as eset2fa.output
# writes each item of a long list (same keys and order, compact separators). `details` is stored
# as json.dumps(sort_keys=True) wrote it and is embedded as an object (compacted by SQLite's
# json(); as stored on PostgreSQL); a value that is not JSON (the file edited) is shown as a
# string. SQLite writes the text while it reads the row: 3 x faster on a long listing than a dict
# per row encoded in Python. See users.STATUS_JSON for why PostgreSQL's text is built with ||.
EVENT_JSON = {
    "sqlite": (
        "json_object('id', id, 'at', at, 'actor', actor, 'action', action, 'target', target,"
        " 'result', result, 'details', CASE WHEN details IS NULL OR details = '' THEN json('{}')"
        " WHEN json_valid(details) THEN json(details) ELSE details END)"
    ),
    "postgresql": (
        """'{"id":' || id || ',"at":' || json_quote(at) || ',"actor":' || json_quote(actor)"""
        """ || ',"action":' || json_quote(action) || ',"target":' || json_quote(target)"""
        """ || ',"result":' || json_quote(result) || ',"details":' || (CASE"""
        """ WHEN details IS NULL OR details = '' THEN '{}'"""
        """ WHEN json_valid(details) THEN details ELSE json_quote(details) END) || '}'"""
    ),
}


def events_json(
    conn: sqlite3.Connection,
    *,
    user: str | None = None,
    since: str | None = None,
    action: str | None = None,
    limit: int | None = 100,
) -> Iterator[str]:
    """The same rows as JSON texts (EVENT_JSON), oldest first, streamed."""
    sql, params = _events_query(EVENT_JSON[dialect(conn)], user, since, action, limit)
    for batch in _batches(conn, sql, params):
        # Stored details escape non-ASCII (\u00e9); the listing writes characters as they are
        # (ensure_ascii=False), so such a row is decoded and written again.
        yield from [text if "\\u" not in text else _reencode(text) for (text,) in batch]


def _reencode(text: str) -> str:
    import json

    return json.dumps(json.loads(text), ensure_ascii=False, separators=(",", ":"))


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
