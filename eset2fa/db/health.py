"""`db check`, `db migrate` and `doctor`: integrity, schema version and migrations, counts."""

from __future__ import annotations

import os
import stat

from eset2fa.db.connection import LATEST_VERSION, Store, applied_migrations


def check_store(store: Store) -> dict:
    conn = store.conn
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


def quick_check(store: Store) -> list[str]:
    """PRAGMA quick_check: ["ok"], or the problems found (b-tree structure, not index contents)."""
    return [row[0] for row in store.conn.execute("PRAGMA quick_check")]


def schema_report(store: Store) -> dict:
    """The schema version, the latest this eset2fa knows, and the migrations applied (by name)."""
    return {
        "schema_version": store.schema_version(),
        "latest_version": LATEST_VERSION,
        "migrations": applied_migrations(store.conn),
    }
