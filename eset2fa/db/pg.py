"""The PostgreSQL backend: a connection that speaks like the store's sqlite3 connection.

The db modules write their SQL once, in SQLite's dialect with `?` placeholders. `PgConnection`
runs the same text on PostgreSQL: each statement text is translated once and cached (`?` and
`?NNN` to psycopg's `%s`, a literal `%` doubled), rows come back as `Row` (by index, by column
name, `keys()`, `dict(row)`, like sqlite3.Row), and a psycopg error becomes the sqlite3 exception
of the same kind, its text cleaned of the URL and password, so the core and the faces handle both
backends with the same code and never see which one they run on.

Where the dialects must differ, the db module holds both statements side by side and chooses with
`dialect(conn)`: upserts written in the syntax both accept (`ON CONFLICT ... DO ...`), `RETURNING`
instead of `lastrowid`, PRAGMAs, `rowid`, and `FOR UPDATE` on the rows a write re-reads.

Transactions map as follows (the statements eset2fa.db.connection sends):
- `BEGIN IMMEDIATE` (a write) is `BEGIN` plus the store's write lock, a transaction-scoped
  advisory lock keyed by the schema (`pg_advisory_xact_lock`): writers queue on it as SQLite
  writers queue on the file's write lock, and it is released by the COMMIT or ROLLBACK. Both are
  sent with the transaction's first statement, in one round trip (bound on the client, as one
  simple query); anything else that uses the connection first sends them on their own. A
  write transaction that runs no statement sends nothing at all. The lock is what keeps the
  audit chain a chain (every write appends after the last hash) and every read-modify-write
  exact, whatever the number of processes and nodes; reads never wait for it. An advisory
  lock writes no WAL (a `SELECT ... FOR UPDATE` of a lock row did, and cost 10-20 % of a durable
  verification). The rows a verification re-reads are also taken `FOR UPDATE`
  (eset2fa.db.users), so a statement that bypassed the write lock would still wait for them.
- `BEGIN` (a consistent read) is `BEGIN ISOLATION LEVEL REPEATABLE READ`.
- Everything else runs in autocommit, one statement at a time, as on SQLite.

The store's tables live in their own schema (default `eset2fa`, `?schema=NAME` in the URL); the
connection's search_path is that schema alone. `store_identity` (one row) records that the schema
is eset2fa's (application id) and its schema version; `schema_migrations` the names applied.
"""

from __future__ import annotations

import contextlib
import itertools
import re
import sqlite3
from functools import lru_cache

from eset2fa.db.dialect import dialect  # noqa: F401 - where the db modules once found it
from eset2fa.db.location import PgLocation
from eset2fa.errors import StorageError

APPLICATION_ID = 0x45324641  # the same "E2FA" as SQLite's PRAGMA application_id
LOCK_TIMEOUT = "30s"  # as long as SQLite's busy timeout
CONNECT_TIMEOUT = 10
IDENTITY_TABLE = "store_identity"

_EXTRA = "pip install 'eset2fa[postgres]'"

# Statements eset2fa.db.connection sends as they are, mapped to what PostgreSQL needs.
_SPECIAL = {
    "BEGIN IMMEDIATE": None,  # two statements: see PgConnection.execute
    "BEGIN": "BEGIN ISOLATION LEVEL REPEATABLE READ",
    "COMMIT": "COMMIT",
    "ROLLBACK": "ROLLBACK",
}


def lock_key(schema: str) -> int:
    """The advisory lock of the store in `schema` (writes and migrations queue on it)."""
    import hashlib

    digest = hashlib.sha256(f"eset2fa:{schema}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def import_psycopg():
    try:
        import psycopg
    except ImportError:
        raise StorageError(
            "PostgreSQL support is not installed (the psycopg package is missing).",
            f"Install it with: {_EXTRA}",
        ) from None
    return psycopg


# -- statement translation ----------------------------------------------------------------------


_TEMP_SCHEMA = re.compile(r"\btemp\.(?=\w)", re.I)
_INSERT_OR_IGNORE = re.compile(r"^\s*INSERT\s+OR\s+IGNORE\s+INTO\b", re.I)
_CREATE = re.compile(r"^\s*CREATE\s+(TEMP\s+|TEMPORARY\s+)?TABLE\b", re.I)


@lru_cache(maxsize=1024)
def translate(sql: str) -> tuple[str, tuple[int, ...] | None]:
    """(psycopg text, order of the parameters or None) for a statement in SQLite's dialect.

    `?` becomes `%s`, `?NNN` (numbered) becomes `%s` with the parameters re-ordered, and `%`
    becomes `%%`; quoted strings, quoted names and comments are copied as they are. A few
    SQLite forms the db modules use at run time are rewritten: `temp.name` (pg_temp),
    `INSERT OR IGNORE` (ON CONFLICT DO NOTHING), and the column types of a CREATE TABLE (as the
    migrations' DDL, eset2fa.db.migrations.pg_ddl). `json_quote` and `json_valid` are functions
    of the store's schema (`migrate`).
    """
    if _CREATE.match(sql):
        from eset2fa.db.migrations import pg_ddl

        sql = pg_ddl(sql, binary_text=False)
    sql = _TEMP_SCHEMA.sub("pg_temp.", sql)
    if _INSERT_OR_IGNORE.match(sql):
        sql = _INSERT_OR_IGNORE.sub("INSERT INTO", sql).rstrip().rstrip(";")
        sql += " ON CONFLICT DO NOTHING"
    out: list[str] = []
    order: list[int] = []
    numbered = False
    plain = 0
    i, n = 0, len(sql)
    while i < n:
        c = sql[i]
        if c in "'\"":
            j = i + 1
            while j < n:
                if sql[j] == c:
                    if j + 1 < n and sql[j + 1] == c:
                        j += 2
                        continue
                    break
                j += 1
            out.append(sql[i : j + 1].replace("%", "%%"))
            i = j + 1
        elif sql.startswith("--", i):
            j = sql.find("\n", i)
            j = n if j < 0 else j
            out.append(sql[i:j].replace("%", "%%"))
            i = j
        elif c == "?":
            j = i + 1
            while j < n and sql[j].isdigit():
                j += 1
            if j > i + 1:
                numbered = True
                order.append(int(sql[i + 1 : j]) - 1)
            else:
                order.append(plain)
                plain += 1
            out.append("%s")
            i = j
        elif c == "%":
            out.append("%%")
            i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out), tuple(order) if numbered else None


_PLAIN_INSERT = re.compile(
    r"\s*INSERT\s+INTO\s+(\w+)\s*\(([\w\s,]+)\)\s*VALUES\s*\((\s*\?\s*(?:,\s*\?\s*)*)\)\s*",
    re.I,
)


@lru_cache(maxsize=256)
def _plain_insert(sql: str) -> tuple[str, list[str]] | None:
    """(table, columns) of `INSERT INTO t (a, b) VALUES (?, ?)` and nothing more (no upsert, no
    RETURNING, no expressions): rows that COPY can load with the same meaning."""
    match = _PLAIN_INSERT.fullmatch(sql)
    if match is None:
        return None
    columns = [c.strip() for c in match[2].split(",")]
    if len(columns) != match[3].count("?"):
        return None
    return match[1], columns


def _reorder(params: object, order: tuple[int, ...] | None):
    if order is None or params is None:
        return params
    return tuple(params[k] for k in order)


# -- rows ---------------------------------------------------------------------------------------


class Row(tuple):
    """A result row read by position or by column name, like sqlite3.Row."""

    __slots__ = ()
    _index: dict[str, int] = {}

    def __getitem__(self, key):
        if isinstance(key, str):
            try:
                return tuple.__getitem__(self, self._index[key])
            except KeyError:
                return tuple.__getitem__(self, self._index[key.lower()])
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self._index)


@lru_cache(maxsize=512)
def _row_class(names: tuple[str, ...]) -> type[Row]:
    index: dict[str, int] = {}
    for position, name in enumerate(names):
        index.setdefault(name, position)
    return type("Row", (Row,), {"__slots__": (), "_index": index})


def _row_factory(cursor):
    description = cursor.description
    if description is None:
        return tuple
    cls = _row_class(tuple(column.name for column in description))
    return cls


# -- errors -------------------------------------------------------------------------------------


def _reason(exc: BaseException, location: PgLocation | None) -> str:
    diag = getattr(exc, "diag", None)
    text = (diag.message_primary if diag is not None else None) or str(exc) or type(exc).__name__
    text = " ".join(text.split())
    if text.startswith("connection failed: "):
        text = text[len("connection failed: ") :]
    text = text.replace("FATAL: ", "")
    if location is not None:
        text = location.scrub(text)
    return text.rstrip(".")


def _as_sqlite_error(exc: BaseException, location: PgLocation | None) -> sqlite3.Error:
    """The sqlite3 exception of the same kind, so the core's handlers apply unchanged."""
    import psycopg

    reason = _reason(exc, location)
    if isinstance(exc, psycopg.errors.IntegrityError):
        return sqlite3.IntegrityError(reason)
    if isinstance(exc, psycopg.OperationalError):
        return sqlite3.OperationalError(f"PostgreSQL at {location}: {reason}")
    return sqlite3.DatabaseError(f"PostgreSQL: {reason}")


@contextlib.contextmanager
def errors_as_sqlite(conn):
    """psycopg errors raised inside become the sqlite3 ones (for code using `conn.raw`)."""
    try:
        yield
    except Exception as exc:
        import psycopg

        if isinstance(exc, psycopg.Error):
            raise _as_sqlite_error(exc, conn.db_path) from None
        raise


# -- the connection -----------------------------------------------------------------------------


class PgConnection:
    """A psycopg connection in autocommit, with the sqlite3.Connection methods eset2fa uses."""

    dialect = "postgresql"
    __slots__ = (
        "__weakref__",
        "raw",
        "db_path",
        "_idle",
        "_begin_write",
        "verify_context",
        "_versions",
        "_pending",
    )
    total_changes = 0  # sqlite3's counter; PostgreSQL's stand-in for data_version is below

    def __init__(self, raw, location: PgLocation) -> None:
        from psycopg.pq import TransactionStatus

        self.raw = raw
        self.db_path = location  # where the key and the backups are looked for (no file here)
        self._idle = TransactionStatus.IDLE
        self._begin_write = f"BEGIN; SELECT pg_advisory_xact_lock({lock_key(location.schema)})"
        self.verify_context = None  # eset2fa.db.users: read with the user's row
        self._versions = itertools.count(1)
        self._pending = False  # BEGIN IMMEDIATE asked for, not sent yet

    def flush_begin(self) -> None:
        """Send a pending write transaction's BEGIN and write lock now."""
        if self._pending:
            self._pending = False
            with errors_as_sqlite(self):
                self.raw.execute(self._begin_write)

    def next_version(self) -> int:
        """A data_version never seen before: other nodes commit without telling this one, so
        nothing read in an earlier transaction is reused."""
        return next(self._versions)

    @property
    def in_transaction(self) -> bool:
        return self._pending or self.raw.info.transaction_status != self._idle

    def execute(self, sql: str, params: object = ()):
        special = _SPECIAL.get(sql, False)
        try:
            if special is not False:
                if special is None:  # BEGIN IMMEDIATE: sent with the first statement
                    self._pending = True
                    return None
                if self._pending:  # COMMIT or ROLLBACK of a write that ran no statement
                    self._pending = False
                    return None
                return self.raw.execute(special)
            text, order = translate(sql)
            if self._pending:
                return self._begin_with(text, _reorder(params, order) or ())
            cursor = self.raw.cursor(row_factory=_row_factory)
            return cursor.execute(text, _reorder(params, order) or ())
        except Exception as exc:
            import psycopg

            if isinstance(exc, psycopg.Error):
                raise _as_sqlite_error(exc, self.db_path) from None
            raise

    def _begin_with(self, text: str, params):
        """BEGIN, the write lock and the first statement as one simple query; the cursor is left
        on the statement's result."""
        from psycopg import ClientCursor

        self._pending = False
        cursor = ClientCursor(self.raw, row_factory=_row_factory)
        cursor.execute(f"{self._begin_write}; {text}", params)
        cursor.nextset()  # past BEGIN
        cursor.nextset()  # past the lock
        return cursor

    def executemany(self, sql: str, seq_of_params):
        self.flush_begin()
        plain_insert = _plain_insert(sql)
        if plain_insert is not None:  # many rows into one table: COPY, ten times faster
            table, columns = plain_insert
            self.copy_rows(table, columns, seq_of_params)
            return None
        text, order = translate(sql)
        rows = seq_of_params if order is None else (_reorder(p, order) for p in seq_of_params)
        cursor = self.raw.cursor()
        try:
            cursor.executemany(text, rows)
        except Exception as exc:
            import psycopg

            if isinstance(exc, psycopg.Error):
                raise _as_sqlite_error(exc, self.db_path) from None
            raise
        return cursor

    def stream(self, sql: str, params: object = (), size: int = 1000):
        """The query's rows as plain tuples from a server-side cursor, `size` at a time, so a
        listing of 1,000,000 rows holds one batch in memory (a plain cursor holds them all). A
        named cursor lives in a transaction: outside one, a read-only one opened for it."""
        import psycopg

        text, order = translate(sql)
        self.flush_begin()
        try:
            with contextlib.ExitStack() as stack:
                if not self.in_transaction:
                    stack.enter_context(self.raw.transaction())
                cursor = stack.enter_context(
                    self.raw.cursor(
                        name=f"eset2fa_stream_{next(_stream_ids)}", row_factory=psycopg_tuple_row()
                    )
                )
                cursor.itersize = size
                cursor.execute(text, _reorder(params, order) or ())
                yield from cursor
        except psycopg.Error as exc:
            raise _as_sqlite_error(exc, self.db_path) from None

    def cursor(self) -> _Cursor:
        """A cursor as sqlite3's: `row_factory = None` for plain tuples, execute, fetch."""
        return _Cursor(self)

    def copy_rows(self, table: str, columns: list[str], rows) -> int:
        """COPY rows into `table` (bulk loads: `db copy`); returns how many."""
        self.flush_begin()
        names = ", ".join(columns)
        count = 0
        try:
            with self.raw.cursor() as cursor:
                with cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
                        count += 1
        except Exception as exc:
            import psycopg

            if isinstance(exc, psycopg.Error):
                raise _as_sqlite_error(exc, self.db_path) from None
            raise
        return count

    def close(self) -> None:
        self.raw.close()


class _Cursor:
    __slots__ = ("conn", "row_factory", "_cursor")

    def __init__(self, conn: PgConnection) -> None:
        self.conn = conn
        self.row_factory = _row_factory
        self._cursor = None

    def execute(self, sql: str, params: object = ()):
        text, order = translate(sql)
        factory = self.row_factory or psycopg_tuple_row()
        self.conn.flush_begin()
        try:
            self._cursor = self.conn.raw.cursor(row_factory=factory)
            self._cursor.execute(text, _reorder(params, order) or ())
        except Exception as exc:
            import psycopg

            if isinstance(exc, psycopg.Error):
                raise _as_sqlite_error(exc, self.conn.db_path) from None
            raise
        return self

    def fetchone(self):
        return self._cursor.fetchone()

    def fetchmany(self, size: int = 1):
        return self._cursor.fetchmany(size)

    def fetchall(self):
        return self._cursor.fetchall()

    def __iter__(self):
        return iter(self._cursor)

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def description(self):
        return self._cursor.description

    def close(self) -> None:
        if self._cursor is not None:
            self._cursor.close()


_stream_ids = itertools.count(1)


def psycopg_tuple_row():
    from psycopg.rows import tuple_row

    return tuple_row


def connect(location: PgLocation) -> PgConnection:
    """A connection with search_path set to the store's schema; StorageError (exit 9) when the
    server cannot be reached, refuses the login or has no such database: one line, no password.
    """
    psycopg = import_psycopg()
    options = f"-c search_path={location.schema} -c lock_timeout={LOCK_TIMEOUT}"
    try:
        raw = psycopg.connect(
            location.dsn,
            autocommit=True,
            connect_timeout=CONNECT_TIMEOUT,
            options=options,
            application_name="eset2fa",
        )
    except psycopg.Error as exc:
        raise StorageError(
            f"Cannot connect to the PostgreSQL store {location}: {_reason(exc, location)}.",
            "Check the URL in --db or ESET2FA_DB, that the server runs and the database exists, "
            "and the password (URL, PGPASSWORD or ~/.pgpass).",
        ) from None
    return PgConnection(raw, location)


# -- opening: refuse what is not ours, create, migrate ------------------------------------------


def _relations(conn: PgConnection, schema: str) -> dict[str, str]:
    """Tables, views and the like in `schema`, by name (their relkind)."""
    rows = conn.execute(
        "SELECT c.relname, c.relkind FROM pg_catalog.pg_class c"
        " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = ? AND c.relkind IN ('r', 'v', 'm', 'f', 'p')",
        (schema,),
    ).fetchall()
    return dict(rows)


def expected_tables(version: int) -> set[str]:
    from eset2fa.db.schema import expected_objects

    names = {name for (type_, name) in expected_objects(version) if type_ == "table"}
    return names | {IDENTITY_TABLE}


def inspect(conn: PgConnection, location: PgLocation) -> int:
    """The schema version of the store in the location's schema (0: no store there yet),
    refusing a schema that holds tables eset2fa did not create or a newer schema."""
    from eset2fa.db.migrations import LATEST_VERSION

    schema = location.schema
    found = _relations(conn, schema)
    if IDENTITY_TABLE not in found:
        if found:
            raise StorageError(
                f"The schema {schema} of {location} holds tables eset2fa did not create "
                f"({', '.join(sorted(found)[:5])}).",
                "Point --db at another database, or add ?schema=NAME to the URL to use a schema "
                "of eset2fa's own; nothing was changed.",
            )
        return 0
    row = conn.execute(f"SELECT application_id, schema_version FROM {IDENTITY_TABLE}").fetchone()
    if row is None or row[0] != APPLICATION_ID:
        raise StorageError(
            f"The schema {schema} of {location} belongs to another application.",
            "Point --db at an eset2fa store; nothing was changed.",
        )
    version = row[1]
    if version > LATEST_VERSION:
        raise StorageError(
            f"The store at {location} has schema version {version}; this eset2fa knows up to "
            f"{LATEST_VERSION}.",
            "Upgrade eset2fa to a version that knows this schema; nothing was changed.",
        )
    foreign = sorted(set(found) - expected_tables(version))
    if foreign:
        raise StorageError(
            f"The schema {schema} of {location} holds tables eset2fa did not create "
            f"({', '.join(foreign[:5])}).",
            "Move them to another schema; nothing was changed.",
        )
    return version


def schema_version(conn: PgConnection) -> int:
    return conn.execute(f"SELECT schema_version FROM {IDENTITY_TABLE}").fetchone()[0]


def migrate(conn: PgConnection, location: PgLocation) -> list[str]:
    """Create the schema if needed and apply pending migrations, all in one transaction
    (PostgreSQL's DDL is transactional); concurrent migrators queue on an advisory lock."""
    from eset2fa.clock import now_iso
    from eset2fa.db.migrations import LATEST_VERSION, MIGRATIONS

    schema = location.schema
    conn.raw.execute("BEGIN")
    try:
        conn.execute("SELECT pg_advisory_xact_lock(?)", (lock_key(schema),))
        version = inspect(conn, location)  # again, under the lock
        applied = []
        if version == 0:
            conn.raw.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            conn.raw.execute(
                "CREATE COLLATION IF NOT EXISTS nocase"
                " (provider = icu, locale = 'und-u-ks-level2', deterministic = false)"
            )
            for statement in _FUNCTIONS:
                conn.raw.execute(statement)
            conn.raw.execute(
                f"CREATE TABLE {IDENTITY_TABLE} ("
                " application_id BIGINT NOT NULL, schema_version INTEGER NOT NULL,"
                " created_at TEXT NOT NULL)"
            )
            conn.execute(
                f"INSERT INTO {IDENTITY_TABLE} (application_id, schema_version, created_at)"
                " VALUES (?, 0, ?)",
                (APPLICATION_ID, now_iso()),
            )
        for name, step in MIGRATIONS[version:]:
            step(conn)
            conn.execute(
                "INSERT INTO schema_migrations (name, applied_at) VALUES (?, ?)", (name, now_iso())
            )
            applied.append(name)
        conn.execute(f"UPDATE {IDENTITY_TABLE} SET schema_version = ?", (LATEST_VERSION,))
    except BaseException:
        conn.raw.execute("ROLLBACK")
        raise
    conn.raw.execute("COMMIT")
    return applied


# SQLite's JSON functions the db modules use in listings, in the store's schema.
_FUNCTIONS = (
    "CREATE FUNCTION json_quote(value anyelement) RETURNS text LANGUAGE sql IMMUTABLE AS"
    " $$ SELECT coalesce(to_json(value)::text, 'null') $$",
    "CREATE FUNCTION json_quote(value text) RETURNS text LANGUAGE sql IMMUTABLE AS"
    " $$ SELECT coalesce(to_json(value)::text, 'null') $$",
    "CREATE FUNCTION json_valid(value text) RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS"
    " $$ BEGIN PERFORM value::json; RETURN true; EXCEPTION WHEN others THEN RETURN false; END $$",
)


def open_pg_store(location: PgLocation, *, create: bool):
    from eset2fa.db.connection import Store, no_store
    from eset2fa.db.migrations import LATEST_VERSION

    conn = connect(location)
    try:
        try:
            version = inspect(conn, location)
            if version == 0 and not create:
                raise no_store(location, f" (no eset2fa tables in schema {location.schema})")
            created = False
            if version < LATEST_VERSION:
                migrate(conn, location)
                created = version == 0
        except Exception as exc:
            import psycopg

            if not isinstance(exc, sqlite3.Error | psycopg.Error):
                raise
            if isinstance(exc, psycopg.Error):
                exc = _reason(exc, location)
            raise StorageError(
                f"Cannot open the PostgreSQL store {location}: {exc}.",
                "Check that the role may create and use the schema; nothing was changed.",
            ) from None
    except BaseException:
        conn.close()
        raise
    return Store(conn, location, created)


def drop_store(store) -> None:
    """Drop what `migrate` created in the store's schema, and the schema if nothing else is
    left in it (a `db copy` into a new schema that failed); closes the store."""
    from eset2fa.db.tables import layout

    conn = store.conn
    schema = store.path.schema
    try:
        conn.flush_begin()
        if conn.in_transaction:
            conn.raw.execute("ROLLBACK")
        conn.raw.execute("BEGIN")
        for table in reversed(layout()):
            conn.raw.execute(f"DROP TABLE IF EXISTS {table.name}")
        conn.raw.execute(f"DROP TABLE IF EXISTS {IDENTITY_TABLE}")
        conn.raw.execute("DROP COLLATION IF EXISTS nocase")
        conn.raw.execute("DROP FUNCTION IF EXISTS json_quote(anyelement), json_quote(text)")
        conn.raw.execute("DROP FUNCTION IF EXISTS json_valid(text)")
        conn.raw.execute("COMMIT")
        left = conn.execute(
            "SELECT count(*) FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n"
            " ON n.oid = c.relnamespace WHERE n.nspname = ?",
            (schema,),
        ).fetchone()[0]
        if not left:
            conn.raw.execute(f'DROP SCHEMA IF EXISTS "{schema}"')
    finally:
        conn.close()


def open_snapshot(store) -> PgConnection:
    """A second connection holding a REPEATABLE READ, READ ONLY transaction whose snapshot is
    taken now (eset2fa.db.connection.open_snapshot). PostgreSQL takes the snapshot at the first
    statement: opened while `store` holds the write lock and has written nothing yet, it sees
    what that transaction saw (nobody else can commit meanwhile)."""
    store.conn.flush_begin()  # the write lock is held from here
    conn = connect(store.path)
    try:
        conn.raw.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        conn.execute("SELECT 1 FROM users LIMIT 1").fetchall()  # the snapshot starts here
    except BaseException:
        conn.close()
        raise
    return conn


def holds_store(location: PgLocation) -> bool:
    """Whether an eset2fa store is at `location` (for `init`, which refuses an existing one)."""
    conn = connect(location)
    try:
        return inspect(conn, location) > 0
    finally:
        conn.close()
