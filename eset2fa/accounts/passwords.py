"""Console passwords: Argon2id hashes (argon2-cffi), and generated passwords for first use."""

from __future__ import annotations

import secrets

from eset2fa.errors import UsageError

MIN_LENGTH = 8
MAX_LENGTH = 1024


def _hasher():
    from argon2 import PasswordHasher  # heavy-ish; only commands that hash or verify pay for it

    return PasswordHasher()  # Argon2id, RFC 9106 low-memory profile


def validate(password: str) -> str:
    if len(password) < MIN_LENGTH:
        raise UsageError(
            f"The password is too short (at least {MIN_LENGTH} characters).",
            "Choose a longer password, or omit it to have one generated.",
        )
    if len(password) > MAX_LENGTH:
        raise UsageError(f"The password is too long (at most {MAX_LENGTH} characters).")
    return password


def hash_password(password: str) -> str:
    return _hasher().hash(validate(password))


def verify_password(stored_hash: str | None, password: str) -> bool:
    """Constant-time check (inside argon2); False for users without a password."""
    from argon2.exceptions import InvalidHashError, VerificationError

    if not stored_hash:
        # Hash anyway so that a missing password costs the same time as a wrong one.
        _hasher().hash("timing-equaliser")
        return False
    try:
        return _hasher().verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def generate_password() -> str:
    """A 20-character password from the URL-safe alphabet (about 120 bits)."""
    return secrets.token_urlsafe(15)
