"""Creating a store: the database file (0600), its schema and the built-in Administrator."""

from __future__ import annotations

from pathlib import Path

from eset2fa.accounts.console_users import ensure_administrator
from eset2fa.db import Store, open_store
from eset2fa.errors import StateConflict


def init_store(path: Path, password: str | None) -> tuple[Store, str | None]:
    """Create a new store at `path`; returns it and the generated Administrator password, if any.

    An existing file is never touched: `init` on it is a state conflict (exit 6).
    """
    if path.exists() and path.stat().st_size > 0:
        raise StateConflict(
            f"A database already exists at {path}.",
            "Use it as it is, or pass --db with a new path to create another store.",
        )
    from eset2fa.accounts.passwords import profile_for_new_store

    profile_for_new_store()  # a mistyped ESET2FA_ARGON2_PROFILE: exit 2 before a file is made
    store = open_store(path)
    generated = ensure_administrator(store, password)
    return store, generated
