"""`db rekey`: re-encrypt every secret with a new master key, in one transaction.

Ordered so that a crash at any instant leaves the store with a key that opens it (README,
"Encryption key"). The store names its key by id (eset2fa.secrets.keys):
1. inside the write transaction, the new key is stored under a new key id beside the old one
   (key file: rewritten atomically with both lines; keyring: a new entry `store-<id>-<key id>`);
2. every secret is re-sealed, and the new check value (which carries the same integrity key, so
   the audit chain and the code hashes stay valid) and the new key id are written; COMMIT;
3. the old key is removed (its own write transaction; if that is cut short, the old key merely
   stays beside the new one until the next rotation).
Before 2 commits the store names the old key, which is untouched; after, the new one, which is
already stored. ESET2FA_KEY cannot be changed from here: the new key is shown to the caller as
the last step before COMMIT (`announce_env_key`), and the store needs it once the command ends
successfully.
"""

from __future__ import annotations

from collections.abc import Callable
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
    key_id: str | None = None  # the id the store names its new key by (None with ESET2FA_KEY)

    def to_dict(self) -> dict:
        return {
            "users": self.users,
            "settings": self.settings,
            "key_source": self.source,
            "old_fingerprint": self.old_fingerprint,
            "new_fingerprint": self.new_fingerprint,
            "key_id": self.key_id,
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


def rekey(
    store: Store, actor: Actor, *, announce_env_key: Callable[[str], None] | None = None
) -> RekeyReport:
    """Re-encrypt user and setting secrets with a fresh key, stored beside the old one first.

    `announce_env_key` receives the new key (URL-safe base64) when the key comes from
    ESET2FA_KEY, just before the commit; the report carries it too.
    """
    from eset2fa.accounts.permissions import require_admin

    require_admin(actor, "rotate the encryption key")
    if not keys.has_key(store.conn):
        raise StateConflict(
            "This store has no encryption key yet: there is nothing to re-encrypt.",
            "A key is created with the store's first change (e.g. `user add`).",
        )
    # Loaded and checked first (a store written by an earlier eset2fa gets its integrity key in
    # its own transaction), so a wrong key changes nothing at all.
    old = keys.for_store(store)
    new = old.rotated()
    keys.plan_new_key(store, new)
    with store.write() as conn:
        current = keys.establish(conn, keys.load_key(conn, store.path))  # again, under the lock
        if (current.key, current.key_id, current.integrity) != (old.key, old.key_id, old.integrity):
            raise StateConflict(
                "The key was rotated by another process meanwhile; nothing was changed.",
                "Run `eset2fa db rekey` again.",
            )
        undo = keys.store_new_key(conn, store.path, current, new)
        try:
            users = _reseal_users(conn, current, new)
            sealed_settings = _reseal_settings(conn, current, new)
            messages = _reseal_outbox(conn, current, new)
            keys.record_check_value(conn, new)
            keys.note_switch(conn, current, new)
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
                    "key_id": new.key_id,
                    "old_fingerprint": current.fingerprint,
                    "new_fingerprint": new.fingerprint,
                },
                master=new,
            )
            if new.source == "env" and announce_env_key is not None:
                announce_env_key(keys.encode_key(new.key))  # last step before COMMIT
        except BaseException:
            undo()  # still under the write lock: no other process touches the key file now
            raise
    keys.remember(store, new)
    keys.retire_old_keys(store)
    return RekeyReport(
        users,
        sealed_settings,
        new.source,
        old.fingerprint,
        new.fingerprint,
        keys.encode_key(new.key) if new.source == "env" else None,
        new.key_id,
    )
