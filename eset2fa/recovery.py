"""Recovery procedures (SPEC S6-S9): each one takes a verified backup before it changes anything.

`backup_first` is the gate every recovery command goes through: it returns the backup's path (the
command reports it and audits it), and if the backup cannot be taken the command stops there with
a StorageError and the store unchanged.
"""

from __future__ import annotations

import sqlite3

from . import audit, permissions, users
from .actors import Actor
from .db import Store
from .errors import Eset2faError, StorageError

USER_COLUMNS = "id, name, group_name, builtin, state"


def backup_first(store: Store, reason: str, actor: Actor | None = None) -> str:
    """Take a verified backup before a recovery step; its path, or StorageError (nothing done)."""
    from .backup import create_backup

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


def _disable_two_factor(conn: sqlite3.Connection, user_id: int) -> None:
    # Every two-factor field back to "never enrolled": the account signs in with its password only
    # until 2FA is enabled again.
    conn.execute(
        "UPDATE users SET state = 'disabled', method = NULL, secret = NULL, phone = NULL,"
        " last_step = NULL, fail_count = 0, locked = 0, locked_at = NULL, enabled_at = NULL,"
        " activated_at = NULL WHERE id = ?",
        (user_id,),
    )


def reset_password(
    store: Store, actor: Actor, name: str, password: str | None = None
) -> tuple[dict, str | None]:
    """Set a new password for NAME (generated when None), after a backup.

    For the built-in Administrator this also disables 2FA on that account only (SPEC S9: the
    lost-phone path for the Administrator); every other user's 2FA is untouched. For any other
    user only the password changes. Returns (result, generated password or None); the generated
    password is never part of the result, so it cannot end up in --json output or the audit log.
    """
    from .passwords import generate_password, hash_password

    target = users.get_user(store.conn, name, USER_COLUMNS)
    permissions.require_write(store.conn, actor, target)
    generated = None
    if password is None:
        password = generated = generate_password()
    password_hash = hash_password(password)  # validates the length before anything is written
    backup_path = backup_first(store, f"reset-password {target['name']}", actor)
    with store.write() as conn:
        target = users.get_user(conn, name, USER_COLUMNS)  # re-read under the write lock
        permissions.require_write(conn, actor, target)
        conn.execute(
            "UPDATE users SET password_hash = ? WHERE id = ?", (password_hash, target["id"])
        )
        disable = bool(target["builtin"])
        if disable:
            _disable_two_factor(conn, target["id"])
        two_factor = "disabled" if disable else "unchanged"
        audit.record(
            conn,
            actor.label,
            "user.reset-password",
            target["name"],
            "ok",
            {
                "backup": backup_path,
                "password": "generated" if generated else "given",
                "two_factor": two_factor,
                "previous_state": target["state"],
            },
        )
        status = users.user_status(conn, target["name"])
    result = {
        "name": target["name"],
        "backup": backup_path,
        "password": "generated" if generated else "given",
        "two_factor": two_factor,
        "state": status["state"],
        "locked": status["locked"],
    }
    return result, generated
