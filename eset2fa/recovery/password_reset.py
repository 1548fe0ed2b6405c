"""`user reset-password` (SPEC S9): a new password after a backup; for the built-in
Administrator also 2FA off on that account only, the lost-phone path for the Administrator."""

from __future__ import annotations

from eset2fa.accounts import console_users, permissions
from eset2fa.accounts.actors import Actor
from eset2fa.db import Store
from eset2fa.db import users as user_rows
from eset2fa.ops import audit_chain
from eset2fa.recovery.backup_first import backup_first
from eset2fa.twofactor.enrollment import clear_second_factor


def reset_password(
    store: Store, actor: Actor, name: str, password: str | None = None
) -> tuple[dict, str | None]:
    """Set a new password for NAME (generated when None), after a backup.

    For the built-in Administrator this also disables 2FA on that account only (SPEC S9: the
    lost-phone path for the Administrator); every other user's 2FA is untouched. For any other
    user only the password changes. Returns (result, generated password or None); the generated
    password is never part of the result, so it cannot end up in --json output or the audit log.
    """
    from eset2fa.accounts.passwords import configured_profile, generate_password, hash_password

    target = user_rows.get(store.conn, name)
    permissions.require_write(store.conn, actor, target)
    generated = None
    if password is None:
        password = generated = generate_password()
    # Validates the length before anything is written.
    password_hash = hash_password(password, configured_profile(store.conn))
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
