"""Recovery procedures (SPEC S6-S9): each one takes a verified backup before it changes anything.

`backup_first` is the gate every recovery command goes through: it returns the backup's path (the
command reports it and audits it), and if the backup cannot be taken the command stops there with
a StorageError and the store unchanged.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from eset2fa.accounts import console_users, permissions
from eset2fa.accounts.actors import Actor
from eset2fa.db import Store
from eset2fa.db import users as user_rows
from eset2fa.errors import Eset2faError, StateConflict, StorageError
from eset2fa.ops import audit_chain
from eset2fa.twofactor.enrollment import clear_second_factor, reenroll


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


def reset_password(
    store: Store, actor: Actor, name: str, password: str | None = None
) -> tuple[dict, str | None]:
    """Set a new password for NAME (generated when None), after a backup.

    For the built-in Administrator this also disables 2FA on that account only (SPEC S9: the
    lost-phone path for the Administrator); every other user's 2FA is untouched. For any other
    user only the password changes. Returns (result, generated password or None); the generated
    password is never part of the result, so it cannot end up in --json output or the audit log.
    """
    from eset2fa.accounts.passwords import generate_password, hash_password

    target = user_rows.get(store.conn, name)
    permissions.require_write(store.conn, actor, target)
    generated = None
    if password is None:
        password = generated = generate_password()
    password_hash = hash_password(password)  # validates the length before anything is written
    backup_path = backup_first(store, f"reset-password {target['name']}", actor)
    with store.write() as conn:
        target = user_rows.get(conn, name)  # re-read under the write lock
        permissions.require_write(conn, actor, target)
        user_rows.set_password_hash(conn, target["id"], password_hash)
        disable = bool(target["builtin"])
        if disable:
            clear_second_factor(conn, [target["id"]])
        two_factor = "disabled" if disable else "unchanged"
        audit_chain.record(
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
        status = console_users.status_of(user_rows.get(conn, target["name"]))
    result = {
        "name": target["name"],
        "backup": backup_path,
        "password": "generated" if generated else "given",
        "two_factor": two_factor,
        "state": status["state"],
        "locked": status["locked"],
    }
    return result, generated


def recover_lost_phone(
    store: Store, actor: Actor, name: str, confirm: Callable[[str], None]
) -> dict:
    """SPEC S9 for any user: backup, drop the lost factor, enrol again (same method), unlock.

    `confirm(question)` is asked after the checks and before the backup (the command makes it
    refuse without a terminal unless --yes). In ONE transaction after the backup: the secret,
    phone and replay step are cleared, 2FA is enabled again as `pending` with the same method (a
    new TOTP secret, or push waiting for the new device), the lock and fail count are reset, any
    pending token reset and unused recovery codes are dropped (they belonged to the lost setup).
    Returns the backup path and the new enrollment (its otpauth URI for TOTP).
    """
    target = user_rows.get(store.conn, name)
    permissions.require_write(store.conn, actor, target)
    _require_two_factor(target)
    confirm(
        f"Recover {target['name']} after a lost phone? Their current {target['method']} setup "
        "stops working now and a new enrollment starts."
    )
    if target["method"] == "totp":
        from eset2fa.secrets import keys

        keys.for_store(store)  # a missing or wrong key stops here (exit 9), before the backup
    backup_path = backup_first(store, f"recover {target['name']}", actor)
    with store.write() as conn:
        target = user_rows.get(conn, name)  # re-read under the write lock
        permissions.require_write(conn, actor, target)
        _require_two_factor(target)
        method = target["method"]
        clear_second_factor(conn, [target["id"]])
        uri = reenroll(conn, store, target, method)
        audit_chain.record(
            conn,
            actor.label,
            "user.recover",
            target["name"],
            "ok",
            {
                "backup": backup_path,
                "lost": "phone",
                "method": method,
                "previous_state": target["state"],
                "was_locked": bool(target["locked"]),
                "phone_cleared": target["phone"] is not None,
            },
        )
    result = {
        "name": target["name"],
        "backup": backup_path,
        "method": method,
        "state": "pending",
        "locked": False,
        "fail_count": 0,
        "previous_state": target["state"],
    }
    if uri is not None:
        result["uri"] = uri
    return result


def _require_two_factor(target: sqlite3.Row) -> None:
    if target["state"] != "disabled":
        return
    hint = f"Enable it instead: eset2fa user enable {target['name']} --method totp"
    if target["builtin"]:
        hint = (
            "If the Administrator's password is lost too: eset2fa user reset-password "
            f"{target['name']}. To turn 2FA on: eset2fa user enable {target['name']}"
        )
    raise StateConflict(
        f"{target['name']} has no two-factor authentication: there is no lost factor to recover.",
        hint,
    )
