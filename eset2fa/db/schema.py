"""What eset2fa's schema is at each version, and how a database file's schema differs from it.

"What eset2fa created" is defined by the migrations themselves: applying `MIGRATIONS[:version]` to
an empty in-memory database gives the reference, so an older backup is compared with the schema of
its own version and no list of objects has to be kept in step by hand. Every `sqlite_master` row
(type, name, table, SQL) is compared, indexes SQLite makes for UNIQUE and PRIMARY KEY constraints
included; only the statistics and sequence tables SQLite itself creates (ANALYZE, AUTOINCREMENT)
are left out. A trigger, a view, an extra table or index, a missing one, or a changed definition
is a difference.

Why not skip every `sqlite_%` name: SQLite refuses such names in CREATE, but a row written with
`PRAGMA writable_schema` is loaded all the same, so a trigger named `sqlite_x` would still fire.
"""

from __future__ import annotations

import sqlite3
from functools import lru_cache
from typing import NamedTuple

from eset2fa.db.migrations import MIGRATIONS

# Tables SQLite creates by itself (ANALYZE, `PRAGMA optimize`, AUTOINCREMENT): not ours, harmless.
SQLITE_OWN_TABLES = frozenset(
    {"sqlite_sequence", "sqlite_stat1", "sqlite_stat2", "sqlite_stat3", "sqlite_stat4"}
)


class SchemaObject(NamedTuple):
    type: str  # table, index, view, trigger
    name: str
    tbl_name: str
    sql: str | None  # normalized; None for the indexes SQLite makes for constraints


class SchemaDifference(NamedTuple):
    unexpected: list[SchemaObject]  # in the file, not made by eset2fa
    missing: list[SchemaObject]  # made by eset2fa, not in the file
    altered: list[SchemaObject]  # same type and name, another table or definition (file's)

    def __bool__(self) -> bool:
        return bool(self.unexpected or self.missing or self.altered)


def normalize_sql(sql: str | None) -> str | None:
    """The statement with each run of whitespace and comments outside quotes made one space.

    SQLite reads whitespace and comments alike as separators, so two texts with the same normal
    form define the same object; a changed comment in a shipped migration does not matter. A `--`
    comment ends at a line break: a text cannot hide code in a comment by moving line breaks,
    because the code then disappears from its normal form.
    """
    if sql is None:
        return None
    out: list[str] = []
    pending_space = False
    i, n = 0, len(sql)
    while i < n:
        c = sql[i]
        if c in " \t\n\r\f":
            pending_space = True
            i += 1
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            i = n if end < 0 else end + 1
            pending_space = True
        elif sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            i = n if end < 0 else end + 2
            pending_space = True
        else:
            if pending_space and out:
                out.append(" ")
            pending_space = False
            if c in "'\"`[":
                close = "]" if c == "[" else c
                j = i + 1
                while j < n:
                    if sql[j] == close:
                        # '' inside '...' (and "" , ``) is an escaped quote; [...] has no escape
                        if close != "]" and j + 1 < n and sql[j + 1] == close:
                            j += 2
                            continue
                        break
                    j += 1
                out.append(sql[i : j + 1])
                i = j + 1
            else:
                out.append(c)
                i += 1
    return "".join(out)


def schema_objects(conn: sqlite3.Connection) -> dict[tuple[str, str], SchemaObject]:
    """The file's schema objects keyed by (type, name), SQLite's own tables left out."""
    found = {}
    for type_, name, tbl_name, sql in conn.execute(
        "SELECT type, name, tbl_name, sql FROM sqlite_master"
    ):
        if type_ == "table" and name in SQLITE_OWN_TABLES:
            continue
        found[(type_, name)] = SchemaObject(type_, name, tbl_name, normalize_sql(sql))
    return found


@lru_cache(maxsize=4)
def expected_objects(version: int) -> dict[tuple[str, str], SchemaObject]:
    """The schema eset2fa's first `version` migrations create, from an empty in-memory database."""
    if not 0 <= version <= len(MIGRATIONS):
        raise ValueError(f"no schema version {version}")
    conn = sqlite3.connect(":memory:", isolation_level=None)
    try:
        conn.execute("BEGIN")
        for _name, step in MIGRATIONS[:version]:
            step(conn)
        conn.execute("COMMIT")
        return schema_objects(conn)
    finally:
        conn.close()


def compare(conn: sqlite3.Connection, version: int) -> SchemaDifference:
    """How the schema of the database on `conn` differs from eset2fa's schema `version`."""
    expected = expected_objects(version)
    actual = schema_objects(conn)
    return SchemaDifference(
        unexpected=[obj for key, obj in sorted(actual.items()) if key not in expected],
        missing=[obj for key, obj in sorted(expected.items()) if key not in actual],
        altered=[
            obj for key, obj in sorted(actual.items()) if key in expected and expected[key] != obj
        ],
    )
