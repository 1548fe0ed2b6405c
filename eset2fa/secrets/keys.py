"""The master key that encrypts secrets at rest (TOTP secrets, transport credentials).

Where the key comes from, in this order (README, "Encryption key"):
1. `ESET2FA_KEY`: the key itself, URL-safe base64 of 32 bytes (for containers and CI);
2. the OS keyring (`keyring`), service `eset2fa`, user `store-<store id>[-<key id>]`;
3. a key file, mode 0600 (for headless servers): `ESET2FA_KEY_FILE` when set, else beside the
   database file, `<database>.key`; one key per line, `<key id> <key>`, or the bare key for a
   store that names no key id. A PostgreSQL store has no file to sit beside: its key comes from
   ESET2FA_KEY, the keyring or ESET2FA_KEY_FILE, and every node that shares the store needs the
   same key (the check value, in the shared database, tells a node with another key).

A new store gets its key with its first audited change (creating the store is one), in the
keyring when a usable keyring backend exists, else in the key file; the store records which, so
later runs look there first (loading `keyring` costs ~0.2 s).

Key ids make rotation crash-safe (`db rekey`, eset2fa.ops.key_rotation): the store names the key it
uses (meta `key_id`; none for a key made before ids existed or never rotated), a new key is
stored under a new id before the transaction that switches to it, and the old one is removed only
after that transaction committed. At every instant the key the store names is where it says.

The check value (meta `key_check`) is sealed with the key, so a wrong key is reported as such and
never used to produce garbage. It also carries the store's integrity key: 32 random bytes from
which the keys of the audit chain and of one-time-code hashes are derived (HKDF,
eset2fa.secrets.integrity). Sealed under the master key, it is under that key's protection (only
who holds the master key can read it) while `db rekey` only re-seals it, so the chain and the code
hashes stay valid across rotations without being recomputed. A check value without it (version 1,
written before) marks a store whose chain and hashes are not keyed yet; the first time the key is
loaded for such a store they are re-keyed (`establish`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import sqlite3
import weakref
from collections.abc import Callable
from functools import cached_property
from pathlib import Path

from eset2fa.db import meta
from eset2fa.db.connection import joined_write
from eset2fa.errors import EncryptionKeyError
from eset2fa.secrets.sealer import Sealer

ENV_VAR = "ESET2FA_KEY"
FILE_ENV_VAR = "ESET2FA_KEY_FILE"
KEYRING_SERVICE = "eset2fa"
CHECK_CONTEXT = "eset2fa:key-check"
CHECK_V1 = b"eset2fa key check v1"  # written before the integrity key existed
CHECK_V2 = b"eset2fa key check v2:"  # followed by the 32-byte integrity key
INTEGRITY_BYTES = 32

_KEY_HINT = (
    "Provide the store's key: set ESET2FA_KEY, restore it to the OS keyring, or put the key file "
    "back beside the database (<database>.key, mode 0600) or where ESET2FA_KEY_FILE points."
)
_NO_FILE_HINT = (
    "A PostgreSQL store keeps no key file beside it: set ESET2FA_KEY or ESET2FA_KEY_FILE (the same "
    "key on every node), or use an OS keyring."
)


class MasterKey:
    """The store's master key, where it came from and its name; immutable.

    A plain class, not a frozen dataclass: `dataclasses` imports `inspect`, which cost every
    `auth verify` about 9 ms of start-up once the check stopped loading typer (which imports it
    anyway). The key bytes are never in its repr; equality ignores the integrity key."""

    __slots__ = ("key", "source", "key_id", "integrity", "__dict__")  # __dict__: cached_property

    def __init__(
        self,
        key: bytes,
        source: str,  # "env", "keyring" or "file"
        key_id: str | None = None,  # the name the store gives this key; None: the unnamed key
        integrity: bytes | None = None,  # the integrity key (version 2 check value); None until
        # `establish`
    ) -> None:
        for name, value in (
            ("key", key),
            ("source", source),
            ("key_id", key_id),
            ("integrity", integrity),
        ):
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value) -> None:
        raise AttributeError(f"MasterKey is immutable: cannot set {name!r}")

    def __repr__(self) -> str:
        return f"MasterKey(source={self.source!r}, key_id={self.key_id!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MasterKey):
            return NotImplemented
        return (self.key, self.source, self.key_id) == (other.key, other.source, other.key_id)

    def __hash__(self) -> int:
        return hash((self.key, self.source, self.key_id))

    def replace(self, **changes) -> MasterKey:
        """A copy with some of key, source, key_id and integrity changed."""
        fields = {
            "key": self.key,
            "source": self.source,
            "key_id": self.key_id,
            "integrity": self.integrity,
        }
        return MasterKey(**{**fields, **changes})

    @property
    def fingerprint(self) -> str:
        """Identifies the key (for backups and `doctor`) without revealing anything about it."""
        return hashlib.sha256(b"eset2fa-fingerprint" + self.key).hexdigest()[:16]

    @cached_property
    def sealer(self) -> Sealer:
        """The one AES-256-GCM sealer for this key (built once: it is used on every login)."""
        return Sealer(self.key)

    def seal(self, plaintext: bytes, context: str) -> bytes:
        """AES-256-GCM; `context` (e.g. `user:42:totp`) is authenticated, binding the ciphertext."""
        return self.sealer.seal(plaintext, context)

    def open(self, blob: bytes, context: str) -> bytes:
        return self.sealer.open(blob, context)

    @cached_property
    def audit_mac(self) -> hmac.HMAC:
        """HMAC-SHA256 keyed with the audit-chain subkey; copied per row (keyed once per store)."""
        from eset2fa.secrets.integrity import AUDIT_CHAIN, subkey

        return hmac.new(subkey(self._integrity(), AUDIT_CHAIN), digestmod=hashlib.sha256)

    @cached_property
    def codes_key(self) -> bytes:
        """The subkey that keys one-time-code hashes (eset2fa.secrets.code_hash)."""
        from eset2fa.secrets.integrity import ONE_TIME_CODES, subkey

        return subkey(self._integrity(), ONE_TIME_CODES)

    def _integrity(self) -> bytes:
        if self.integrity is None:  # a programming error: keys are established before use
            raise RuntimeError("The store's integrity key is not loaded (keys.establish).")
        return self.integrity

    def rotated(self) -> MasterKey:
        """A fresh key for the same place and the same integrity key, under a new key id.

        ESET2FA_KEY names no id (the variable holds one key): a store rotated there names none.
        """
        key_id = None if self.source == "env" else os.urandom(4).hex()
        return MasterKey(os.urandom(32), self.source, key_id, self.integrity)


# One loaded (and checked) master key per open store connection: loading it reads the keyring or
# key file and decrypts the check value, which would otherwise dominate a verification.
_store_keys: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
# Connections whose open transaction wrote a check value: what they read of it may still be rolled
# back, so no key is cached for them until they are seen outside a transaction.
_uncommitted: weakref.WeakSet = weakref.WeakSet()


def cached(conn: sqlite3.Connection) -> MasterKey | None:
    """The key already loaded and established for this connection, if any (no I/O)."""
    try:
        return _store_keys.get(conn)
    except TypeError:  # a plain sqlite3 connection (not a store's): nothing is cached for it
        return None


def for_store(store, *, create: bool = False) -> MasterKey:
    """The store's master key, loaded, checked and established once per open store.

    EncryptionKeyError when it is missing or wrong; with `create`, a store without a key gets one.
    """
    return for_connection(store.conn, store.path, create=create)


def for_connection(
    conn: sqlite3.Connection, db_path: Path | None = None, *, create: bool = False
) -> MasterKey:
    """`for_store` for code that holds only the store's connection (the audit chain)."""
    key = cached(conn)
    if key is not None:
        return key
    if db_path is None:
        db_path = getattr(conn, "db_path", None)
        if db_path is None:
            raise RuntimeError("Not a store connection: the key file cannot be located.")
    key = establish(conn, load_key(conn, db_path, create=create))
    if _committed(conn):
        _store_keys[conn] = key
    return key


def _committed(conn: sqlite3.Connection) -> bool:
    """Whether what this connection reads of the check value is known to be committed."""
    try:
        if not conn.in_transaction:
            _uncommitted.discard(conn)
            return True
        return conn not in _uncommitted
    except TypeError:
        return False


def _wrote_check_value(conn: sqlite3.Connection, in_outer_transaction: bool) -> None:
    if in_outer_transaction:  # the caller's transaction may still roll it back
        try:
            _uncommitted.add(conn)
            _store_keys.pop(conn, None)
        except TypeError:
            pass


def remember(store, key: MasterKey) -> None:
    """Replace the cached key (after `db rekey`, or when a key was created in a transaction)."""
    if key.integrity is None:  # not established: the next for_store establishes it
        return
    _uncommitted.discard(store.conn)
    _store_keys[store.conn] = key


def encode_key(key: bytes) -> str:
    return base64.urlsafe_b64encode(key).decode().rstrip("=")


def decode_key(text: str, origin: str) -> bytes:
    try:
        key = base64.urlsafe_b64decode(text.strip() + "=" * (-len(text.strip()) % 4))
    except (ValueError, TypeError):
        key = b""
    if len(key) != 32:
        raise EncryptionKeyError(
            f"The key in {origin} is malformed (expected URL-safe base64 of 32 bytes).", _KEY_HINT
        )
    return key


def key_file_path(db_path: Path) -> Path | None:
    """ESET2FA_KEY_FILE when set, else `<database>.key` beside a database file; None for a store
    that is not a file (PostgreSQL) when ESET2FA_KEY_FILE is not set."""
    given = os.environ.get(FILE_ENV_VAR)
    if given:
        return Path(given).expanduser()
    if not isinstance(db_path, Path):
        return None
    return db_path.with_name(db_path.name + ".key")


def require_key_place(db_path) -> None:
    """Before a new store is created: EncryptionKeyError when its key could be kept nowhere
    (a PostgreSQL store without ESET2FA_KEY, ESET2FA_KEY_FILE or a usable keyring)."""
    if os.environ.get(ENV_VAR) or key_file_path(db_path) is not None or _keyring() is not None:
        return
    _required_key_file_path(db_path)


def _required_key_file_path(db_path) -> Path:
    path = key_file_path(db_path)
    if path is None:
        raise EncryptionKeyError("No place to keep this store's key was given.", _NO_FILE_HINT)
    return path


def keyring_entry(sid: str, key_id: str | None) -> str:
    """The keyring user name of a store's key: `store-<store id>`, or with its key id."""
    return f"store-{sid}" if key_id is None else f"store-{sid}-{key_id}"


def store_id(conn: sqlite3.Connection) -> str:
    """A random id for this store (names its keyring entry); created on first need."""
    value = meta.get(conn, "store_id")
    if value is None:
        value = meta.add_if_missing(conn, "store_id", os.urandom(8).hex())
    return value


def _keyring():
    """The keyring module if a usable (non-failing) backend exists, else None."""
    try:
        import keyring
        from keyring.backends import fail
    except ImportError:  # pragma: no cover - it is a dependency
        return None
    backend = keyring.get_keyring()
    if isinstance(backend, fail.Keyring) or getattr(backend, "priority", 1) <= 0:
        return None
    return keyring


def _from_keyring(entry: str) -> bytes | None:
    kr = _keyring()
    if kr is None:
        return None
    try:
        value = kr.get_password(KEYRING_SERVICE, entry)
    except Exception:  # any backend failure means "not available here"
        return None
    return decode_key(value, "the OS keyring") if value else None


# -- the key file: one key per line, "<key id> <key>", or the bare key (no key id) ---------------


def read_key_file(path: Path) -> dict[str | None, bytes] | None:
    """The keys in the key file by key id (None: the unnamed key); None if there is no file."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as exc:
        message = f"Cannot read the key file {path}: {exc.strerror}."
        raise EncryptionKeyError(message, _KEY_HINT) from None
    entries: dict[str | None, bytes] = {}
    for line in text.splitlines():
        parts = line.split()
        if not parts:
            continue
        if len(parts) > 2:
            raise EncryptionKeyError(
                f"The key file {path} is malformed (a line holds more than a key id and a key).",
                _KEY_HINT,
            )
        key_id = parts[0] if len(parts) == 2 else None
        entries[key_id] = decode_key(parts[-1], f"the key file {path}")
    return entries


def write_key_file(path: Path, entries: dict[str | None, bytes]) -> None:
    """Replace the key file atomically (mode 0600), durably before returning.

    The directory is fsynced too: the commit that relies on the new file must not survive a power
    loss that the rename did not.
    """
    lines = [
        encode_key(key) if key_id is None else f"{key_id} {encode_key(key)}"
        for key_id, key in entries.items()
    ]
    from eset2fa.db.snapshot import write_atomically

    write_atomically(path, "".join(line + "\n" for line in lines).encode())


def _remove_stale_temporaries(path: Path) -> None:
    """The temporary key file a process killed while writing left behind (called under the
    write lock, so no other eset2fa process is writing the key file now)."""
    from eset2fa.db.snapshot import partial_path

    for stale in path.parent.glob(partial_path(path).name.rsplit("-", 1)[0] + "-*"):
        stale.unlink(missing_ok=True)


def _check_value(conn: sqlite3.Connection) -> bytes | None:
    value = meta.get(conn, "key_check")
    return base64.b64decode(value) if value is not None else None


def _verify(master: MasterKey, check: bytes) -> MasterKey:
    """`master` if it opens the check value, with the integrity key the value carries (v2)."""
    try:
        plain = master.open(check, CHECK_CONTEXT)
    except EncryptionKeyError:
        where = {"env": "ESET2FA_KEY", "keyring": "the OS keyring", "file": "the key file"}
        raise EncryptionKeyError(
            f"The key from {where[master.source]} is not this store's key.", _KEY_HINT
        ) from None
    if plain == CHECK_V1:
        return master.replace(integrity=None)
    if plain.startswith(CHECK_V2) and len(plain) == len(CHECK_V2) + INTEGRITY_BYTES:
        return master.replace(integrity=plain[len(CHECK_V2) :])
    raise EncryptionKeyError(
        "The store's key check value has a format this eset2fa does not know.",
        "Upgrade eset2fa; the file was not changed.",
    )


def find_key(conn: sqlite3.Connection, db_path: Path) -> MasterKey | None:
    """The key the store names, from the first source that has it, unchecked; None if none has."""
    key_id = meta.get(conn, "key_id")
    env = os.environ.get(ENV_VAR)
    if env:
        return MasterKey(decode_key(env, ENV_VAR), "env", key_id)
    recorded = meta.get(conn, "key_source")
    sid = meta.get(conn, "store_id")
    order = ["file", "keyring"] if recorded == "file" else ["keyring", "file"]
    for source in order:
        key = None
        if source == "keyring" and sid:
            key = _from_keyring(keyring_entry(sid, key_id))
        elif source == "file":
            path = key_file_path(db_path)
            entries = read_key_file(path) if path is not None else None
            key = entries.get(key_id) if entries else None
        if key is not None:
            return MasterKey(key, source, key_id)
    return None


def _not_found(conn: sqlite3.Connection) -> EncryptionKeyError:
    key_id = meta.get(conn, "key_id")
    named = f" (key id {key_id})" if key_id else ""
    return EncryptionKeyError(f"This store's encryption key{named} was not found.", _KEY_HINT)


def load_key(conn: sqlite3.Connection, db_path: Path, *, create: bool = False) -> MasterKey:
    """The store's master key, verified against the stored check value.

    With `create`, a store that has no key yet gets one (in a write transaction the caller holds
    or in its own). Without a key and without `create`, or with a wrong key: EncryptionKeyError.
    Nothing is written for a store that has a key: this also checks backups (read-only), whose
    integrity key may be missing (`establish` is for the live store).
    """
    check = _check_value(conn)
    master = find_key(conn, db_path)
    if check is not None:
        if master is None:
            raise _not_found(conn)
        return _verify(master, check)
    if not create:
        raise EncryptionKeyError("This store has no encryption key yet.", _KEY_HINT)
    return _create_key(conn, db_path, master)


def _create_key(conn: sqlite3.Connection, db_path: Path, given: MasterKey | None) -> MasterKey:
    outer = conn.in_transaction
    with joined_write(conn):
        check = _check_value(conn)  # re-read under the write lock
        if check is not None:
            master = find_key(conn, db_path)
            if master is None:
                raise _not_found(conn)
            return _verify(master, check)
        if _holds_sealed_secrets(conn):
            # Secrets are sealed in the transaction that records the check value: secrets without
            # one means the value was removed. Making a new one would also re-key an audit chain
            # that whoever removed it may have re-written.
            raise EncryptionKeyError(
                "This store holds encrypted secrets but its key check value is missing: "
                "it was removed from the database.",
                "Restore a backup (`eset2fa db backups`, `eset2fa db restore`); nothing was "
                "changed.",
            )
        result = given or _new_key(conn, db_path)
        result = _establish_in_transaction(conn, result)
    _wrote_check_value(conn, outer)
    return result


def _holds_sealed_secrets(conn: sqlite3.Connection) -> bool:
    from eset2fa.db import messages, stored_settings, users

    return bool(
        users.sealed_secrets(conn, after_id=0, limit=1)
        or stored_settings.sealed(conn)
        or messages.sealed(conn)
    )


def establish(conn: sqlite3.Connection, master: MasterKey) -> MasterKey:
    """`master` with the store's integrity key, creating it for a store that has none yet.

    For a store whose check value predates the integrity key, one write transaction (the
    caller's, if it holds one) makes an integrity key, re-keys the audit chain and the one-time
    code hashes with it, and writes the new check value: all of it or none, and only once (the
    check value is re-read under the write lock). A no-op for an established key.
    """
    if master.integrity is not None:
        return master
    outer = conn.in_transaction
    with joined_write(conn):
        check = _check_value(conn)
        if check is None:  # removed since it was read: `load_key` decides what that means
            raise EncryptionKeyError("This store has no encryption key yet.", _KEY_HINT)
        current = _verify(master, check)
        if current.integrity is not None:  # another process established it meanwhile
            return current
        master = _establish_in_transaction(conn, current)
    _wrote_check_value(conn, outer)
    return master


def _establish_in_transaction(conn: sqlite3.Connection, master: MasterKey) -> MasterKey:
    from eset2fa.secrets import integrity

    master = master.replace(integrity=os.urandom(INTEGRITY_BYTES))
    record_check_value(conn, master)
    integrity.rekey_existing(conn, master)
    return master


def record_check_value(conn: sqlite3.Connection, master: MasterKey) -> None:
    """Store the check value sealed with `master` (with the integrity key), the key id it names,
    where the key lives and its fingerprint. Part of the caller's write transaction."""
    sealed = master.seal(CHECK_V2 + master._integrity(), CHECK_CONTEXT)
    meta.put(
        conn,
        {
            "key_check": base64.b64encode(sealed).decode(),
            "key_source": master.source,
            "key_fingerprint": master.fingerprint,
        },
    )
    if master.key_id is None:
        meta.delete(conn, "key_id")
    else:
        meta.put(conn, {"key_id": master.key_id})


def has_key(conn: sqlite3.Connection) -> bool:
    """Whether the store has a key yet (a check value), without loading the key."""
    return _check_value(conn) is not None


def _new_key(conn: sqlite3.Connection, db_path: Path) -> MasterKey:
    key = os.urandom(32)
    sid = store_id(conn)
    kr = _keyring()
    if kr is not None:
        try:
            kr.set_password(KEYRING_SERVICE, keyring_entry(sid, None), encode_key(key))
            return MasterKey(key, "keyring")
        except Exception:  # a locked or read-only keyring: fall back to the key file
            pass
    path = _required_key_file_path(db_path)
    _remove_stale_temporaries(path)
    write_key_file(path, {None: key})
    return MasterKey(key, "file")


# -- rotation: the new key is stored before the switch, the old one removed after it -------------


def _nothing() -> None:
    return None


def store_new_key(
    conn: sqlite3.Connection, db_path: Path, current: MasterKey, new: MasterKey
) -> Callable[[], None]:
    """Store `new` under its own key id beside `current`, before the transaction that switches
    the store to it commits; returns what undoes that if the transaction does not commit.

    Runs inside that write transaction, so no other eset2fa process rewrites the key file
    meanwhile. With ESET2FA_KEY there is nothing to store: the caller shows the new key.
    """
    if new.source == "file":
        path = _required_key_file_path(db_path)
        _remove_stale_temporaries(path)
        # The file keeps the key in use and gains the new one; anything else in it is a key no
        # committed state names (left by a rotation killed before its commit or its clean-up).
        write_key_file(path, {current.key_id: current.key, new.key_id: new.key})
        return lambda: write_key_file(path, {current.key_id: current.key})
    if new.source == "keyring":
        kr = _keyring()
        if kr is None:
            raise EncryptionKeyError(
                "The OS keyring that holds this store's key is not available now.",
                "Run `db rekey` where the keyring is unlocked; nothing was changed.",
            )
        entry = keyring_entry(store_id(conn), new.key_id)
        value = encode_key(new.key)

        def undo() -> None:
            try:
                kr.delete_password(KEYRING_SERVICE, entry)
            except Exception:  # best effort: an unused entry harms nothing
                pass

        try:
            kr.set_password(KEYRING_SERVICE, entry, value)
            kept = kr.get_password(KEYRING_SERVICE, entry) == value
        except Exception as exc:
            undo()
            raise EncryptionKeyError(
                f"The OS keyring refused the new key ({type(exc).__name__}).",
                "Unlock the keyring and run `db rekey` again; nothing was changed.",
            ) from None
        if not kept:
            undo()
            raise EncryptionKeyError(
                "The OS keyring did not keep the new key.",
                "Check the keyring backend and run `db rekey` again; nothing was changed.",
            )
        return undo
    return _nothing


def plan_new_key(store, new: MasterKey) -> None:
    """Before a keyring rotation: commit the new entry's name in meta `key_retired`, the list of
    entries to remove unless the store names them.

    A rotation killed after writing the entry but before its commit leaves an entry that never
    protected anything; noted first, it is removed by the next clean-up instead of staying in the
    keyring for ever. (A key file needs no note: it is rewritten to hold only the key in use.)
    """
    if new.source != "keyring":
        return
    with store.write() as conn:
        _note_for_removal(conn, add=[keyring_entry(store_id(conn), new.key_id)])


def note_switch(conn: sqlite3.Connection, old: MasterKey, new: MasterKey) -> None:
    """In the switching transaction: the old keyring entry is to be removed, the new one kept."""
    if old.source != "keyring":
        return
    sid = store_id(conn)
    _note_for_removal(
        conn, add=[keyring_entry(sid, old.key_id)], keep=keyring_entry(sid, new.key_id)
    )


def _note_for_removal(conn, *, add: list[str], keep: str | None = None) -> None:
    pending = [e for e in (meta.get(conn, "key_retired") or "").split() if e != keep]
    meta.put(conn, {"key_retired": " ".join(dict.fromkeys([*pending, *add]))})


def retire_old_keys(store) -> None:
    """After the switch committed: remove the keys the store no longer names (best effort).

    In a write transaction, so it never races another rotation's staging. A failure leaves an
    unused old key behind, never a store without its key.
    """
    with store.write() as conn:
        key_id = meta.get(conn, "key_id")
        if meta.get(conn, "key_source") == "file":
            path = key_file_path(store.path)
            try:
                entries = read_key_file(path) if path is not None else None
                if entries and key_id in entries and len(entries) > 1:
                    write_key_file(path, {key_id: entries[key_id]})
            except (OSError, EncryptionKeyError):
                pass
        pending = (meta.get(conn, "key_retired") or "").split()
        if pending:
            kr = _keyring()
            current = keyring_entry(store_id(conn), key_id)
            left = [
                entry
                for entry in pending
                if entry != current and (kr is None or not _delete_entry(kr, entry))
            ]
            if left:
                meta.put(conn, {"key_retired": " ".join(left)})
            else:
                meta.delete(conn, "key_retired")


def _delete_entry(kr, entry: str) -> bool:
    """Remove a keyring entry; True when it is gone (also if it was already)."""
    try:
        kr.delete_password(KEYRING_SERVICE, entry)
        return True
    except Exception:
        return not _still_there(kr, entry)


def _still_there(kr, entry: str) -> bool:
    try:
        return kr.get_password(KEYRING_SERVICE, entry) is not None
    except Exception:
        return True
