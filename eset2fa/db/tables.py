"""Every table at once, whatever the backend: what `db copy` and PostgreSQL backups move.

The layout (tables in creation order, which satisfies the foreign keys; their columns; their
primary key) comes from the migrations themselves, applied to an empty in-memory SQLite database,
so a table another migration adds is copied without any change here. Rows are read in primary-key
order (a server-side cursor on PostgreSQL, so 100,000 users are streamed, not loaded), and written
with COPY on PostgreSQL and executemany on SQLite.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from functools import lru_cache
from typing import NamedTuple

from eset2fa.db.dialect import dialect
from eset2fa.db.migrations import MIGRATIONS

_CHUNK = 5000


class Table(NamedTuple):
    name: str
    columns: tuple[str, ...]
    key: tuple[str, ...]  # the primary key's columns
    identity: bool  # an `id INTEGER PRIMARY KEY` (PostgreSQL: an identity column to advance)


@lru_cache(maxsize=4)
def layout(version: int | None = None) -> tuple[Table, ...]:
    """eset2fa's tables at schema `version` (default: the latest), in creation order."""
    version = len(MIGRATIONS) if version is None else version
    conn = sqlite3.connect(":memory:", isolation_level=None)
    try:
        conn.execute("BEGIN")
        for _name, step in MIGRATIONS[:version]:
            step(conn)
        conn.execute("COMMIT")
        tables = []
        names = conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite%'"
            " ORDER BY rowid"
        ).fetchall()
        for (name,) in names:
            info = conn.execute(f"PRAGMA table_info({name})").fetchall()
            columns = tuple(row[1] for row in info)
            key = tuple(row[1] for row in sorted(info, key=lambda r: r[5]) if row[5] > 0)
            identity = key == ("id",) and any(
                row[1] == "id" and row[2].upper() == "INTEGER" for row in info
            )
            tables.append(Table(name, columns, key, identity))
        return tuple(tables)
    finally:
        conn.close()


def rows(conn, table: Table) -> Iterator[tuple]:
    """Every row of `table` in primary-key order, streamed (call inside a read transaction)."""
    sql = f"SELECT {', '.join(table.columns)} FROM {table.name} ORDER BY {', '.join(table.key)}"
    if dialect(conn) == "postgresql":
        from eset2fa.db.pg import errors_as_sqlite

        conn.flush_begin()
        with errors_as_sqlite(conn), conn.raw.cursor(name=f"eset2fa_copy_{table.name}") as cursor:
            cursor.itersize = _CHUNK
            cursor.execute(sql)
            yield from cursor
        return
    cursor = conn.cursor()
    cursor.row_factory = None  # plain tuples, whatever the connection's row factory
    yield from cursor.execute(sql)


def write(conn, table: Table, source: Iterable[tuple]) -> int:
    """Insert the rows (inside the caller's write transaction); returns how many."""
    if dialect(conn) == "postgresql":
        return conn.copy_rows(table.name, list(table.columns), source)
    marks = ", ".join("?" * len(table.columns))
    sql = f"INSERT INTO {table.name} ({', '.join(table.columns)}) VALUES ({marks})"
    count = 0
    batch: list[tuple] = []
    for row in source:
        batch.append(tuple(row))
        if len(batch) >= _CHUNK:
            conn.executemany(sql, batch)
            count += len(batch)
            batch = []
    if batch:
        conn.executemany(sql, batch)
        count += len(batch)
    return count


def clear(conn, table: Table) -> None:
    conn.execute(f"DELETE FROM {table.name}")


def count(conn, table: Table) -> int:
    return conn.execute(f"SELECT count(*) FROM {table.name}").fetchone()[0]


def advance_identities(conn) -> None:
    """PostgreSQL: after rows were written with their ids, the next id follows the largest."""
    if dialect(conn) != "postgresql":
        return
    for table in layout():
        if table.identity:
            conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'),"
                f" coalesce((SELECT max(id) FROM {table.name}), 0) + 1, false)"
            )


def holds_data(conn) -> bool:
    """Whether any table holds a row (the migrations' own `schema_migrations` rows aside)."""
    return any(
        conn.execute(f"SELECT 1 FROM {table.name} LIMIT 1").fetchone() is not None
        for table in layout()
        if table.name != "schema_migrations"
    )


# Transactions of a copy: a consistent read of the source, one write transaction on the target.


def begin_read(conn) -> None:
    conn.execute("BEGIN")  # PostgreSQL: REPEATABLE READ (eset2fa.db.pg)


def begin_write(conn) -> None:
    conn.execute("BEGIN IMMEDIATE")


def commit(conn) -> None:
    conn.execute("COMMIT")


def rollback(conn) -> None:
    """End the transaction without keeping anything (none open: nothing to do)."""
    if conn.in_transaction:
        conn.execute("ROLLBACK")
