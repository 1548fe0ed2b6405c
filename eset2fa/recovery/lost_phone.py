"""`user recover NAME --lost-phone` (SPEC S9 for any user): after a backup, the lost factor is
dropped and the user enrolls again with the same method."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from eset2fa.accounts import permissions
from eset2fa.accounts.actors import Actor
from eset2fa.db import Store
from eset2fa.db import users as user_rows
from eset2fa.errors import StateConflict
from eset2fa.ops import audit_chain
from eset2fa.recovery.backup_first import backup_first
from eset2fa.twofactor.enrollment import clear_second_factor, reenroll


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
