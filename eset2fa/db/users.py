"""The `users` table: console accounts and their second-factor columns; every statement on it.

Rows come back as `sqlite3.Row` (read by column name). The core decides; these functions only read
and write. Functions that change rows run inside the caller's write transaction (`Store.write()`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

from eset2fa.db.audit_log import LAST_HASH_SQL, first_column, plain_rows
from eset2fa.db.dialect import dialect
from eset2fa.errors import NotFound

_IN_LIMIT = 900  # names per `IN (...)`: below SQLite's variable limit on old builds


def find(conn: sqlite3.Connection, name: str) -> sqlite3.Row | None:
    """The user named `name` (names are case-insensitive), or None."""
    return conn.execute("SELECT * FROM users WHERE name = ?", (name,)).fetchone()


def get(conn: sqlite3.Connection, name: str) -> sqlite3.Row:
    """The user named `name`; NotFound (exit 3) when there is none."""
    row = find(conn, name)
    if row is None:
        raise NotFound(f"No user named {name!r}.", "List users with `eset2fa user list`.")
    return row


def find_by_id(conn: sqlite3.Connection, user_id: int) -> sqlite3.Row | None:
    return conn.execute("SELECT * FROM users WHERE id = ?", (user_id,)).fetchone()


# -- the failed-attempt count and the lock (written only through eset2fa.twofactor.lockout) ------


def set_fail_count(conn: sqlite3.Connection, user_id: int, fail_count: int) -> None:
    conn.execute("UPDATE users SET fail_count = ? WHERE id = ?", (fail_count, user_id))


def lock(conn: sqlite3.Connection, user_id: int, fail_count: int, locked_at: str) -> None:
    conn.execute(
        "UPDATE users SET fail_count = ?, locked = 1, locked_at = ? WHERE id = ?",
        (fail_count, locked_at, user_id),
    )


def unlock(conn: sqlite3.Connection, user_id: int) -> None:
    """Clear the lock and the failed-attempt count."""
    conn.execute(
        "UPDATE users SET locked = 0, locked_at = NULL, fail_count = 0 WHERE id = ?", (user_id,)
    )


# -- second-factor state --------------------------------------------------------------------------


def clear_two_factor(conn: sqlite3.Connection, user_ids: Iterable[int]) -> None:
    """Every second-factor column back to "never enrolled" (secret and its TOTP parameters,
    phone, lock, counters)."""
    conn.executemany(
        "UPDATE users SET method = NULL, state = 'disabled', secret = NULL, phone = NULL,"
        " last_step = NULL, fail_count = 0, locked = 0, locked_at = NULL,"
        " enabled_at = NULL, activated_at = NULL,"
        " totp_algorithm = NULL, totp_digits = NULL, totp_period = NULL WHERE id = ?",
        ((user_id,) for user_id in user_ids),
    )


# -- verification (the hot path: one statement in, one out) ----------------------------------------


class VerifyRow(NamedTuple):
    """What a verification reads, in one statement (attribute access beats sqlite3.Row by name)."""

    id: int
    name: str
    state: str
    secret: bytes | None
    fail_count: int
    locked: int
    last_step: int | None
    window: str | None  # the stored `totp.window` setting (None: the default)
    max_failures: str | None  # the stored `lockout.max_failures` setting
    last_hash: bytes | None  # the audit chain's last hash (None: an empty log)
    totp_algorithm: str | None  # an imported secret's parameters (None: SHA1, 6 digits, 30 s)
    totp_digits: int | None
    totp_period: int | None


# The user's row, the two policy settings and the audit chain's last hash in one statement (one
# round trip per verification: here a statement costs more than the SQLite work it does).
_VERIFY_QUERY = (
    "SELECT id, name, state, secret, fail_count, locked, last_step,"
    " (SELECT value FROM config WHERE key = 'totp.window') AS window,"
    " (SELECT value FROM config WHERE key = 'lockout.max_failures') AS max_failures,"
    f" ({LAST_HASH_SQL}) AS last_hash,"
    " totp_algorithm, totp_digits, totp_period"
    " FROM users WHERE name = ?"
)
# PostgreSQL: the user's row is taken FOR UPDATE, so its count and replay step stay exact until
# the commit (a write transaction also holds the store's write lock: eset2fa.db.pg).
_VERIFY_QUERY_PG = _VERIFY_QUERY + " FOR UPDATE"


def find_for_verify(conn: sqlite3.Connection, name: str) -> VerifyRow | None:
    query = _VERIFY_QUERY_PG if dialect(conn) != "sqlite" and conn.in_transaction else _VERIFY_QUERY
    found = conn.execute(query, (name,)).fetchone()
    return None if found is None else VerifyRow._make(found)


def accept_step(
    conn: sqlite3.Connection, user_id: int, step: int, activated_at: str | None
) -> None:
    """An accepted code: remember its step (replay), reset the count, activate a pending user."""
    if activated_at is not None:
        conn.execute(
            "UPDATE users SET fail_count = 0, last_step = ?, state = 'active',"
            " activated_at = ? WHERE id = ?",
            (step, activated_at, user_id),
        )
    else:
        conn.execute("UPDATE users SET fail_count = 0, last_step = ? WHERE id = ?", (step, user_id))


def set_pending(conn: sqlite3.Connection, rows: Iterable[tuple]) -> None:
    """Enable 2FA: (method, sealed secret or None, enabled_at, id) per user, state `pending`;
    the replay step, the count and the lock start clean, and a new secret has the default TOTP
    parameters (an imported user's SHA256/8 digits/60 s go with their old secret)."""
    if dialect(conn) == "postgresql":
        _set_pending_pg(conn, rows)
        return
    conn.executemany(
        "UPDATE users SET method = ?, state = 'pending', secret = ?, enabled_at = ?,"
        " activated_at = NULL, last_step = NULL, fail_count = 0, locked = 0, locked_at = NULL,"
        " totp_algorithm = NULL, totp_digits = NULL, totp_period = NULL"
        " WHERE id = ?",
        rows,
    )


# PostgreSQL: one UPDATE per 5,000 users, their values as arrays (a statement per row costs a
# round trip's worth of work each, even pipelined: 100,000 users took 25 s that way).
_SET_PENDING_PG = (
    "UPDATE users AS u SET method = v.method, state = 'pending', secret = v.secret,"
    " enabled_at = v.enabled_at, activated_at = NULL, last_step = NULL, fail_count = 0,"
    " locked = 0, locked_at = NULL, totp_algorithm = NULL, totp_digits = NULL,"
    " totp_period = NULL"
    " FROM unnest(?::text[], ?::bytea[], ?::text[], ?::bigint[])"
    " AS v(method, secret, enabled_at, id) WHERE u.id = v.id"
)
_ARRAY_CHUNK = 5000


def _set_pending_pg(conn, rows: Iterable[tuple]) -> None:
    batch: list[tuple] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= _ARRAY_CHUNK:
            conn.execute(_SET_PENDING_PG, [list(column) for column in zip(*batch, strict=True)])
            batch = []
    if batch:
        conn.execute(_SET_PENDING_PG, [list(column) for column in zip(*batch, strict=True)])


def sealed_secrets(conn: sqlite3.Connection, *, after_id: int, limit: int) -> list[tuple]:
    """(id, sealed secret) of the next `limit` users with a secret, by id (keyset pages)."""
    return conn.execute(
        "SELECT id, secret FROM users WHERE secret IS NOT NULL AND id > ? ORDER BY id LIMIT ?",
        (after_id, limit),
    ).fetchall()


def set_secrets(conn: sqlite3.Connection, rows: Iterable[tuple[bytes, int]]) -> None:
    """(sealed secret, id) per user: a re-sealed secret (`db rekey`)."""
    conn.executemany("UPDATE users SET secret = ? WHERE id = ?", rows)


# -- accounts (console users: add, list, delete, the built-in Administrator) ----------------------

# What `user list` shows: the status columns only, so listing 100,000 users reads no secrets.
_STATUS_COLUMNS = "id, name, group_name, state, method, locked, fail_count"


def exists(conn: sqlite3.Connection, name: str) -> bool:
    return conn.execute("SELECT 1 FROM users WHERE name = ?", (name,)).fetchone() is not None


def existing_names(conn: sqlite3.Connection, names: list[str]) -> set[str]:
    """Which of `names` are taken, lower-cased (names compare case-insensitively)."""
    found: set[str] = set()
    for start in range(0, len(names), _IN_LIMIT):
        part = names[start : start + _IN_LIMIT]
        marks = ",".join("?" * len(part))
        found.update(
            row[0].lower()
            for row in conn.execute(f"SELECT name FROM users WHERE name IN ({marks})", part)
        )
    return found


def _status_query(
    columns: str,
    group: str | None,
    state: str | None,
    locked: bool | None,
    limit: int | None,
) -> tuple[str, list]:
    clauses, params = [], []
    if group is not None:
        clauses.append("group_name = ?")
        params.append(group)
    if state is not None:
        clauses.append("state = ?")
        params.append(state)
    if locked is not None:
        clauses.append("locked = ?")
        params.append(int(locked))
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    sql = f"SELECT {columns} FROM users {where} ORDER BY name"
    if limit:
        sql += f" LIMIT {int(limit)}"
    return sql, params


def select_status(
    conn: sqlite3.Connection,
    *,
    group: str | None = None,
    state: str | None = None,
    locked: bool | None = None,
    limit: int | None = None,
) -> Iterable[sqlite3.Row]:
    """(id, name, group_name, state, method, locked, fail_count) of the matching users, by name
    (streamed: one query however many users; all of them when limit is None)."""
    sql, params = _status_query(_STATUS_COLUMNS, group, state, locked, limit)
    return conn.execute(sql, params)


def status_tuples(
    conn: sqlite3.Connection,
    *,
    group: str | None = None,
    state: str | None = None,
    locked: bool | None = None,
    limit: int | None = None,
) -> Iterator[tuple]:
    """(name, group_name, state, method, locked, fail_count) tuples of the same users, streamed
    (`user list`'s table)."""
    sql, params = _status_query(
        "name, group_name, state, method, locked, fail_count", group, state, locked, limit
    )
    return plain_rows(conn, sql, params)


# One user's status as JSON text: the dict eset2fa.accounts.console_users.status_of makes, as
# eset2fa.output writes each item of a long list (same keys and order, compact separators).
# SQLite writes it while it reads the row: a listing of 1,000,000 users is then close to the
# sqlite3 shell's own `-json` (a dict per row encoded in Python was 3 x slower). json_object is
# SQLite's; PostgreSQL builds the same text with || (its json_build_object puts " : " between).
STATUS_JSON = {
    "sqlite": (
        "json_object('name', name, 'group', group_name, 'state', state, 'method', method,"
        " 'locked', json(CASE WHEN locked <> 0 THEN 'true' ELSE 'false' END),"
        " 'fail_count', fail_count)"
    ),
    "postgresql": (
        """'{"name":' || json_quote(name) || ',"group":' || json_quote(group_name)"""
        """ || ',"state":' || json_quote(state) || ',"method":' || json_quote(method)"""
        """ || ',"locked":' || (CASE WHEN locked <> 0 THEN 'true' ELSE 'false' END)"""
        """ || ',"fail_count":' || fail_count || '}'"""
    ),
}


def status_json(
    conn: sqlite3.Connection,
    *,
    group: str | None = None,
    state: str | None = None,
    locked: bool | None = None,
    limit: int | None = None,
) -> Iterator[str]:
    """The same users' status as JSON texts (STATUS_JSON), streamed (`user list --json`)."""
    sql, params = _status_query(STATUS_JSON[dialect(conn)], group, state, locked, limit)
    return first_column(conn, sql, params)


def has_builtin(conn: sqlite3.Connection) -> bool:
    """Whether the built-in Administrator exists."""
    return conn.execute("SELECT 1 FROM users WHERE builtin = 1").fetchone() is not None


def insert(
    conn: sqlite3.Connection,
    name: str,
    group: str | None,
    password_hash: str | None,
    created_at: str,
    *,
    builtin: bool = False,
) -> int:
    """A new user (2FA disabled); returns its id."""
    sql = (
        "INSERT INTO users (name, group_name, password_hash, builtin, created_at)"
        " VALUES (?, ?, ?, ?, ?)"
    )
    params = (name, group, password_hash, int(builtin), created_at)
    if dialect(conn) == "postgresql":
        return conn.execute(sql + " RETURNING id", params).fetchone()[0]
    return conn.execute(sql, params).lastrowid


def insert_many(conn: sqlite3.Connection, rows: Iterable[tuple[str, str | None, str]]) -> None:
    """(name, group, created_at) per new user, without a password (`user add --from-file`)."""
    conn.executemany("INSERT INTO users (name, group_name, created_at) VALUES (?, ?, ?)", rows)


def delete(conn: sqlite3.Connection, user_id: int) -> None:
    """The user and, by ON DELETE CASCADE, their grants (both ways), push requests, token reset
    and recovery codes."""
    conn.execute("DELETE FROM users WHERE id = ?", (user_id,))


# -- two-factor enrollment, login and recovery (twofactor/, recovery/) ---------------------------

# What bulk enable and disable read per user: a fixed set, not `*`, because at 100,000 users the
# unread columns (password hash, secret) would be decoded for nothing.
_TARGET_COLUMNS = "id, name, group_name, state, method, phone"


def targets_named(conn: sqlite3.Connection, names: Iterable[str]) -> list[sqlite3.Row]:
    """(id, name, group_name, state, method, phone) of the users named, in no particular order;
    names not found are simply absent (the caller tells them from the rows' names)."""
    unique = list(names)
    rows: list[sqlite3.Row] = []
    for start in range(0, len(unique), _IN_LIMIT):
        part = unique[start : start + _IN_LIMIT]
        marks = ",".join("?" * len(part))
        rows += conn.execute(
            f"SELECT {_TARGET_COLUMNS} FROM users WHERE name IN ({marks})", part
        ).fetchall()
    return rows


def targets_page(
    conn: sqlite3.Connection, *, after_id: int, limit: int, group: str | None = None
) -> list[sqlite3.Row]:
    """The same columns for the next `limit` users by id after `after_id` (keyset pages), all
    users or those of `group`."""
    if group is None:
        return conn.execute(
            f"SELECT {_TARGET_COLUMNS} FROM users WHERE id > ? ORDER BY id LIMIT ?",
            (after_id, limit),
        ).fetchall()
    return conn.execute(
        f"SELECT {_TARGET_COLUMNS} FROM users WHERE id > ? AND group_name = ? ORDER BY id LIMIT ?",
        (after_id, group, limit),
    ).fetchall()


# -- many users asked for by name (`--from-file` with 1,000,000 names): the names go to TEMP
# tables of the connection (never the store's file), SQLite matches and orders them, and the
# caller reads the result a page at a time, so no list of every name or row is held in Python.


def ask_names(conn: sqlite3.Connection, names: Iterable[str]) -> None:
    """Load `names` (in the order asked) and match them with the users: afterwards
    `asked_found_page` gives each user found once, in the order of the first name that found
    them, and `asked_missing_page` each name that found nobody, once (by exact spelling), in the
    order asked. `forget_asked` drops the tables."""
    forget_asked(conn)
    conn.execute("CREATE TEMP TABLE asked (seq INTEGER PRIMARY KEY, name TEXT NOT NULL)")
    conn.executemany("INSERT INTO temp.asked (name) VALUES (?)", ((name,) for name in names))
    conn.execute(
        "CREATE TEMP TABLE asked_found (seq INTEGER PRIMARY KEY, id INTEGER, name TEXT,"
        " group_name TEXT, state TEXT, method TEXT, phone TEXT)"
    )
    # users.name is COLLATE NOCASE and on the left: names match case-insensitively, through its
    # index. Rows are inserted in ORDER BY order, so `seq` is the order asked.
    # SQLite gives the bare `name` from the row of min(seq); PostgreSQL wants it aggregated.
    first_name = "name" if dialect(conn) == "sqlite" else "(array_agg(name ORDER BY seq))[1]"
    conn.execute(
        "INSERT INTO temp.asked_found (id, name, group_name, state, method, phone)"
        " SELECT u.id, u.name, u.group_name, u.state, u.method, u.phone FROM"
        f" (SELECT {first_name} AS name, min(seq) AS first FROM temp.asked"
        " GROUP BY name COLLATE NOCASE) AS t"
        " JOIN users AS u ON u.name = t.name ORDER BY t.first"
    )
    conn.execute("CREATE TEMP TABLE asked_missing (seq INTEGER PRIMARY KEY, name TEXT)")
    conn.execute(
        "INSERT INTO temp.asked_missing (name)"
        " SELECT t.name FROM (SELECT name, min(seq) AS first FROM temp.asked GROUP BY name) AS t"
        " WHERE NOT EXISTS (SELECT 1 FROM users AS u WHERE u.name = t.name) ORDER BY t.first"
    )


def asked_found_page(conn: sqlite3.Connection, *, after: int, limit: int) -> list[sqlite3.Row]:
    """(seq, id, name, group_name, state, method, phone) of the next `limit` users found."""
    return conn.execute(
        f"SELECT seq, {_TARGET_COLUMNS} FROM temp.asked_found WHERE seq > ? ORDER BY seq LIMIT ?",
        (after, limit),
    ).fetchall()


def asked_missing_page(conn: sqlite3.Connection, *, after: int, limit: int) -> list[tuple]:
    """(seq, name) of the next `limit` names that found nobody."""
    return conn.execute(
        "SELECT seq, name FROM temp.asked_missing WHERE seq > ? ORDER BY seq LIMIT ?",
        (after, limit),
    ).fetchall()


def forget_asked(conn: sqlite3.Connection) -> None:
    for table in ("asked", "asked_found", "asked_missing"):
        conn.execute(f"DROP TABLE IF EXISTS temp.{table}")


def count(conn: sqlite3.Connection, *, group: str | None = None) -> int:
    """How many users there are (in `group`, when given)."""
    if group is None:
        return conn.execute("SELECT count(*) FROM users").fetchone()[0]
    return conn.execute("SELECT count(*) FROM users WHERE group_name = ?", (group,)).fetchone()[0]


def set_phone(conn: sqlite3.Connection, user_id: int, phone: str) -> None:
    conn.execute("UPDATE users SET phone = ? WHERE id = ?", (phone, user_id))


def set_phone_if_none(conn: sqlite3.Connection, user_id: int, phone: str) -> bool:
    """Store the phone only where none is stored yet; False when one already was."""
    cursor = conn.execute(
        "UPDATE users SET phone = ? WHERE id = ? AND phone IS NULL", (phone, user_id)
    )
    return cursor.rowcount == 1


def activate(conn: sqlite3.Connection, user_id: int, activated_at: str) -> None:
    """State `active` from now (a pending push user's first approved push)."""
    conn.execute(
        "UPDATE users SET state = 'active', activated_at = ? WHERE id = ?", (activated_at, user_id)
    )


def set_password_hash(conn: sqlite3.Connection, user_id: int, password_hash: str) -> None:
    conn.execute("UPDATE users SET password_hash = ? WHERE id = ?", (password_hash, user_id))


# -- shell completion ----------------------------------------------------------------------------

COMPLETION_LIMIT = 50


def names_starting_with(
    conn: sqlite3.Connection, prefix: str, limit: int = COMPLETION_LIMIT
) -> list[str]:
    """Up to `limit` user names that begin with `prefix`, letter case as typed (as a shell
    matches completions), by name.

    `name` is COLLATE NOCASE and unique, so the LIKE is a range scan of its index (SQLite's LIKE
    optimization): a few rows read at 1,000,000 users; the exact-case test runs on that range
    only. `%`, `_` and `\\` in the prefix are literal.
    """
    pattern = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    if dialect(conn) == "postgresql":  # LIKE is case-sensitive under the byte-wise "C" collation
        return [
            row[0]
            for row in conn.execute(
                "SELECT name FROM users WHERE name COLLATE \"C\" LIKE ? ESCAPE '\\'"
                " ORDER BY name LIMIT ?",
                (pattern, limit),
            )
        ]
    return [
        row[0]
        for row in conn.execute(
            "SELECT name FROM users WHERE name LIKE ? ESCAPE '\\'"
            " AND substr(name, 1, ?) = ? COLLATE BINARY ORDER BY name LIMIT ?",
            (pattern, len(prefix), prefix, limit),
        )
    ]


def names_for_completion(path, prefix: str, limit: int = COMPLETION_LIMIT) -> list[str]:
    """`names_starting_with` on the store at `path` (a file, or a PostgreSQL location), for a
    shell's TAB.

    The file is opened only if it exists and never created (SQLite's mode=rw without create),
    and the connection is query_only. mode=rw rather than mode=ro: a read-only connection to a
    WAL database leaves `-wal` and `-shm` files behind, which this one removes on close like
    every other eset2fa command. Any problem (no file, not a store, locked, unreadable) gives
    no names rather than an error on someone's prompt.
    """
    from urllib.parse import quote

    if not isinstance(path, Path):  # a PostgreSQL store: opened without creating anything
        from eset2fa.db.connection import open_store

        store = open_store(path, create=False)
        try:
            return names_starting_with(store.conn, prefix, limit)
        finally:
            store.close()
    if not path.is_file():
        return []
    try:
        conn = sqlite3.connect(f"file:{quote(str(path))}?mode=rw", uri=True, timeout=0.1)
    except sqlite3.Error:
        return []
    try:
        conn.execute("PRAGMA query_only = ON")
        return names_starting_with(conn, prefix, limit)
    except sqlite3.Error:
        return []
    finally:
        conn.close()


# -- wrong passwords (--as, auth login), counted apart from wrong codes (migration 0007) ----------
# Written only through eset2fa.twofactor.lockout, like the OTP count above.


def password_state(conn: sqlite3.Connection, user_id: int) -> sqlite3.Row | None:
    """(password_failures, locked) of the user, re-read inside the write transaction; None when
    the user was deleted meanwhile."""
    sql = "SELECT password_failures, locked FROM users WHERE id = ?"
    if dialect(conn) == "postgresql":
        sql += " FOR UPDATE"
    return conn.execute(sql, (user_id,)).fetchone()


def set_password_failures(conn: sqlite3.Connection, user_id: int, failures: int) -> None:
    conn.execute("UPDATE users SET password_failures = ? WHERE id = ?", (failures, user_id))


def lock_after_password_failures(
    conn: sqlite3.Connection, user_id: int, failures: int, locked_at: str
) -> None:
    conn.execute(
        "UPDATE users SET password_failures = ?, locked = 1, locked_at = ? WHERE id = ?",
        (failures, locked_at, user_id),
    )


def clear_password_failures(conn: sqlite3.Connection, user_id: int) -> None:
    """`user unlock` clears this count with the lock and the OTP count."""
    conn.execute("UPDATE users SET password_failures = 0 WHERE id = ?", (user_id,))


# -- imports and exports of TOTP secrets (twofactor/imports.py, twofactor/exports.py) -------------


def import_totp(conn: sqlite3.Connection, rows: Iterable[tuple]) -> None:
    """(sealed secret, algorithm, digits, period, enabled_at, id) per user: TOTP `active` with an
    imported secret (the user already has it in their app); parameters None mean the defaults.
    The replay step, the count and the lock start clean."""
    conn.executemany(
        "UPDATE users SET method = 'totp', state = 'active', secret = ?1, totp_algorithm = ?2,"
        " totp_digits = ?3, totp_period = ?4, enabled_at = ?5, activated_at = ?5,"
        " last_step = NULL, fail_count = 0, locked = 0, locked_at = NULL WHERE id = ?6",
        rows,
    )


# -- a set of names met so far, in a temporary table (a bulk import of 1,000,000 lines tells a
# repeated name without holding every name in Python). TEMP: the connection's own, never in the
# store's file.


def start_name_set(conn: sqlite3.Connection) -> None:
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS names_met (name TEXT PRIMARY KEY COLLATE NOCASE)")
    conn.execute("DELETE FROM temp.names_met")


def names_in_set(conn: sqlite3.Connection, names: list[str]) -> set[str]:
    """Which of `names` are in the set, lower-cased (names compare case-insensitively)."""
    found: set[str] = set()
    for start in range(0, len(names), _IN_LIMIT):
        part = names[start : start + _IN_LIMIT]
        marks = ",".join("?" * len(part))
        found.update(
            row[0].lower()
            for row in conn.execute(
                f"SELECT name FROM temp.names_met WHERE name IN ({marks})", part
            )
        )
    return found


def add_to_name_set(conn: sqlite3.Connection, names: Iterable[str]) -> None:
    conn.executemany(
        "INSERT OR IGNORE INTO temp.names_met (name) VALUES (?)", ((name,) for name in names)
    )


def drop_name_set(conn: sqlite3.Connection) -> None:
    conn.execute("DROP TABLE IF EXISTS temp.names_met")


_EXPORT_COLUMNS = "id, name, group_name, secret, totp_algorithm, totp_digits, totp_period"
_EXPORTABLE = "method = 'totp' AND state = 'active' AND secret IS NOT NULL"


def exportable_named(conn: sqlite3.Connection, names: list[str]) -> list[sqlite3.Row]:
    """(id, name, group_name, sealed secret, TOTP parameters) of the named users that are active
    TOTP users; the others are simply absent (the caller tells them from the names)."""
    rows: list[sqlite3.Row] = []
    for start in range(0, len(names), _IN_LIMIT):
        part = names[start : start + _IN_LIMIT]
        marks = ",".join("?" * len(part))
        rows += conn.execute(
            f"SELECT {_EXPORT_COLUMNS} FROM users WHERE {_EXPORTABLE} AND name IN ({marks})",
            part,
        ).fetchall()
    return rows


def exportable_page(conn: sqlite3.Connection, *, after_id: int, limit: int) -> list[sqlite3.Row]:
    """The same for the next `limit` active TOTP users by id after `after_id` (keyset pages)."""
    return conn.execute(
        f"SELECT {_EXPORT_COLUMNS} FROM users WHERE {_EXPORTABLE} AND id > ? ORDER BY id LIMIT ?",
        (after_id, limit),
    ).fetchall()


# -- verify hot path --


def replace_password_hash(conn: sqlite3.Connection, user_id: int, old: str, new: str) -> bool:
    """A stronger hash of the same password, unless the password changed meanwhile (False)."""
    return (
        conn.execute(
            "UPDATE users SET password_hash = ? WHERE id = ? AND password_hash = ?",
            (new, user_id, old),
        ).rowcount
        > 0
    )


class VerifyUser(NamedTuple):
    """The user's columns a verification reads, and the database's `data_version` in the same
    statement: it tells whether another connection committed since this one last looked, i.e.
    whether what the caller keeps between verifications (the policy, the chain's last link) may
    still be used (eset2fa.twofactor.totp)."""

    id: int
    name: str
    state: str
    secret: bytes | None
    fail_count: int
    locked: int
    last_step: int | None
    totp_algorithm: str | None
    totp_digits: int | None
    totp_period: int | None
    data_version: int


_VERIFY_USER = (
    "SELECT id, name, state, secret, fail_count, locked, last_step,"
    " totp_algorithm, totp_digits, totp_period FROM users WHERE name = ?"
)
# What changes only when settings change or another connection appends to the audit log.
_VERIFY_CONTEXT = (
    "SELECT (SELECT value FROM config WHERE key = 'totp.window'),"
    " (SELECT value FROM config WHERE key = 'lockout.max_failures'),"
    f" ({LAST_HASH_SQL})"
)


# PostgreSQL has no data_version: the user's row (FOR UPDATE) and the context come in one
# statement, and the context is kept on the connection for `verify_context` to hand back without
# a second round trip. Its data_version is never the same twice, so nothing is reused across
# verifications (another node may have appended to the chain since).
_VERIFY_USER_PG = (
    "SELECT id, name, state, secret, fail_count, locked, last_step,"
    " totp_algorithm, totp_digits, totp_period,"
    " (SELECT value FROM config WHERE key = 'totp.window'),"
    " (SELECT value FROM config WHERE key = 'lockout.max_failures'),"
    f" ({LAST_HASH_SQL}) FROM users WHERE name = ? FOR UPDATE"
)


def find_user_for_verify(conn: sqlite3.Connection, name: str) -> VerifyUser | None:
    """Inside the caller's write transaction (the data_version read is then current)."""
    if dialect(conn) == "postgresql":
        found = conn.execute(_VERIFY_USER_PG, (name,)).fetchone()
        if found is None:
            return None
        conn.verify_context = tuple(found[10:])
        return VerifyUser(*found[:10], conn.next_version())
    # Two statements: as a sub-select (pragma_data_version()) the pragma cost three times more.
    version = conn.execute("PRAGMA data_version").fetchone()[0]
    found = conn.execute(_VERIFY_USER, (name,)).fetchone()
    return None if found is None else VerifyUser(*found, version)


def verify_context(conn: sqlite3.Connection) -> tuple[str | None, str | None, bytes | None]:
    """(stored `totp.window`, stored `lockout.max_failures`, the audit chain's last link)."""
    if dialect(conn) == "postgresql" and conn.verify_context is not None:
        found, conn.verify_context = conn.verify_context, None
        return found
    return tuple(conn.execute(_VERIFY_CONTEXT).fetchone())
