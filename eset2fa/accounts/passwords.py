"""Console passwords: Argon2id hashes (argon2-cffi), and generated passwords for first use.

The cost of new hashes is the store's setting `passwords.argon2_profile`:

- `rfc9106-low-memory` (the default): RFC 9106's second recommended option, argon2-cffi's
  default (64 MiB, 3 passes, 4 lanes);
- `rfc9106-high-memory`: RFC 9106's first recommended option (2 GiB, 1 pass, 4 lanes);
- `test`: 8 KiB, 1 pass. For test suites only: `doctor` warns about a store that uses it.

Each encoded hash carries its own parameters (`$argon2id$v=19$m=65536,t=3,p=4$...`), and a hash
is always verified with those, so changing the profile never locks anyone out. After a successful
check, a hash weaker than the configured profile is replaced by one made with it (`needs_rehash`,
called by `lockout.check_password`); a stronger one is kept as it is.

How a store gets its profile, so that it cannot be weakened without anyone noticing: the setting
changes only with `eset2fa config set passwords.argon2_profile ...` (administrators only, audited),
and the environment variable `ESET2FA_ARGON2_PROFILE` is read only when a store is created (its
first hash, the Administrator's, is made then), which records the choice as an audited setting.
Later processes ignore the variable: it cannot lower the cost of an existing store.
"""

from __future__ import annotations

import os
import sqlite3

from eset2fa.errors import UsageError

MIN_LENGTH = 8
MAX_LENGTH = 1024

SETTING = "passwords.argon2_profile"
ENV_VAR = "ESET2FA_ARGON2_PROFILE"
DEFAULT_PROFILE = "rfc9106-low-memory"
# (time_cost, memory_cost in KiB, parallelism, hash_len, salt_len); Argon2id, version 19.
PROFILES: dict[str, tuple[int, int, int, int, int]] = {
    "rfc9106-low-memory": (3, 65536, 4, 32, 16),
    "rfc9106-high-memory": (1, 2097152, 4, 32, 16),
    "test": (1, 8, 1, 32, 16),
}
CHEAP_PROFILES = frozenset({"test"})  # what `doctor` warns about

_hashers: dict[str, object] = {}


def _hasher(profile: str = DEFAULT_PROFILE):
    """argon2-cffi's PasswordHasher for a profile (built once per process)."""
    hasher = _hashers.get(profile)
    if hasher is None:
        from argon2 import PasswordHasher  # heavy-ish; only commands that hash or verify pay

        time_cost, memory_cost, parallelism, hash_len, salt_len = PROFILES[profile]
        hasher = _hashers[profile] = PasswordHasher(
            time_cost=time_cost,
            memory_cost=memory_cost,
            parallelism=parallelism,
            hash_len=hash_len,
            salt_len=salt_len,
        )
    return hasher


def check_profile(name: str, origin: str) -> str:
    """`name` if it is a known profile, else a usage error naming where it came from."""
    if name not in PROFILES:
        raise UsageError(
            f"{origin} must be one of {', '.join(PROFILES)}, not {name!r}.",
            f"Unset it to use the default, {DEFAULT_PROFILE}.",
        )
    return name


def configured_profile(conn: sqlite3.Connection) -> str:
    """The store's profile (`passwords.argon2_profile`); the default when it is not set.

    A name this version does not know (written by a newer eset2fa) gives the default, never a
    cheaper profile.
    """
    from eset2fa.db import stored_settings

    stored = stored_settings.value(conn, SETTING)
    return stored if stored in PROFILES else DEFAULT_PROFILE


def profile_for_new_store() -> str | None:
    """The profile `ESET2FA_ARGON2_PROFILE` asks for, or None; read only when creating a store."""
    name = os.environ.get(ENV_VAR)
    if not name:
        return None
    return check_profile(name, ENV_VAR)


def validate(password: str) -> str:
    if len(password) < MIN_LENGTH:
        raise UsageError(
            f"The password is too short (at least {MIN_LENGTH} characters).",
            "Choose a longer password, or omit it to have one generated.",
        )
    if len(password) > MAX_LENGTH:
        raise UsageError(f"The password is too long (at most {MAX_LENGTH} characters).")
    return password


def hash_password(password: str, profile: str = DEFAULT_PROFILE) -> str:
    """A new hash of a new password (validated) with the profile's parameters."""
    return _hasher(profile).hash(validate(password))


def rehash(password: str, profile: str) -> str:
    """A new hash of a password that was just verified (not re-validated: an old password that
    is shorter than today's minimum must keep working)."""
    return _hasher(profile).hash(password)


def verify_password(stored_hash: str | None, password: str, profile: str = DEFAULT_PROFILE) -> bool:
    """Constant-time check (inside argon2) with the parameters stored in the hash; False for
    users without a password, after hashing with `profile` so that it costs the same time."""
    from argon2.exceptions import InvalidHashError, VerificationError

    if not stored_hash:
        _hasher(profile).hash("timing-equaliser")
        return False
    try:
        return _hasher(profile).verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str, profile: str) -> bool:
    """True when `stored_hash` is weaker than `profile`: not Argon2id or an older version, a
    shorter hash or salt, or less memory x passes. A stronger hash is left alone: changing the
    profile down (rfc9106-high-memory to rfc9106-low-memory) must not weaken existing hashes."""
    from argon2 import Type, extract_parameters
    from argon2.exceptions import InvalidHashError

    time_cost, memory_cost, _, hash_len, salt_len = PROFILES[profile]
    try:
        found = extract_parameters(stored_hash)
    except (InvalidHashError, ValueError):
        return False  # not a hash we can read: verification refused it already
    return (
        found.type is not Type.ID
        or found.version < 19
        or found.hash_len < hash_len
        or found.salt_len < salt_len
        or found.memory_cost * found.time_cost < memory_cost * time_cost
    )


def describe(profile: str) -> str:
    """The profile's parameters in words, for `doctor`."""
    time_cost, memory_cost, parallelism, _, _ = PROFILES[profile]
    memory = f"{memory_cost // 1024} MiB" if memory_cost >= 1024 else f"{memory_cost} KiB"
    return f"Argon2id {profile}: {memory}, {time_cost} pass(es), {parallelism} lane(s)"


def generate_password() -> str:
    """A 20-character password from the URL-safe alphabet (about 120 bits)."""
    import secrets  # not at import time: `ops.settings` imports this module on every start-up

    return secrets.token_urlsafe(15)
