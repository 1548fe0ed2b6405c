"""Opening the store: validate before touching, create on first use, migrate, set pragmas.

A file that is not an eset2fa database (not SQLite, another application's SQLite file, a newer
schema) is refused before anything is written to it, so the file stays byte-for-byte unchanged.
"""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

from eset2fa.db.migrations import LATEST_VERSION, MIGRATIONS
from eset2fa.errors import StorageError

APPLICATION_ID = 0x45324641  # "E2FA": marks the file as ours in the SQLite header
BUSY_TIMEOUT_SECONDS = 30.0

_RESTORE_HINT = "Check the path, or restore a backup with `eset2fa db restore`."


class _WriteTransaction:
    # A plain class, not @contextmanager: this wraps every authentication attempt, and the
    # generator machinery cost about as much as the BEGIN and COMMIT statements themselves.
    __slots__ = ("conn",)

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type, exc, traceback) -> bool:
        self.conn.execute("ROLLBACK" if exc_type is not None else "COMMIT")
        return False


class _JoinedWrite(_WriteTransaction):
    """A write transaction, or nothing when the connection is already inside one."""

    __slots__ = ("own",)

    def __enter__(self) -> sqlite3.Connection:
        self.own = not self.conn.in_transaction
        if self.own:
            self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type, exc, traceback) -> bool:
        if self.own:
            self.conn.execute("ROLLBACK" if exc_type is not None else "COMMIT")
        return False


def joined_write(conn: sqlite3.Connection) -> _WriteTransaction:
    """`with joined_write(conn):` runs in the caller's write transaction if there is one, else in
    its own (for steps such as creating the key that may happen inside a larger change or alone).
    """
    return _JoinedWrite(conn)


class Store:
    """An open eset2fa database: an autocommit sqlite3 connection plus explicit transactions."""

    def __init__(self, conn: sqlite3.Connection, path: Path, created: bool) -> None:
        self.conn = conn
        self.path = path
        self.created = created  # True when this process created the file (first use)
        # What the last verification on this connection may leave for the next one (the policy
        # and the audit chain's last link, checked against data_version): eset2fa.twofactor.totp.
        self.verify_memo = None

    def write(self) -> _WriteTransaction:
        """A write transaction taken up front (BEGIN IMMEDIATE): read-modify-write never races.

        `with store.write() as conn:` commits at the end of the block, rolls back on any exception.
        """
        return _WriteTransaction(self.conn)

    def schema_version(self) -> int:
        return self.conn.execute("PRAGMA user_version").fetchone()[0]

    def close(self) -> None:
        self.conn.close()


class StoreConnection(sqlite3.Connection):
    """The store's connection: sqlite3's, plus the database path and weak references.

    Code that is handed only the connection (the audit chain appends its rows inside the caller's
    transaction) finds the store's key through these: `db_path` locates the key file, and the
    loaded key is cached per connection in a weak mapping (eset2fa.secrets.keys).
    """

    __slots__ = ("__weakref__", "db_path")


def _connect(path: Path, *, must_exist: bool = False) -> sqlite3.Connection:
    target: str | Path = path
    if must_exist:
        # SQLite creates a missing file on connect; mode=rw makes it fail instead, so a file
        # removed after the caller checked it is an error, not a new empty database.
        name = str(path).replace("%", "%25").replace("?", "%3f").replace("#", "%23")
        if name.startswith("//"):  # "file://x" would name a host
            name = "/" + name.lstrip("/")
        target = f"file:{name}?mode=rw"
    conn = sqlite3.connect(
        target,
        timeout=BUSY_TIMEOUT_SECONDS,
        isolation_level=None,
        check_same_thread=False,
        uri=must_exist,
        factory=StoreConnection,
    )
    conn.db_path = path
    conn.row_factory = sqlite3.Row
    return conn


def _create_file(path: Path) -> bool:
    """Create an empty database file with mode 0600; False if another process won the race."""
    from eset2fa.paths import ensure_private_dir

    try:
        ensure_private_dir(path.parent)
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError as exc:
        if exc.filename is not None and Path(exc.filename) != path:
            raise _cannot_create(path, exc) from None  # a parent is a file, not a directory
        return False
    except OSError as exc:
        raise _cannot_create(path, exc) from None
    try:
        os.fchmod(fd, 0o600)  # the mode given to open() is filtered through the umask
    finally:
        os.close(fd)
    return True


def _make_private(path: Path) -> None:
    """An existing empty file about to become the store (`touch`, `mktemp`): owner-only first."""
    try:
        os.chmod(path, 0o600)
    except OSError as exc:
        raise _cannot_create(path, exc) from None


def no_store(path: Path, why: str = "") -> StorageError:
    """The one error for "there is no store here" (exit 9): a read never creates one."""
    return StorageError(
        f"No eset2fa database at {path}{why}.",
        "Check --db and ESET2FA_DB; create a store with `eset2fa init`, or restore a backup "
        "with `eset2fa db restore BACKUP`.",
    )


def require_store_file(path: Path) -> None:
    """Refuse a path that holds no store: missing, a directory, or an empty file (exit 9).

    Touches nothing: what a read-only command checks before it opens the file (SQLite would
    create a missing file, and happily treat an empty one as an empty database).
    """
    try:
        info = path.stat()
    except FileNotFoundError:
        raise no_store(path) from None
    except NotADirectoryError:
        raise no_store(path, " (a parent of it is a file, not a directory)") from None
    if stat.S_ISDIR(info.st_mode):
        raise StorageError(f"{path} is a directory, not a database file.", _RESTORE_HINT)
    if info.st_size == 0:
        raise no_store(path, " (the file is empty)")


def _cannot_create(path: Path, exc: OSError) -> StorageError:
    return StorageError(
        f"Cannot create the database {path}: {exc.strerror}.",
        "Check that its directory exists or can be created and is writable, or point --db or "
        "ESET2FA_DB at another path.",
    )


def _inspect(conn: sqlite3.Connection, path: Path) -> tuple[int, int]:
    """(application_id, user_version), refusing non-databases and foreign or newer stores."""
    try:
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        has_tables = conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchone() is not None
    except sqlite3.DatabaseError as exc:
        raise StorageError(
            f"{path} is not a readable SQLite database ({exc}).", _RESTORE_HINT
        ) from exc
    if app_id != APPLICATION_ID and (app_id != 0 or has_tables):
        raise StorageError(
            f"{path} is an SQLite database of another application, not an eset2fa store.",
            "Point --db or ESET2FA_DB at an eset2fa database, or at a new path to create one.",
        )
    if version > LATEST_VERSION:
        raise StorageError(
            f"{path} has schema version {version}; this eset2fa knows up to {LATEST_VERSION}.",
            "Upgrade eset2fa to a version that knows this schema; the file was not changed.",
        )
    return app_id, version


def open_store(path: Path, *, create: bool = True) -> Store:
    """Open the store at `path`, migrating it to the latest schema.

    With create=True a missing or empty file becomes a new store (mode 0600, in 0700 directories
    made as needed), `created` says so. With create=False nothing is created: a missing path, an
    empty file or an SQLite file without eset2fa's schema is StorageError (exit 9), untouched.
    """
    path = Path(path)
    created = False
    if not create:
        require_store_file(path)
    elif not path.exists():
        created = _create_file(path)
    elif path.is_dir():
        raise StorageError(f"{path} is a directory, not a database file.", _RESTORE_HINT)
    elif path.stat().st_size == 0:
        _make_private(path)

    try:
        conn = _connect(path, must_exist=not create)
    except sqlite3.Error as exc:
        if not create and not path.exists():
            raise no_store(path) from None  # removed since it was checked
        raise StorageError(f"Cannot open {path}: {exc}.", "Check the file's permissions.") from exc
    try:
        app_id, version = _inspect(conn, path)
        if version == 0 and not create:
            raise no_store(path, " (an SQLite file without eset2fa's schema)")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute(
            "PRAGMA synchronous = FULL"
        )  # durable: a confirmed lockout survives power loss
        if version < LATEST_VERSION:
            migrate(conn)
            created = created or version == 0
    except BaseException:
        conn.close()
        raise
    return Store(conn, path, created)


def migrate(conn: sqlite3.Connection) -> list[str]:
    """Apply pending migrations in one write transaction; returns the names applied."""
    from eset2fa.clock import now_iso

    if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
        conn.execute("PRAGMA journal_mode = WAL")  # persistent; cannot run inside a transaction
    conn.execute("BEGIN IMMEDIATE")
    try:
        # Re-read under the write lock: another process may have migrated meanwhile.
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > LATEST_VERSION:
            raise StorageError("The database was upgraded by a newer eset2fa meanwhile.")
        applied = []
        for name, step in MIGRATIONS[version:]:
            step(conn)
            conn.execute(
                "INSERT INTO schema_migrations (name, applied_at) VALUES (?, ?)", (name, now_iso())
            )
            applied.append(name)
        conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        conn.execute(f"PRAGMA user_version = {LATEST_VERSION}")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return applied


def applied_migrations(conn: sqlite3.Connection) -> list[dict[str, str]]:
    rows = conn.execute("SELECT name, applied_at FROM schema_migrations ORDER BY name").fetchall()
    return [dict(row) for row in rows]


def open_snapshot(store: Store) -> sqlite3.Connection:
    """A second, read-only connection to the store holding a read transaction: it keeps seeing
    the store as it is now, whatever is committed later (WAL readers keep their snapshot).

    Opened while `store` holds its write lock and has written nothing yet, it sees exactly what
    that transaction saw: `user export --all` audits the users it exports, commits, and then
    streams those same users from the snapshot. The caller closes it.
    """
    conn = _connect(store.path, must_exist=True)
    try:
        conn.execute("PRAGMA query_only = ON")
        conn.execute("BEGIN")
        conn.execute("SELECT 1 FROM users LIMIT 1").fetchall()  # the snapshot starts here
    except BaseException:
        conn.close()
        raise
    return conn
