"""Authenticating a console user who acts with `--as NAME` (password, then later their OTP)."""

from __future__ import annotations

from . import audit
from .actors import Actor
from .db import Store
from .errors import Locked, PermissionDenied


def authenticate_actor(store: Store, name: str, password: str) -> Actor:
    """Check NAME's password and return them as the acting user; every attempt is audited.

    The error does not say whether the name exists, so `--as` cannot be used to probe names.
    """
    from .passwords import verify_password

    row = store.execute(
        "SELECT id, name, password_hash, builtin, locked FROM users WHERE name = ?", (name,)
    ).fetchone()
    ok = verify_password(row["password_hash"] if row else None, password)
    with store.write() as conn:
        audit.record(
            conn, f"as:{name}", "auth.actor", row["name"] if row else name, "ok" if ok else "failed"
        )
    if not ok or row is None:
        raise PermissionDenied(
            f"Authentication as {name!r} failed.",
            "Check the name and password given with --as (the password is read from the prompt "
            "or, with --as-password-stdin, from the first line of standard input).",
        )
    if row["locked"]:
        raise Locked(f"{row['name']} is locked.", "An administrator can run `eset2fa user unlock`.")
    return Actor(label=row["name"], user_id=row["id"], is_admin=bool(row["builtin"]))
