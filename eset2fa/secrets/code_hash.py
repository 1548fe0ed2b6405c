"""One-time codes at rest (recovery codes, token reset codes): salted HMAC-SHA256, never the code.

Written once here so both kinds of code are hashed and compared the same way: the stored form is
the hex HMAC of the normalized code under a random salt, and a check compares in constant time.
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


def hash_code(salt: bytes, code: str) -> str:
    """The stored form of `code` (already normalized) under `salt`."""
    return hmac.new(salt, code.encode("ascii"), hashlib.sha256).hexdigest()


def matches(salt: bytes, code: str, stored: str) -> bool:
    """Constant-time check of `code` against one stored hash."""
    return hmac.compare_digest(hash_code(salt, code), stored)
