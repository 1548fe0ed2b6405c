"""`db check`, `db migrate` and `doctor`: integrity, schema version and migrations, counts."""

from __future__ import annotations

import os
import sqlite3
import stat

from eset2fa.db.connection import LATEST_VERSION, Store, applied_migrations
from eset2fa.db.dialect import dialect


def check_store(store: Store) -> dict:
    conn = store.conn
    if dialect(conn) == "postgresql":
        return _check_pg_store(store)
    problems = [row[0] for row in conn.execute("PRAGMA integrity_check")]
    fk_problems = conn.execute("PRAGMA foreign_key_check").fetchall()
    states = {"disabled": 0, "pending": 0, "active": 0}
    for state, count in conn.execute("SELECT state, count(*) FROM users GROUP BY state"):
        states[state] = count
    mode = stat.S_IMODE(os.stat(store.path).st_mode)
    integrity = "ok" if problems == ["ok"] and not fk_problems else "; ".join(problems[:5])
    if fk_problems:
        integrity += f"; {len(fk_problems)} foreign key violation(s)"
    return {
        "path": str(store.path),
        "ok": integrity == "ok",
        "integrity": integrity,
        "schema_version": store.schema_version(),
        "latest_version": LATEST_VERSION,
        "journal_mode": conn.execute("PRAGMA journal_mode").fetchone()[0],
        "file_mode": f"{mode:04o}",
        "users": sum(states.values()),
        "states": states,
        "locked": conn.execute("SELECT count(*) FROM users WHERE locked = 1").fetchone()[0],
        "audit_rows": conn.execute("SELECT count(*) FROM audit").fetchone()[0],
    }


def _counts(conn) -> dict:
    states = {"disabled": 0, "pending": 0, "active": 0}
    for state, count in conn.execute("SELECT state, count(*) FROM users GROUP BY state"):
        states[state] = count
    return {
        "users": sum(states.values()),
        "states": states,
        "locked": conn.execute("SELECT count(*) FROM users WHERE locked = 1").fetchone()[0],
        "audit_rows": conn.execute("SELECT count(*) FROM audit").fetchone()[0],
    }


def _check_pg_store(store: Store) -> dict:
    """PostgreSQL checks its own pages (checksums, WAL); here: the schema is eset2fa's and
    every table reads (opening the store already refused foreign or newer schemas)."""
    conn = store.conn
    problems = quick_check(store)
    return {
        "path": str(store.path),
        "ok": problems == ["ok"],
        "integrity": "; ".join(problems[:5]),
        "schema_version": store.schema_version(),
        "latest_version": LATEST_VERSION,
        "journal_mode": "postgresql",
        "file_mode": None,
        **_counts(conn),
    }


def quick_check(store: Store) -> list[str]:
    """PRAGMA quick_check: ["ok"], or the problems found (b-tree structure, not index contents).

    PostgreSQL: every table of the schema version is read to its end (a damaged page or a
    missing table shows as an error)."""
    if dialect(store.conn) == "postgresql":
        from eset2fa.db.pg import expected_tables

        problems = []
        for table in sorted(expected_tables(store.schema_version())):
            try:
                store.conn.execute(f"SELECT count(*) FROM {table}").fetchone()
            except sqlite3.Error as exc:
                problems.append(f"{table}: {exc}")
        return problems or ["ok"]
    return [row[0] for row in store.conn.execute("PRAGMA quick_check")]


def schema_report(store: Store) -> dict:
    """The schema version, the latest this eset2fa knows, and the migrations applied (by name)."""
    return {
        "schema_version": store.schema_version(),
        "latest_version": LATEST_VERSION,
        "migrations": applied_migrations(store.conn),
    }
