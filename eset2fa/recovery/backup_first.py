"""The gate every recovery step goes through (SPEC S6): a verified backup before any change.

`backup_first` returns the backup's path (the command reports it and audits it); if the backup
cannot be taken the step stops there with a StorageError and the store unchanged.
"""

from __future__ import annotations

import sqlite3

from eset2fa.accounts.actors import Actor
from eset2fa.db import Store
from eset2fa.errors import Eset2faError, StorageError


def backup_first(store: Store, reason: str, actor: Actor | None = None) -> str:
    """Take a verified backup before a recovery step; its path, or StorageError (nothing done)."""
    from eset2fa.ops.backups import create_backup

    hint = (
        "Nothing was changed. Fix what stopped the backup (disk space, permissions of the backups/ "
        "folder beside the database) and run the command again."
    )
    try:
        result = create_backup(store, reason, actor=actor)
    except Eset2faError as exc:
        raise StorageError(f"The backup before {reason} failed: {exc.message}", hint) from None
    except (OSError, sqlite3.Error) as exc:
        raise StorageError(f"The backup before {reason} failed: {exc}.", hint) from None
    return result["path"]
