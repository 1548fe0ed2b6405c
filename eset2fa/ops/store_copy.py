"""`db copy --to TARGET`: the whole store into a new one on another backend, verified.

SQLite to PostgreSQL (a store outgrowing one machine), PostgreSQL to SQLite, or between two of a
kind. The source is read in one consistent read transaction and never written; the target must
be empty (a new file, an empty schema, or a store made by the migrations that holds no row yet),
is created at the latest schema, and receives every table's rows in one write transaction that
commits only after the copy verified:
- every table has the source's row count;
- a SHA-256 over each sealed column (TOTP secrets, credentials, sealed messages) in key order, and
  one over every other column, are the source's;
- the audit chain verifies on the target with the store's key (the same key: the check value is
  copied with the rows, so whatever gives the key to the source must give it to the target).
A failure leaves the target as it was before the command (a file or schema the command created
is removed again) and the source untouched.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

from eset2fa.db import tables as store_tables
from eset2fa.db.connection import Store, open_store, store_exists
from eset2fa.errors import StateConflict, StorageError

# Sealed at rest with the master key: hashed apart, so a report can name them.
SEALED_COLUMNS = {("users", "secret"), ("config", "secret"), ("outbox", "sealed")}


class _Digests:
    """Row count and SHA-256 digests of one table, fed row by row while the rows stream past."""

    def __init__(self, table: store_tables.Table) -> None:
        self.table = table
        self.count = 0
        self.sealed = {
            c: hashlib.sha256() for c in table.columns if (table.name, c) in SEALED_COLUMNS
        }
        self.rest = hashlib.sha256()
        self._sealed_at = [i for i, c in enumerate(table.columns) if c in self.sealed]

    def feed(self, rows) -> Iterator[tuple]:
        # repr() of a row tuple is exact and tells the types apart (None, int, str, bytes read
        # the same from both backends), and costs a tenth of encoding each value in Python.
        sealed_at = [(i, self.sealed[self.table.columns[i]].update) for i in self._sealed_at]
        rest = self.rest.update
        count = 0
        for row in rows:
            count += 1
            rest(repr(row).encode())
            for i, update in sealed_at:
                update(repr((row[0], row[i])).encode())
            yield row
        self.count += count

    def summary(self) -> dict:
        return {
            "rows": self.count,
            "sha256": self.rest.hexdigest(),
            "sealed": {c: h.hexdigest() for c, h in self.sealed.items()},
        }


def _measure(conn, table) -> dict:
    digests = _Digests(table)
    for _ in digests.feed(store_tables.rows(conn, table)):
        pass
    return digests.summary()


def copy_store(source: Store, target_location, *, progress=None) -> dict:
    """Copy `source` into a new store at `target_location`; returns the verified report."""
    from eset2fa.ops.audit_chain import verify_chain
    from eset2fa.secrets import keys

    if str(target_location) == str(source.path):
        raise StateConflict(
            "The target is the source store.", "Give --to another path or PostgreSQL URL."
        )
    existed = store_exists(target_location)
    target = open_store(target_location, create=True)
    created_here = target.created
    try:
        if existed and store_tables.holds_data(target.conn):
            raise StateConflict(
                f"The target {target_location} already holds a store with data.",
                "Copy into a new file, an empty database or a new schema (?schema=NAME); the "
                "target was not changed.",
            )
        report = _copy_rows(source, target, progress)
        # The chain on the target with the key the target finds, inside the write transaction:
        # a copy that does not verify is rolled back, never committed.
        if keys.has_key(target.conn):
            keys.load_key(target.conn, target.path)  # the same key opens both
        chain = verify_chain(target)
        if not chain["ok"]:
            raise StorageError(
                f"The audit chain does not verify on the copy (row {chain['first_bad_id']}).",
                "The target was removed again; check `eset2fa audit verify` on the source.",
            )
        report["audit_chain"] = {"ok": True, "rows_checked": chain["rows_checked"]}
        store_tables.commit(target.conn)
    except BaseException:
        store_tables.rollback(target.conn)
        _discard(target, created_here or not existed)
        raise
    target.close()
    return report


def _copy_rows(source: Store, target: Store, progress) -> dict:
    """Inside a read transaction on the source and a write transaction on the target (left open
    for the caller to commit): every table copied, then counted and hashed on both sides."""
    layout = store_tables.layout()
    src, dst = source.conn, target.conn
    store_tables.begin_read(src)  # one consistent snapshot of the source (read only)
    try:
        store_tables.begin_write(dst)
        for table in layout:
            store_tables.clear(dst, table)  # the new store's own migration rows are replaced
        written = {}
        for table in layout:
            digests = _Digests(table)
            store_tables.write(dst, table, digests.feed(store_tables.rows(src, table)))
            written[table.name] = digests.summary()
            if progress is not None:
                progress(table.name, digests.count)
        store_tables.advance_identities(dst)
    finally:
        store_tables.rollback(src)
    tables = {}
    for table in layout:
        copied = _measure(dst, table)
        if copied != written[table.name]:
            raise StorageError(
                f"The copy of table {table.name} does not match the source "
                f"({written[table.name]['rows']} rows read, {copied['rows']} on the target).",
                "The target was removed again; nothing else was changed.",
            )
        tables[table.name] = copied
    return {
        "source": str(source.path),
        "target": str(target.path),
        "tables": tables,
        "rows": sum(t["rows"] for t in tables.values()),
        "users": tables["users"]["rows"],
    }


def _discard(target: Store, remove: bool) -> None:
    from eset2fa.db.connection import discard_store

    try:
        if remove:
            discard_store(target)
        else:
            target.close()
    except Exception:  # the original error matters more
        pass
