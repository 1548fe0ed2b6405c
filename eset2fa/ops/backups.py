"""Verified backups of the store, their manifests and retention, and restoring one.

A backup is a consistent SQLite snapshot (online backup API, while other processes keep writing),
written under a temporary name, fsynced, checked and only then renamed, mode 0600. The copy is
checked with `quick_check` (every page readable, every b-tree well formed: what a copy can get
wrong); the full `integrity_check` (index contents against their tables, constraints) runs where
it protects something: `db restore` before a backup replaces the store, and `db backups --verify`.
`check="full"` runs it at backup time too. Beside
it, `<backup>.json` is its manifest: time, reason, schema version, key fingerprint, SHA-256, user
count and eset2fa version.

Why a JSON sidecar and not a table in the store: a manifest must be readable when the live database
is corrupt or gone (that is when backups matter), must travel with a backup copied elsewhere
(`--to`, another host), and must not be rolled back by the very restore it describes.

The encryption key is NOT in a backup (README, "Backups and restore"): only its fingerprint is, so a
restore can say which key a backup needs.

A restore may be handed a file someone else made, so it takes only what could have come from this
store unchanged: a manifest that matches the file (unless `--no-manifest`), an intact SQLite file of
eset2fa's own schema (no trigger, view, table or index eset2fa did not create: `eset2fa.db.schema`)
and a key check value that the current key opens. A store made elsewhere has no check value, or
one of another key, so it cannot replace this one (and with it the Administrator's password).
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from eset2fa import __version__
from eset2fa.accounts.actors import Actor, local_operator
from eset2fa.accounts.permissions import require_admin
from eset2fa.db import Store
from eset2fa.db import schema as schema_rows
from eset2fa.db import snapshot as files
from eset2fa.db import users as user_rows
from eset2fa.errors import EncryptionKeyError, NotFound, StateConflict, StorageError, UsageError
from eset2fa.ops import audit_chain

BACKUP_DIRNAME = "backups"
MANIFEST_FORMAT = 1
DEFAULT_REASON = "manual"
_SLUG_MAX = 40
_STAMP_FORMAT = "%Y%m%dT%H%M%S"
_BACKUP_NAME = re.compile(r"(?P<stem>.+)-(?P<stamp>\d{8}T\d{6}\.\d{6}Z)-(?P<slug>[a-z0-9-]+)\.db")
_LIST_HINT = "List the backups with `eset2fa db backups`, or give another file."


@dataclass(frozen=True)
class BackupManifest:
    """What `<backup>.json` records about one backup."""

    format: int
    file: str  # the backup's file name (the manifest sits beside it)
    created_at: str  # ISO 8601 UTC
    reason: str
    schema_version: int
    key_fingerprint: str | None  # of the key that opens the backup's secrets; None: no key yet
    sha256: str
    size: int
    users: int
    eset2fa_version: str
    source: str  # the database the backup was taken from

    def to_json(self) -> bytes:
        return (json.dumps(asdict(self), indent=2) + "\n").encode()


def backup_dir(db_path: Path) -> Path:
    """The default backup folder: `backups/` beside the database."""
    return Path(db_path).parent / BACKUP_DIRNAME


def manifest_path(backup_path: Path) -> Path:
    return backup_path.with_name(backup_path.name + ".json")


def reason_slug(reason: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", reason.lower()).strip("-")[:_SLUG_MAX].strip("-")
    return slug or DEFAULT_REASON


def _stamp(moment: datetime) -> str:
    """Sortable as text, unique enough for back-to-back backups (microseconds)."""
    return moment.strftime(_STAMP_FORMAT) + f".{moment.microsecond:06d}Z"


def _final_path(db_path: Path, to: Path | None, reason: str, moment: datetime) -> tuple[Path, bool]:
    """(where the backup goes, whether that is the default folder, where retention applies)."""
    name = f"{db_path.stem}-{_stamp(moment)}-{reason_slug(reason)}.db"
    db_path = Path(os.path.abspath(db_path))  # absolute paths in manifests, audit and output
    if to is None:
        folder = backup_dir(db_path)
        from eset2fa.paths import ensure_private_dir

        ensure_private_dir(folder)
        return folder / name, True
    to = Path(os.path.abspath(Path(to).expanduser()))
    if to.is_dir():
        return to / name, False
    if to.exists() or manifest_path(to).exists():
        raise StateConflict(
            f"{to} already exists; a backup never overwrites a file.",
            "Give a new file name, or a directory to put the backup in.",
        )
    if not to.parent.is_dir():
        raise NotFound(f"The directory {to.parent} does not exist.", "Create it first.")
    return to, False


def create_backup(
    store: Store,
    reason: str = DEFAULT_REASON,
    to: Path | None = None,
    *,
    actor: Actor | None = None,
    check: str = "quick",
    pages: int = files.DEFAULT_STEP_PAGES,
    progress: files.Progress | None = None,
) -> dict:
    """Take a verified backup of `store`; returns its manifest plus `path` and `removed`.

    `check` is "quick" (PRAGMA quick_check: every page and b-tree, not index contents against
    their tables) or "full" (PRAGMA integrity_check, which also compares them: seconds on a large
    store; restore runs it in any case). The SHA-256 for the manifest is computed while the check
    runs (both release the GIL). The default folder keeps the newest `backup.keep`
    backups of this database; a backup written elsewhere with `to` is never pruned.

    Only the Administrator and the local operator may write one elsewhere (`to`): a backup holds
    every password hash and sealed secret, and a copy anywhere is a copy of the whole store. A
    delegated user's backup stays in the default folder beside the database, owner-only like it.
    """
    from eset2fa.ops import settings

    if check not in ("full", "quick"):
        raise UsageError(f"Unknown check {check!r}.", "Use 'full' or 'quick'.")
    actor = actor or local_operator()
    if to is not None:
        require_admin(actor, "write a backup to another place (--to)")
    reason = reason.strip() or DEFAULT_REASON
    # The audit row written at the end is keyed with the store's key: without the key, fail now
    # (exit 9) rather than after a backup was written.
    from eset2fa.secrets import keys

    keys.for_store(store, create=True)
    moment = datetime.now(UTC)
    final, in_default_dir = _final_path(store.path, to, reason, moment)
    tmp = files.partial_path(final)
    try:
        facts = files.copy_snapshot(store.path, tmp, pages=pages, progress=progress)
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(1) as pool:
            digest = pool.submit(files.sha256_file, tmp)
            files.verify_file(
                tmp,
                quick=check == "quick",
                subject=f"The copy of {store.path}",
                hint="The database itself is damaged (the copy is page for page): run "
                "`eset2fa db check`, and restore an earlier backup with `eset2fa db restore`.",
            )
            sha256 = digest.result()
        manifest = BackupManifest(
            format=MANIFEST_FORMAT,
            file=final.name,
            created_at=moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            reason=reason,
            schema_version=facts.schema_version,
            key_fingerprint=facts.key_fingerprint,
            sha256=sha256,
            size=tmp.stat().st_size,
            users=facts.users,
            eset2fa_version=__version__,
            source=os.path.abspath(store.path),
        )
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    files.fsync_dir(final.parent)
    # Written after the backup: a crash in between leaves a backup without a manifest (listed as
    # such), never a manifest that describes a file that is not there.
    files.write_atomically(manifest_path(final), manifest.to_json())
    removed = prune(store) if in_default_dir else []
    with store.write() as conn:
        audit_chain.record(
            conn,
            actor.label,
            "db.backup",
            None,
            "ok",
            {"path": str(final), "reason": reason, "sha256": manifest.sha256},
        )
    keep = settings.get(store.conn, "backup.keep")
    return {**asdict(manifest), "path": str(final), "removed": removed, "keep": keep}


def _own_backups(db_path: Path) -> list[Path]:
    """This database's backups in the default folder, oldest first (names sort by time)."""
    folder = backup_dir(db_path)
    if not folder.is_dir():
        return []
    found = []
    for entry in folder.iterdir():
        match = _BACKUP_NAME.fullmatch(entry.name)
        if match and match["stem"] == db_path.stem and entry.is_file():
            found.append(entry)
    return sorted(found, key=lambda p: p.name)


def _remove_stale_partials(folder: Path) -> None:
    """Temporary files left by a backup process that was killed (its pid no longer runs)."""
    for entry in folder.iterdir():
        if not files.is_partial_name(entry.name):
            continue
        pid_text = entry.name.rsplit(files.PARTIAL_MARK, 1)[1].split("-")[0]
        if not pid_text.isdigit() or int(pid_text) == os.getpid():
            continue
        try:
            os.kill(int(pid_text), 0)
        except ProcessLookupError:
            entry.unlink(missing_ok=True)
        except OSError:
            pass  # running under another user: not ours to remove


def prune(store: Store) -> list[str]:
    """Retention: keep the newest `backup.keep` backups in the default folder; returns removed."""
    from eset2fa.ops import settings

    keep = settings.get(store.conn, "backup.keep")
    backups = _own_backups(store.path)
    removed = []
    for old in backups[: max(len(backups) - keep, 0)]:
        manifest_path(old).unlink(missing_ok=True)
        old.unlink(missing_ok=True)
        removed.append(str(old))
    if backups:
        _remove_stale_partials(backups[0].parent)
    return removed


def _read_manifest(path: Path) -> dict | None:
    try:
        data = json.loads(manifest_path(path).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _schema_problem(conn: sqlite3.Connection, version: int) -> str | None:
    """What in the file's schema eset2fa did not create at `version`, in a few words; None if all
    is eset2fa's own (tables, indexes, no triggers or views)."""
    diff = schema_rows.compare(conn, version)
    if not diff:
        return None
    found = (
        [f"{o.type} {o.name} (not eset2fa's)" for o in diff.unexpected]
        + [f"{o.type} {o.name} (altered)" for o in diff.altered]
        + [f"{o.type} {o.name} (missing)" for o in diff.missing]
    )
    more = f" and {len(found) - 3} more" if len(found) > 3 else ""
    return ", ".join(found[:3]) + more


def _store_problem(path: Path) -> tuple[str, str] | None:
    """(status, detail) if the file is not an eset2fa store this version could restore."""
    from eset2fa.db.connection import APPLICATION_ID, LATEST_VERSION

    try:
        conn = files.open_read_only(path)
        try:
            app_id, version = files.header(conn)
            if app_id != APPLICATION_ID:
                return "not an eset2fa store", "another application's SQLite file"
            if version > LATEST_VERSION:
                return (
                    "newer schema",
                    f"version {version}; this eset2fa knows up to {LATEST_VERSION}",
                )
            problem = _schema_problem(conn, version)
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        return "unreadable", str(exc)
    return ("foreign schema", problem) if problem else None


def describe_backup(path: Path, *, verify: bool = True, integrity: bool = False) -> dict:
    """One backup as listed: its manifest, and whether the file still matches it.

    With `verify`, the SHA-256 is recomputed and the schema compared with eset2fa's own (the
    checks restore makes short of the full integrity_check and the key): anything but "ok" is a
    backup that restore would refuse. With `integrity` too, SQLite's full integrity_check, as
    restore runs it (seconds per backup of a large store).
    """
    manifest = _read_manifest(path)
    entry = {
        "path": str(path),
        "file": path.name,
        "size": path.stat().st_size,
        "manifest": manifest is not None,
    }
    if manifest is None:
        entry["status"] = "no manifest"
        return entry
    for key in ("created_at", "reason", "schema_version", "key_fingerprint", "users", "sha256"):
        entry[key] = manifest.get(key)
    if not verify:
        entry["status"] = "unverified"
    elif manifest.get("size") != entry["size"] or files.sha256_file(path) != manifest.get("sha256"):
        entry["status"] = "checksum mismatch"
    elif problem := _store_problem(path):
        entry["status"], entry["detail"] = problem
    elif integrity and (damage := _integrity_problem(path)):
        entry["status"], entry["detail"] = "integrity check failed", damage
    else:
        entry["status"] = "ok"
    return entry


def _integrity_problem(path: Path) -> str | None:
    """What SQLite's full integrity_check finds wrong in the file, in a few words; None: ok."""
    try:
        files.verify_file(path, subject=path.name)
    except StorageError as error:
        return error.message
    return None


def list_backups(
    store: Store | Path, *, verify: bool = True, integrity: bool = False
) -> list[dict]:
    """The backups of a store (an open Store or just its path) in the default folder, newest first.

    A path is enough so that backups can be listed when the live database is corrupt. With
    `verify`, each file's SHA-256 is recomputed and its schema compared with eset2fa's; a problem
    is the entry's `status` ("checksum mismatch", "foreign schema", ...); with `integrity` each
    also gets SQLite's full integrity_check ("integrity check failed").
    """
    db_path = Path(os.path.abspath(store.path if isinstance(store, Store) else store))
    return [
        describe_backup(p, verify=verify, integrity=integrity)
        for p in reversed(_own_backups(db_path))
    ]


# -- restore ------------------------------------------------------------------------------------

_NO_MANIFEST_HINT = (
    "Put the backup's manifest (<backup>.json) back beside it, or pass --no-manifest to restore "
    "it on the other checks alone."
)
_OTHER_BACKUP_HINT = "Use a backup eset2fa took of this store, unchanged; nothing was changed."


def _manifest_for_restore(backup_path: Path, *, required: bool) -> dict | None:
    """The backup's manifest; a missing one only when not `required`, a damaged one never."""
    where = manifest_path(backup_path)
    if not where.exists():
        if required:
            raise StorageError(
                f"{backup_path} has no manifest ({where.name}) to check it against.",
                _NO_MANIFEST_HINT,
            )
        return None
    manifest = _read_manifest(backup_path)
    if manifest is None or not isinstance(manifest.get("sha256"), str):
        raise StorageError(
            f"The manifest {where} cannot be read (not an eset2fa backup manifest).",
            "Put the backup's own manifest back, or move this file away and pass --no-manifest.",
        )
    return manifest


def _check_against_manifest(candidate: Path, manifest: dict, shown: Path) -> None:
    """The copy about to be swapped in is the file the manifest describes, byte for byte."""
    if (
        manifest.get("size") != candidate.stat().st_size
        or files.sha256_file(candidate) != manifest["sha256"]
    ):
        raise StorageError(
            f"{shown} no longer matches the SHA-256 in its manifest.",
            "The backup was changed or damaged since it was taken; use another one.",
        )


def _validate_candidate(candidate: Path, db_path: Path, shown: Path, manifest: dict | None) -> dict:
    """Refuse a file that is not an intact eset2fa store of eset2fa's own schema, holding a key
    check value that the current key opens, and (if there is one) matching its manifest.

    The cheap checks that say what the file is (header, schema objects) run before the full
    integrity_check, which would otherwise walk indexes and constraints the file itself defines.
    """
    from eset2fa.db.connection import APPLICATION_ID, LATEST_VERSION
    from eset2fa.secrets import keys

    if manifest is not None:
        _check_against_manifest(candidate, manifest, shown)
    try:
        conn = files.open_read_only(candidate)
        try:
            app_id, version = files.header(conn)
            if app_id != APPLICATION_ID:
                raise StorageError(
                    f"{shown} is not an eset2fa database (another application's SQLite file).",
                    _LIST_HINT,
                )
            if version > LATEST_VERSION:
                raise StorageError(
                    f"{shown} has schema version {version}; this eset2fa knows up to "
                    f"{LATEST_VERSION}.",
                    "Upgrade eset2fa before restoring this backup; nothing was changed.",
                )
            problem = _schema_problem(conn, version)
            if problem:
                raise StorageError(
                    f"{shown} holds schema objects eset2fa did not create: {problem}.",
                    _OTHER_BACKUP_HINT,
                )
            files.check_integrity(conn, subject=str(shown))
            if not keys.has_key(conn):
                # No check value: nothing ties the file to this store's key. A store made anywhere
                # (`eset2fa --db x.db init`) would replace every account, the Administrator's too.
                raise EncryptionKeyError(
                    f"{shown} has no encryption key check value, so nothing shows it is a backup "
                    "of this store.",
                    "Restore a backup taken after the store got its key (`eset2fa db backups` "
                    "shows its key_fingerprint); nothing was changed.",
                )
            try:
                # The current key: ESET2FA_KEY, the keyring entry of the backup's store id, or the
                # key file beside the live database, checked against the backup's check value.
                fingerprint = keys.load_key(conn, db_path).fingerprint
            except EncryptionKeyError as exc:
                raise EncryptionKeyError(
                    f"The current encryption key does not open {shown} ({exc.message})",
                    "Provide the key this backup was made with (its fingerprint is in the "
                    "backup's manifest): ESET2FA_KEY, the OS keyring, or <database>.key.",
                ) from None
            users = user_rows.count(conn)
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise files.unreadable(str(shown), exc, _LIST_HINT) from None
    if manifest is not None and (
        manifest.get("schema_version") != version or manifest.get("key_fingerprint") != fingerprint
    ):
        raise StorageError(
            f"{shown} does not match its manifest (schema version or key fingerprint).",
            "The manifest belongs to another backup or was edited; use another backup.",
        )
    return {"schema_version": version, "users": users, "key_fingerprint": fingerprint}


def _missing_parents(path: Path) -> list[Path]:
    """The directories above `path` that do not exist yet, nearest first."""
    missing = []
    for parent in path.parents:
        if parent.exists():
            break
        missing.append(parent)
    return missing


def _remove_with_sidecars(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(str(path) + suffix).unlink(missing_ok=True)


def _set_aside_live(db_path: Path, moment: datetime) -> Path | None:
    """Keep the live database beside itself as `<db>.replaced-<time>` (0600); None if absent."""
    if not db_path.exists():
        return None
    # Fold the WAL into the main file first, so the kept copy is complete and no WAL is left
    # behind to be replayed onto the restored file. A live file too damaged to checkpoint keeps
    # its -wal beside the copy instead (same suffix, so SQLite pairs them).
    try:
        files.checkpoint(db_path)
    except sqlite3.DatabaseError:
        pass
    kept = db_path.with_name(f"{db_path.name}.replaced-{_stamp(moment)}")
    for suffix in ("", "-wal"):
        source = Path(str(db_path) + suffix)
        if suffix and (not source.exists() or source.stat().st_size == 0):
            continue
        target = Path(str(kept) + suffix)
        files.copy_private(source, target)
    return kept


def restore_backup(
    store_path: Path,
    backup_path: Path,
    *,
    actor: Actor | None = None,
    require_manifest: bool = True,
) -> dict:
    """Replace the database at `store_path` with the backup at `backup_path`.

    Everything is validated before the live database is touched: the manifest (required unless
    `require_manifest` is False; one that is there is always checked), that it is an eset2fa store
    of a schema this eset2fa knows holding only eset2fa's own schema objects, SQLite's full
    integrity_check, and that it has a key check value the current key opens. The validated bytes
    are a private copy in the live database's directory, so what was checked is exactly what is
    swapped in (os.replace). The replaced database is kept as `<db>.replaced-<time>`. Only the
    Administrator and the local operator restore. Other eset2fa processes must not be using the
    store meanwhile (README).
    """
    from eset2fa.db import open_store

    actor = actor or local_operator()
    require_admin(actor, "restore a backup")
    db_path = Path(os.path.abspath(store_path))
    backup_path = Path(os.path.abspath(Path(backup_path).expanduser()))
    if not backup_path.is_file():
        raise NotFound(f"No backup file at {backup_path}.", _LIST_HINT)
    if backup_path.resolve() == db_path.resolve():
        raise UsageError("That is the live database itself, not a backup.", _LIST_HINT)
    manifest = _manifest_for_restore(backup_path, required=require_manifest)
    from eset2fa.paths import ensure_private_dir

    created_dirs = _missing_parents(db_path)
    ensure_private_dir(db_path.parent)  # restoring onto a new machine: no store there yet
    moment = datetime.now(UTC)
    tmp = files.partial_path(db_path)
    try:
        files.copy_private(backup_path, tmp)
        facts = _validate_candidate(tmp, db_path, backup_path, manifest)
        files.to_wal_mode(tmp)
        kept = _set_aside_live(db_path, moment)
        for suffix in ("-wal", "-shm", "-journal"):
            Path(str(db_path) + suffix).unlink(missing_ok=True)
        os.replace(tmp, db_path)
    except BaseException:
        _remove_with_sidecars(tmp)
        for folder in created_dirs:  # refused on a new machine: leave no empty folders behind
            try:
                folder.rmdir()
            except OSError:
                break
        raise
    files.fsync_dir(db_path.parent)
    store = open_store(db_path, create=False)  # migrates a backup from an older schema
    try:
        with store.write() as conn:
            audit_chain.record(
                conn,
                actor.label,
                "db.restore",
                None,
                "ok",
                {"backup": str(backup_path), "replaced": str(kept) if kept else None},
            )
        schema_version = store.schema_version()
    finally:
        store.close()
    return {
        "path": str(db_path),
        "backup": str(backup_path),
        "replaced": str(kept) if kept else None,
        "users": facts["users"],
        "backup_schema_version": facts["schema_version"],
        "schema_version": schema_version,
        "key_fingerprint": facts["key_fingerprint"],
    }
