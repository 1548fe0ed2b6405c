"""API keys: the credentials of applications that call the server's verification API.

`eset2fa apikey create NAME` makes a key and shows it once; `apikey list` shows names, creation
and last use, never a key; `apikey revoke NAME` deletes it (the next request with it is 401).
Managing keys is the store's business, not a user's: only the Administrator or the local operator
may (like settings), and each change is audited. A request made with a key is audited with the
actor `apikey:NAME`.

A key is `e2fa_<key id>_<secret>`: the key id (10 base32 characters, public) finds its row in one
indexed read; the secret is 256 random bits (32 bytes, base64url) of which only the SHA-256 is
stored, compared in constant time. A plain SHA-256, not a slow password hash: a 256-bit random
secret cannot be guessed offline from a stolen hash (2**256 tries), so Argon2's cost would buy
nothing and would be paid on every API request. Nor the keyed code_hash: a key then could not be
checked without the master key, and every key would need re-hashing at key rotation, again for no
gain against guessing. What the prefix buys: `e2fa_` makes a leaked key easy to find with a secret
scanner; the key id lets a lookup happen by index without the secret's hash being the lookup key.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from typing import NamedTuple

from eset2fa.accounts.actors import Actor
from eset2fa.accounts.console_users import validate_name
from eset2fa.accounts.permissions import require_admin
from eset2fa.clock import now_iso
from eset2fa.db import Store
from eset2fa.db import api_keys as key_rows
from eset2fa.errors import NotFound, StateConflict
from eset2fa.ops import audit_chain

PREFIX = "e2fa_"
_ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"
_KEY_RE = re.compile(r"e2fa_([a-z2-7]{10})_([A-Za-z0-9_-]{43})")
_NOTHING = hashlib.sha256(b"no such key").hexdigest()


class ApiKey(NamedTuple):
    """An authenticated key: the row id (for `note_use`) and its name."""

    id: int
    name: str

    @property
    def actor(self) -> Actor:
        """Who the audit log names for a request made with this key. An application verifies
        any user's codes and sends any user's pushes: the key is the authority, so it acts with
        full rights for those two things (the server offers nothing else)."""
        return Actor(label=f"apikey:{self.name}", user_id=None, is_admin=True)


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def create(store: Store, actor: Actor, name: str) -> dict:
    """A new key named NAME; the returned dict holds the key, which is never shown again."""
    require_admin(actor, "manage API keys")
    validate_name(name, "API key name")
    secret = secrets.token_urlsafe(32)  # 32 bytes: 43 base64url characters, 256 bits
    at = now_iso()
    with store.write() as conn:
        if key_rows.exists(conn, name):
            raise StateConflict(
                f"An API key named {name!r} already exists.",
                f"Revoke it first with `eset2fa apikey revoke {name}`, or choose another name.",
            )
        for _attempt in range(10):  # a key id already taken: one in 2**50 per key
            key_id = "".join(secrets.choice(_ID_ALPHABET) for _ in range(10))
            if key_rows.insert(
                conn,
                name,
                key_id=key_id,
                secret_hash=_hash(secret),
                created_at=at,
                created_by=actor.label,
            ):
                break
        audit_chain.record(conn, actor.label, "apikey.create", name, "ok")
    return {"name": name, "key": f"{PREFIX}{key_id}_{secret}", "created_at": at}


def list_keys(store: Store, actor: Actor) -> list[dict]:
    """Every key's name, creation (when, by whom) and last use (to the minute); never a key."""
    require_admin(actor, "manage API keys")
    return [dict(row) for row in key_rows.listed(store.conn)]


def revoke(store: Store, actor: Actor, name: str) -> dict:
    """Delete the key NAME: from the next request on, it is refused (401)."""
    require_admin(actor, "manage API keys")
    with store.write() as conn:
        stored = key_rows.delete(conn, name)
        if stored is None:
            raise NotFound(f"No API key named {name!r}.", "List them with `eset2fa apikey list`.")
        audit_chain.record(conn, actor.label, "apikey.revoke", stored, "ok")
    return {"name": stored, "revoked": True}


def authenticate(store: Store, presented: str | None) -> ApiKey | None:
    """The key `presented` is, or None: malformed, unknown, revoked or a wrong secret alike.

    Reads one row by the public key id; the secret's hash is compared in constant time, and an
    unknown key id is compared against a stand-in, so the time taken does not say which part was
    wrong. Writes nothing (see `note_use`).
    """
    match = _KEY_RE.fullmatch(presented) if isinstance(presented, str) else None
    if match is None:
        return None
    key_id, secret = match.groups()
    row = key_rows.find_by_key_id(store.conn, key_id)
    expected = row["secret_hash"] if row is not None else _NOTHING
    if not hmac.compare_digest(_hash(secret), expected) or row is None:
        return None
    return ApiKey(row["id"], row["name"])


def note_use(store: Store, key: ApiKey) -> None:
    """Record that `key` was just used (`apikey list` shows it). One write transaction: callers
    do it at most once a minute per key, not on every request."""
    with store.write() as conn:
        key_rows.note_use(conn, key.id, now_iso())
