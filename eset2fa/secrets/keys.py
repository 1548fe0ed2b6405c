"""The master key that encrypts secrets at rest (TOTP secrets, transport credentials).

Where the key comes from, in this order (README, "Encryption key"):
1. `ESET2FA_KEY`: the key itself, URL-safe base64 of 32 bytes (for containers and CI);
2. the OS keyring (`keyring`), service `eset2fa`, user `store-<store id>`;
3. a key file beside the database, `<database>.key`, mode 0600 (for headless servers).

On first use a new key goes to the keyring when a usable keyring backend exists, else to the key
file; the store records which, so later runs look there first (loading `keyring` costs ~0.2 s).
A check value encrypted with the key is stored in the database: a wrong key is reported as such,
never used to produce garbage.
"""

from __future__ import annotations

import base64
import hashlib
import os
import sqlite3
import weakref
from pathlib import Path

from eset2fa.db import meta
from eset2fa.db.connection import joined_write
from eset2fa.errors import EncryptionKeyError
from eset2fa.secrets.sealer import Sealer

ENV_VAR = "ESET2FA_KEY"
KEYRING_SERVICE = "eset2fa"
CHECK_PLAINTEXT = b"eset2fa key check v1"
CHECK_CONTEXT = "eset2fa:key-check"

_KEY_HINT = (
    "Provide the store's key: set ESET2FA_KEY, restore it to the OS keyring, or put the key file "
    "back beside the database (<database>.key, mode 0600)."
)


class MasterKey:
    # A plain class, not a dataclass: eset2fa-pam imports this module on every PAM login, and
    # `dataclasses` pulls in inspect, ast and dis, a large part of its start-up budget.
    __slots__ = ("key", "source", "_sealer")

    def __init__(self, key: bytes, source: str) -> None:
        self.key = key
        self.source = source  # "env", "keyring" or "file"
        self._sealer: Sealer | None = None

    @property
    def fingerprint(self) -> str:
        """Identifies the key (for backups and `doctor`) without revealing anything about it."""
        return hashlib.sha256(b"eset2fa-fingerprint" + self.key).hexdigest()[:16]

    @property
    def sealer(self) -> Sealer:
        """The one AES-256-GCM sealer for this key (built once: it is used on every login)."""
        if self._sealer is None:
            self._sealer = Sealer(self.key)
        return self._sealer

    def seal(self, plaintext: bytes, context: str) -> bytes:
        """AES-256-GCM; `context` (e.g. `user:42:totp`) is authenticated, binding the ciphertext."""
        return self.sealer.seal(plaintext, context)

    def open(self, blob: bytes, context: str) -> bytes:
        return self.sealer.open(blob, context)


# One loaded (and checked) master key per open store: loading it reads the keyring or key file and
# decrypts the check value, which would otherwise dominate a verification.
_store_keys: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def for_store(store) -> MasterKey:
    """The store's master key, loaded and checked once per open store (EncryptionKeyError)."""
    key = _store_keys.get(store)
    if key is None:
        key = _store_keys[store] = load_key(store.conn, store.path)
    return key


def remember(store, key: MasterKey) -> None:
    """Replace the cached key (after `db rekey`, or when a key was created in a transaction)."""
    _store_keys[store] = key


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


def key_file_path(db_path: Path) -> Path:
    return db_path.with_name(db_path.name + ".key")


def store_id(conn: sqlite3.Connection) -> str:
    """A random id for this store (names its keyring entry); created on first need."""
    value = meta.get(conn, "store_id")
    if value is None:
        import secrets  # only when a store gets its id or key: not on eset2fa-pam's path

        value = meta.add_if_missing(conn, "store_id", secrets.token_hex(8))
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


def _from_keyring(sid: str) -> bytes | None:
    kr = _keyring()
    if kr is None:
        return None
    try:
        value = kr.get_password(KEYRING_SERVICE, f"store-{sid}")
    except Exception:  # any backend failure means "not available here"
        return None
    return decode_key(value, "the OS keyring") if value else None


def _from_file(path: Path) -> bytes | None:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as exc:
        message = f"Cannot read the key file {path}: {exc.strerror}."
        raise EncryptionKeyError(message, _KEY_HINT) from None
    return decode_key(text, f"the key file {path}")


def _write_key_file(path: Path, key: bytes) -> None:
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(encode_key(key) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def _check_value(conn: sqlite3.Connection) -> bytes | None:
    value = meta.get(conn, "key_check")
    return base64.b64decode(value) if value is not None else None


def _verify(master: MasterKey, check: bytes) -> MasterKey:
    try:
        master.open(check, CHECK_CONTEXT)
    except EncryptionKeyError:
        where = {"env": "ESET2FA_KEY", "keyring": "the OS keyring", "file": "the key file"}
        raise EncryptionKeyError(
            f"The key from {where[master.source]} is not this store's key.", _KEY_HINT
        ) from None
    return master


def find_key(conn: sqlite3.Connection, db_path: Path) -> MasterKey | None:
    """The key from the first source that has one, unchecked; None if no source has one."""
    env = os.environ.get(ENV_VAR)
    if env:
        return MasterKey(decode_key(env, ENV_VAR), "env")
    recorded = meta.get(conn, "key_source")
    sid = meta.get(conn, "store_id")
    order = ["file", "keyring"] if recorded == "file" else ["keyring", "file"]
    for source in order:
        if source == "keyring" and sid:
            key = _from_keyring(sid)
        elif source == "file":
            key = _from_file(key_file_path(db_path))
        else:
            key = None
        if key is not None:
            return MasterKey(key, source)
    return None


def load_key(conn: sqlite3.Connection, db_path: Path, *, create: bool = False) -> MasterKey:
    """The store's master key, verified against the stored check value.

    With `create`, a store that has no key yet gets one (in a write transaction the caller holds
    or in its own). Without a key and without `create`, or with a wrong key: EncryptionKeyError.
    """
    check = _check_value(conn)
    master = find_key(conn, db_path)
    if check is not None:
        if master is None:
            raise EncryptionKeyError("This store's encryption key was not found.", _KEY_HINT)
        return _verify(master, check)
    if not create:
        raise EncryptionKeyError("This store has no encryption key yet.", _KEY_HINT)
    return _create_key(conn, db_path, master)


def _create_key(conn: sqlite3.Connection, db_path: Path, given: MasterKey | None) -> MasterKey:
    with joined_write(conn):
        check = _check_value(conn)  # re-read under the write lock
        if check is not None:
            master = find_key(conn, db_path)
            if master is None:
                raise EncryptionKeyError("This store's encryption key was not found.", _KEY_HINT)
            return _verify(master, check)
        result = given or _new_key(conn, db_path)
        record_check_value(conn, result)
    return result


def record_check_value(conn: sqlite3.Connection, master: MasterKey) -> None:
    """Store the check value sealed with `master` (and where the key lives, its fingerprint)."""
    sealed = master.seal(CHECK_PLAINTEXT, CHECK_CONTEXT)
    meta.put(
        conn,
        {
            "key_check": base64.b64encode(sealed).decode(),
            "key_source": master.source,
            "key_fingerprint": master.fingerprint,
        },
    )


def has_key(conn: sqlite3.Connection) -> bool:
    """Whether the store has a key yet (a check value), without loading the key."""
    return _check_value(conn) is not None


def _new_key(conn: sqlite3.Connection, db_path: Path) -> MasterKey:
    import secrets

    key = secrets.token_bytes(32)
    sid = store_id(conn)
    kr = _keyring()
    if kr is not None:
        try:
            kr.set_password(KEYRING_SERVICE, f"store-{sid}", encode_key(key))
            return MasterKey(key, "keyring")
        except Exception:  # a locked or read-only keyring: fall back to the key file
            pass
    _write_key_file(key_file_path(db_path), key)
    return MasterKey(key, "file")
