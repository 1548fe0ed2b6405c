"""One-time codes at rest (recovery codes, token reset codes): keyed HMAC-SHA256, never the code.

Written once here so both kinds of code are hashed and compared the same way. The stored form is

    HMAC-SHA256(codes key, hex(HMAC-SHA256(salt, code)))

where the salt is random and kept beside the hash, and the codes key is a subkey of the store's
key (`MasterKey.codes_key`, HKDF label "one-time codes"), which never goes into the database. A
stolen database or backup alone therefore cannot be used to test candidate codes offline: without
the key no guess can be checked. The inner salted HMAC is what stores written before the codes key
existed kept; the upgrade step wraps those stored values (`wrap`) without knowing the codes, and
new codes go through the same two steps, so there is one rule for every stored hash.

Why a fast hash suffices: these codes carry at least 26 bits of entropy, are single use and
attempt-limited online; the slow-hash cost that protects passwords buys nothing for them.
"""

from __future__ import annotations

import hashlib
import hmac
import os

SALT_BYTES = 16


def new_salt() -> bytes:
    return os.urandom(SALT_BYTES)


def salted(salt: bytes, code: str) -> str:
    """The inner, unkeyed step (what stores kept before the codes key): hex HMAC(salt, code)."""
    return hmac.new(salt, code.encode("ascii"), hashlib.sha256).hexdigest()


def wrap(key: bytes, salted_hash: str) -> str:
    """The stored form of an inner salted hash under the store's codes key."""
    return hmac.new(key, salted_hash.encode("ascii"), hashlib.sha256).hexdigest()


def hash_code(key: bytes, salt: bytes, code: str) -> str:
    """The stored form of `code` (already normalized) under `salt` and the codes key `key`."""
    return wrap(key, salted(salt, code))


def matches(key: bytes, salt: bytes, code: str, stored: str) -> bool:
    """Constant-time check of `code` against one stored hash."""
    return hmac.compare_digest(hash_code(key, salt, code), stored)
