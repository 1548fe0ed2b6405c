"""File-level backup helpers: an online snapshot copy, integrity checks, atomic private files.

Nothing here knows about manifests, retention or the audit log (`eset2fa.ops.backups` does); these
are the SQLite and file-system steps that make a backup consistent and crash-safe:

- the copy is taken with SQLite's online backup API inside ONE read transaction on the source, so
  it is a consistent snapshot even when copied in page steps, and (WAL mode) other processes keep
  writing meanwhile: a writer never restarts or blocks the copy, and the copy never blocks it;
- every file is first written under a temporary name in its final directory, fsynced, checked, and
  only then renamed: a crash or SIGKILL leaves a `.<name>.partial-<pid>` file, never a half-written
  file under a final name.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from eset2fa.db.connection import BUSY_TIMEOUT_SECONDS
from eset2fa.errors import StorageError

PARTIAL_MARK = ".partial-"
# Pages copied per backup step (4 KiB pages: 16 MiB). Steps only pace the progress callback; the
# snapshot stays consistent because the source read transaction spans all of them.
DEFAULT_STEP_PAGES = 4096

Progress = Callable[[int, int], None]  # (pages copied, total pages)


@dataclass(frozen=True)
class SnapshotFacts:
    """What the copied snapshot contained, read in the same read transaction as the copy."""

    application_id: int
    schema_version: int
    users: int
    key_fingerprint: str | None


def partial_path(final: Path) -> Path:
    """The temporary name a file is written under before it is renamed to `final`."""
    return final.with_name(f".{final.name}{PARTIAL_MARK}{os.getpid()}")


def is_partial_name(name: str) -> bool:
    return name.startswith(".") and PARTIAL_MARK in name


def create_private_file(path: Path) -> int:
    """Create `path` exclusively with mode 0600 (whatever the umask) and return its descriptor."""
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    os.fchmod(fd, 0o600)
    return fd


def fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    """Make a rename in `path` durable (no-op where directories cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_atomically(final: Path, data: bytes) -> None:
    """Write `data` to `final` (mode 0600): temporary name, fsync, rename, fsync the directory."""
    tmp = partial_path(final)
    fd = create_private_file(tmp)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(final.parent)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def header(conn: sqlite3.Connection) -> tuple[int, int]:
    """(application_id, user_version) from the file header: whose file it is, which schema."""
    app_id = conn.execute("PRAGMA application_id").fetchone()[0]
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    return app_id, version


def _snapshot_facts(conn: sqlite3.Connection) -> SnapshotFacts:
    app_id, version = header(conn)
    users = conn.execute("SELECT count(*) FROM users").fetchone()[0]
    row = conn.execute("SELECT value FROM meta WHERE key = 'key_fingerprint'").fetchone()
    return SnapshotFacts(app_id, version, users, row[0] if row else None)


def copy_snapshot(
    source: Path,
    dest: Path,
    *,
    pages: int = DEFAULT_STEP_PAGES,
    progress: Progress | None = None,
) -> SnapshotFacts:
    """Copy a consistent snapshot of the database at `source` into the new file `dest` (0600).

    `dest` must not exist; it is left in rollback-journal mode (one self-contained file, so its
    checksum covers everything) and fsynced. The caller renames it into place.

    A PostgreSQL store is written as the same kind of file (`_pg_snapshot`).
    """
    if not isinstance(source, Path | str):
        return _pg_snapshot(source, dest)
    src = sqlite3.connect(source, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None)
    try:
        # One read transaction around the facts and every backup step: all of them see the same
        # snapshot, and SQLite does not restart the copy when another process commits meanwhile.
        src.execute("BEGIN")
        facts = _snapshot_facts(src)
        os.close(create_private_file(dest))
        out = sqlite3.connect(dest, isolation_level=None)
        try:
            # The destination is a scratch file until renamed: no journal, no syncs while copying;
            # it is fsynced once at the end.
            out.execute("PRAGMA journal_mode = OFF")
            out.execute("PRAGMA synchronous = OFF")

            def step(_status: int, remaining: int, total: int) -> None:
                if progress is not None:
                    progress(total - remaining, total)

            src.backup(out, pages=pages, progress=step)
            # The copied header says WAL (like the source); a backup is one standalone file.
            out.execute("PRAGMA journal_mode = DELETE")
        finally:
            out.close()
        src.execute("COMMIT")
    finally:
        src.close()
    fsync_path(dest)
    return facts


def _pg_snapshot(source, dest: Path) -> SnapshotFacts:
    """A PostgreSQL store as an SQLite backup file: one REPEATABLE READ transaction reads every
    table (one snapshot of all of them, while other nodes keep writing), and the file gets the
    schema the migrations give an SQLite store of the same version, so the backup is checked,
    listed and restored like any other (and can be restored into either backend).

    Why not pg_dump: its output needs a pg_dump of the server's major version on this machine
    and a psql to restore, cannot be checked against eset2fa's schema or the key before anything
    is replaced, and would be a second backup format to list, verify and document.
    """
    from eset2fa.db import tables
    from eset2fa.db.migrations import MIGRATIONS
    from eset2fa.db.pg import APPLICATION_ID, connect, schema_version

    src = connect(source)
    try:
        src.execute("BEGIN")  # REPEATABLE READ on PostgreSQL (eset2fa.db.pg)
        version = schema_version(src)
        users = src.execute("SELECT count(*) FROM users").fetchone()[0]
        row = src.execute("SELECT value FROM meta WHERE key = 'key_fingerprint'").fetchone()
        os.close(create_private_file(dest))
        out = sqlite3.connect(dest, isolation_level=None)
        try:
            out.execute("PRAGMA journal_mode = OFF")  # a scratch file until renamed
            out.execute("PRAGMA synchronous = OFF")
            out.execute("BEGIN")
            for _name, step in MIGRATIONS[:version]:
                step(out)
            for table in tables.layout(version):
                tables.write(out, table, tables.rows(src, table))
            out.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            out.execute(f"PRAGMA user_version = {version}")
            out.execute("COMMIT")
            out.execute("PRAGMA journal_mode = DELETE")
        finally:
            out.close()
        src.execute("ROLLBACK")
    finally:
        src.close()
    fsync_path(dest)
    return SnapshotFacts(APPLICATION_ID, version, users, row[0] if row else None)


def load_into(location, backup: Path) -> None:
    """Replace every row of the PostgreSQL store at `location` with the rows of the (validated,
    up-to-date) SQLite file `backup`, in one transaction: all of it or nothing."""
    from eset2fa.db import tables
    from eset2fa.db.pg import connect

    dst = connect(location)
    src = open_read_only(backup)
    try:
        dst.execute("BEGIN IMMEDIATE")
        try:
            layout = tables.layout()
            for table in reversed(layout):
                tables.clear(dst, table)
            for table in layout:
                tables.write(dst, table, tables.rows(src, table))
            tables.advance_identities(dst)
        except BaseException:
            dst.execute("ROLLBACK")
            raise
        dst.execute("COMMIT")
    finally:
        src.close()
        dst.close()


def open_read_only(path: Path) -> sqlite3.Connection:
    """Open a database file read-only (URI mode=ro): validating it never changes it."""
    uri = Path(os.path.abspath(path)).as_uri() + "?mode=ro"
    conn = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None)
    conn.row_factory = sqlite3.Row
    return conn


_BAD_FILE_HINT = "Use another backup (`eset2fa db backups`)."


def verify_file(
    path: Path, *, quick: bool = False, subject: str | None = None, hint: str = _BAD_FILE_HINT
) -> None:
    """Refuse (StorageError) a file that is not a readable, intact SQLite database.

    `quick` runs PRAGMA quick_check (b-tree structure, not index contents) instead of the full
    integrity_check, which on a million-user store costs seconds. `subject` names the file in the
    error (the path a person gave, not a temporary copy).
    """
    shown = subject or str(path)
    try:
        conn = open_read_only(path)
        try:
            check_integrity(conn, quick=quick, subject=shown, hint=hint)
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise unreadable(shown, exc, hint) from None


def check_integrity(
    conn: sqlite3.Connection, *, quick: bool = False, subject: str, hint: str = _BAD_FILE_HINT
) -> None:
    """`verify_file` on an open connection (sqlite3.DatabaseError if it cannot even be read)."""
    pragma = "quick_check" if quick else "integrity_check"
    rows = [row[0] for row in conn.execute(f"PRAGMA {pragma}")]
    if rows != ["ok"]:
        raise StorageError(f"{subject} fails SQLite's {pragma}: {'; '.join(rows[:3])}.", hint)


def unreadable(
    subject: str, exc: sqlite3.DatabaseError, hint: str = _BAD_FILE_HINT
) -> StorageError:
    return StorageError(
        f"{subject} is not a readable SQLite database ({exc}): corrupt, truncated or not a "
        "database.",
        hint,
    )


def copy_private(source: Path, dest: Path) -> None:
    """Copy a file byte for byte into the new file `dest` (mode 0600), fsynced."""
    fd = create_private_file(dest)
    with os.fdopen(fd, "wb") as out, open(source, "rb") as src:
        while chunk := src.read(1 << 20):
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())


def checkpoint(path: Path) -> None:
    """Fold the WAL of the database at `path` into its main file and empty the -wal (TRUNCATE).

    sqlite3.DatabaseError when the file is too damaged to checkpoint.
    """
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


def to_wal_mode(path: Path) -> None:
    """Put a (backup) file into WAL mode like a live store; it is fsynced and left without -wal."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
    finally:
        conn.close()
    fsync_path(path)
