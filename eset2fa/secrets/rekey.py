"""`db rekey`: re-encrypt every secret with a new master key, in one transaction.

The new key goes where the old one lived, ordered so that a failure at any step leaves a key that
opens the database:
- key file: the new key is written to `<key file>.new` first, the transaction commits, then the
  file is renamed over the old one (a crash in between leaves both files; the hint says which);
- keyring: the new key is stored before the commit and the old one put back if the commit fails;
- ESET2FA_KEY: the process cannot change its caller's environment, so the new key is returned
  for the command to print once (stderr) with the instruction to update the variable.
"""

from __future__ import annotations

import base64
import os
import secrets
from dataclasses import dataclass

from eset2fa.accounts.actors import Actor
from eset2fa.db import Store
from eset2fa.errors import EncryptionKeyError, StateConflict
from eset2fa.ops import audit_log
from eset2fa.secrets import keys
from eset2fa.twofactor import totp

CHUNK = 5000


@dataclass(frozen=True)
class RekeyReport:
    users: int
    settings: int
    source: str
    old_fingerprint: str
    new_fingerprint: str
    new_key_for_env: str | None = None  # only when the key came from ESET2FA_KEY

    def to_dict(self) -> dict:
        return {
            "users": self.users,
            "settings": self.settings,
            "key_source": self.source,
            "old_fingerprint": self.old_fingerprint,
            "new_fingerprint": self.new_fingerprint,
        }


def _reseal_users(conn, old: keys.MasterKey, new: keys.MasterKey) -> int:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    old_aead, new_aead = AESGCM(old.key), AESGCM(new.key)
    n = keys.NONCE_BYTES
    done, last_id = 0, 0
    while True:
        rows = conn.execute(
            "SELECT id, secret FROM users WHERE secret IS NOT NULL AND id > ? ORDER BY id LIMIT ?",
            (last_id, CHUNK),
        ).fetchall()
        if not rows:
            return done
        updates = []
        for user_id, blob in rows:
            context = totp.secret_context(user_id).encode()
            try:
                plain = old_aead.decrypt(blob[:n], blob[n:], context)
            except (InvalidTag, ValueError):
                raise EncryptionKeyError(
                    f"The secret of user id {user_id} does not decrypt with the current key; "
                    "nothing was changed.",
                    "The row was altered or moved; restore a backup before rekeying.",
                ) from None
            nonce = secrets.token_bytes(n)
            updates.append((nonce + new_aead.encrypt(nonce, plain, context), user_id))
        conn.executemany("UPDATE users SET secret = ? WHERE id = ?", updates)
        done += len(rows)
        last_id = rows[-1][0]


def _reseal_settings(conn, old: keys.MasterKey, new: keys.MasterKey) -> int:
    rows = conn.execute("SELECT key, secret FROM config WHERE secret IS NOT NULL").fetchall()
    for key, blob in rows:
        plain = old.open(blob, f"config:{key}")
        conn.execute(
            "UPDATE config SET secret = ? WHERE key = ?", (new.seal(plain, f"config:{key}"), key)
        )
    return len(rows)


def _reseal_outbox(conn, old: keys.MasterKey, new: keys.MasterKey) -> int:
    from eset2fa.transports.outbox import sealed_context

    rows = conn.execute(
        "SELECT id, channel, recipient, sealed FROM outbox WHERE sealed IS NOT NULL"
    ).fetchall()
    for row_id, channel, recipient, blob in rows:
        context = sealed_context(channel, recipient)
        conn.execute(
            "UPDATE outbox SET sealed = ? WHERE id = ?",
            (new.seal(old.open(blob, context), context), row_id),
        )
    return len(rows)


def rekey(store: Store, actor: Actor) -> RekeyReport:
    """Re-encrypt user and setting secrets with a fresh key and put it where the old one was."""
    from eset2fa.accounts.permissions import require_admin

    require_admin(actor, "rotate the encryption key")
    undo = None
    try:
        with store.write() as conn:
            if keys._check_value(conn) is None:
                raise StateConflict(
                    "This store has no encryption key yet: there is nothing to re-encrypt.",
                    "A key is created when it is first needed (e.g. by `user enable`).",
                )
            old = keys.load_key(conn, store.path)
            new = keys.MasterKey(secrets.token_bytes(32), old.source)
            users = _reseal_users(conn, old, new)
            settings = _reseal_settings(conn, old, new)
            messages = _reseal_outbox(conn, old, new)
            check = new.seal(keys._CHECK_PLAINTEXT, keys._CHECK_CONTEXT)
            conn.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('key_check', ?), "
                "('key_source', ?), ('key_fingerprint', ?)",
                (base64.b64encode(check).decode(), new.source, new.fingerprint),
            )
            audit_log.record(
                conn,
                actor.label,
                "db.rekey",
                None,
                "ok",
                {
                    "users": users,
                    "settings": settings,
                    "outbox_messages": messages,
                    "key_source": new.source,
                    "old_fingerprint": old.fingerprint,
                    "new_fingerprint": new.fingerprint,
                },
            )
            finish, undo = _stage_new_key(conn, store, old, new)  # last step before COMMIT
    except BaseException:
        if undo is not None:
            undo()
        raise
    finish()
    totp.remember_key(store, new)
    return RekeyReport(
        users,
        settings,
        new.source,
        old.fingerprint,
        new.fingerprint,
        keys.encode_key(new.key) if new.source == "env" else None,
    )


def _nothing() -> None:
    return None


def _stage_new_key(conn, store: Store, old: keys.MasterKey, new: keys.MasterKey):
    """Put the new key in place as far as is safe before the commit: (finish, undo)."""
    if new.source == "file":
        final = keys.key_file_path(store.path)
        staged = final.with_name(final.name + ".new")
        keys._write_key_file(staged, new.key)
        return (lambda: os.replace(staged, final)), (lambda: staged.unlink(missing_ok=True))
    if new.source == "keyring":
        keyring = keys._keyring()
        if keyring is None:
            raise EncryptionKeyError(
                "The OS keyring that holds this store's key is not available now.",
                "Run `db rekey` where the keyring is unlocked; nothing was changed.",
            )
        entry = f"store-{keys.store_id(conn)}"
        keyring.set_password(keys.KEYRING_SERVICE, entry, keys.encode_key(new.key))

        def undo() -> None:
            keyring.set_password(keys.KEYRING_SERVICE, entry, keys.encode_key(old.key))

        return _nothing, undo
    return _nothing, _nothing
