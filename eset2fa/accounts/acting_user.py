"""Authenticating a console user who acts with `--as NAME` (password, then later their OTP)."""

from __future__ import annotations

from collections.abc import Callable

from eset2fa.accounts.actors import Actor
from eset2fa.db import Store
from eset2fa.errors import Locked, PermissionDenied, StateConflict, UsageError


def authenticate_actor(
    store: Store,
    name: str,
    password: str,
    *,
    otp: str | None = None,
    ask_otp: Callable[[str], str] | None = None,
) -> Actor:
    """Check NAME's password, then (2FA active) their one-time password; audited.

    The OTP is `otp` (`--as-otp`) or asked with `ask_otp(prompt)` (a terminal prompt); it goes
    through `verify_otp`, so wrong codes count toward NAME's lockout like any login.
    The password goes through `lockout.check_password`: wrong ones are counted, slowed down and
    lock the account at `lockout.max_password_failures`; a locked account answers exit 4 whatever
    the password. The error does not say whether the name exists, so `--as` cannot be used to
    probe names.
    """
    from eset2fa.twofactor import lockout

    check = lockout.check_password(store, name, password, action="auth.actor", actor=f"as:{name}")
    if check.locked:
        raise lockout.locked_error(check.row["name"])
    if not check.accepted:
        raise PermissionDenied(
            f"Authentication as {name!r} failed.",
            "Check the name and password given with --as (the password is read from the prompt "
            "or, with --as-password-stdin, from the first line of standard input).",
        )
    row = check.row
    if row["state"] == "pending":
        raise StateConflict(
            f"{row['name']} has two-factor authentication pending: enrollment is not finished.",
            f"Finish it first with `eset2fa auth login {row['name']}`.",
        )
    if row["state"] == "active":
        _second_factor(store, row["name"], otp, ask_otp)
    return Actor(label=row["name"], user_id=row["id"], is_admin=bool(row["builtin"]))


def _second_factor(
    store: Store, name: str, otp: str | None, ask_otp: Callable[[str], str] | None
) -> None:
    from eset2fa.twofactor.totp import verify_otp

    if otp is None:
        if ask_otp is None:
            raise UsageError(
                f"{name} has two-factor authentication: a one-time password is needed.",
                "Pass it with --as-otp CODE (or run on a terminal to be asked).",
            )
        otp = ask_otp(f"One-time password for {name}")
    result = verify_otp(store, name, otp.strip(), actor=f"as:{name}", action="auth.actor.otp")
    if not result.accepted:
        if result.locked:
            raise Locked(
                f"Wrong one-time password; {name} is now locked.",
                "An administrator can run `eset2fa user unlock`.",
            )
        raise PermissionDenied(
            f"Authentication as {name!r} failed: the one-time password was rejected.",
            f"{result.remaining} attempt(s) left before the account is locked.",
        )
