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

import os
import secrets
from dataclasses import dataclass

from eset2fa.accounts.actors import Actor
from eset2fa.db import Store
from eset2fa.db import messages as message_rows
from eset2fa.db import stored_settings as setting_rows
from eset2fa.db import users as user_rows
from eset2fa.errors import EncryptionKeyError, StateConflict
from eset2fa.ops import audit_chain, settings
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
    done, last_id = 0, 0
    while True:
        rows = user_rows.sealed_secrets(conn, after_id=last_id, limit=CHUNK)
        if not rows:
            return done
        contexts = [totp.secret_context(user_id) for user_id, _blob in rows]
        plain = []
        for (user_id, blob), context in zip(rows, contexts, strict=True):
            try:
                plain.append(old.open(blob, context))
            except EncryptionKeyError:
                raise EncryptionKeyError(
                    f"The secret of user id {user_id} does not decrypt with the current key; "
                    "nothing was changed.",
                    "The row was altered or moved; restore a backup before rekeying.",
                ) from None
        sealed = new.sealer.seal_many(zip(plain, contexts, strict=True))
        user_rows.set_secrets(
            conn, ((blob, user_id) for blob, (user_id, _old) in zip(sealed, rows, strict=True))
        )
        done += len(rows)
        last_id = rows[-1][0]


def _reseal_settings(conn, old: keys.MasterKey, new: keys.MasterKey) -> int:
    rows = setting_rows.sealed(conn)
    for key, blob in rows:
        context = settings.secret_context(key)
        setting_rows.set_sealed(conn, key, new.seal(old.open(blob, context), context))
    return len(rows)


def _reseal_outbox(conn, old: keys.MasterKey, new: keys.MasterKey) -> int:
    from eset2fa.ops.delivery import sealed_context

    rows = message_rows.sealed(conn)
    for row_id, channel, recipient, blob in rows:
        context = sealed_context(channel, recipient)
        message_rows.set_sealed(conn, row_id, new.seal(old.open(blob, context), context))
    return len(rows)


def rekey(store: Store, actor: Actor) -> RekeyReport:
    """Re-encrypt user and setting secrets with a fresh key and put it where the old one was."""
    from eset2fa.accounts.permissions import require_admin

    require_admin(actor, "rotate the encryption key")
    undo = None
    try:
        with store.write() as conn:
            if not keys.has_key(conn):
                raise StateConflict(
                    "This store has no encryption key yet: there is nothing to re-encrypt.",
                    "A key is created when it is first needed (e.g. by `user enable`).",
                )
            old = keys.load_key(conn, store.path)
            new = keys.MasterKey(secrets.token_bytes(32), old.source)
            users = _reseal_users(conn, old, new)
            sealed_settings = _reseal_settings(conn, old, new)
            messages = _reseal_outbox(conn, old, new)
            keys.record_check_value(conn, new)
            audit_chain.record(
                conn,
                actor.label,
                "db.rekey",
                None,
                "ok",
                {
                    "users": users,
                    "settings": sealed_settings,
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
    keys.remember(store, new)
    return RekeyReport(
        users,
        sealed_settings,
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
