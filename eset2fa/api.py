"""eset2fa from Python: open a store, verify codes, read a user's status, enable, disable, unlock.

The same calls the CLI makes (`auth verify`, `user status|enable|disable|unlock` go through this
module), so a web application, a PAM helper or a provisioning script gets exactly the CLI's rules:
the lockout, replay protection, permissions and one audit row per attempt or change. Each function
is a thin wrapper over the core and says which core function it calls; none has logic of its own.

    from eset2fa import api

    store = api.open_store("/var/lib/eset2fa/eset2fa.db")
    if api.verify(store, "alice", "123456").accepted:
        ...

Errors are `eset2fa.errors` classes, all subclasses of `Eset2faError` with `.message`, `.hint`
and `.exit_code` (the CLI's exit codes): `NotFound` (3), `Locked` (4), `PermissionDenied` (5),
`StateConflict` (6, e.g. 2FA not enabled), `StorageError`/`EncryptionKeyError` (9: not an eset2fa
store, newer schema, wrong or missing key). A rejected code is not an error: it is a
`VerifyResult` with `accepted=False`.

`actor` is who acts, as `--as` in the CLI: an `eset2fa.accounts.actors.Actor`; None means the
local operator (full rights, audited as `local:<os user>`), as the CLI without `--as`.

Importing this module is cheap (the CLI's `user status` and `auth verify` cold starts import it):
each function imports the core it needs when called. `api.VerifyResult`, `api.BulkReport`,
`api.Store`, `api.Actor` and `api.Method` are loaded on first access.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypedDict

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from datetime import datetime
    from os import PathLike

    from eset2fa.accounts.actors import Actor
    from eset2fa.db import Store
    from eset2fa.twofactor.enrollment import BulkReport
    from eset2fa.twofactor.states import Method
    from eset2fa.twofactor.totp import VerifyResult

__all__ = [
    "BulkReport",
    "Method",
    "Store",
    "UnlockResult",
    "UserStatus",
    "VerifyResult",
    "Actor",
    "disable",
    "enable",
    "open_store",
    "status",
    "unlock",
    "verify",
    "verify_recovery_code",
]

# Loaded on first access (PEP 562), so `import eset2fa.api` stays as cheap as the CLI needs.
_LAZY = {
    "Actor": "eset2fa.accounts.actors",
    "BulkReport": "eset2fa.twofactor.enrollment",
    "Method": "eset2fa.twofactor.states",
    "Store": "eset2fa.db",
    "VerifyResult": "eset2fa.twofactor.totp",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# The functional form (noqa UP013): the class form, under `from __future__ import annotations`,
# compiles each field's annotation string at import, ~0.9 ms paid by every `user status` start.
UserStatus = TypedDict(  # noqa: UP013
    "UserStatus",
    {
        "name": str,
        "group": str | None,
        "state": str,  # "disabled", "pending" (until the first accepted code) or "active"
        "method": str | None,  # "totp" or "push"; None while disabled
        "locked": bool,
        "fail_count": int,  # wrong codes in a row; the lock comes at lockout.max_failures
    },
)
UserStatus.__doc__ = "A user's two-factor status, as `eset2fa user status NAME --json` prints it."

UnlockResult = TypedDict(  # noqa: UP013 (as UserStatus)
    "UnlockResult", {"name": str, "was_locked": bool, "locked": bool}
)


def _acting(actor: Actor | None) -> Actor:
    if actor is not None:
        return actor
    from eset2fa.accounts.actors import local_operator

    return local_operator()


def open_store(
    path: str | PathLike[str], *, create: bool = False, administrator_password: str | None = None
) -> Store:
    """Open the eset2fa store at `path` (migrating an older schema); close it with `.close()`.

    Without `create`, a missing or empty file is `StorageError` (exit 9; nothing is created).
    With `create=True` a missing store is created as the CLI does on first use (file mode 0600),
    with the built-in Administrator, whose password is `administrator_password` or, if None, a
    random one that is shown to nobody (set one with `eset2fa user reset-password Administrator`).
    Calls `eset2fa.db.open_store` and `accounts.console_users.ensure_administrator`.
    """
    from os import fspath
    from pathlib import Path

    from eset2fa.db import open_store as open_db
    from eset2fa.db.location import PgLocation, is_postgres

    # A path, or a PostgreSQL URL (postgresql://...) as --db takes it.
    if not isinstance(path, PgLocation):
        text = fspath(path)
        path = PgLocation(text) if isinstance(text, str) and is_postgres(text) else Path(path)
    store = open_db(path, create=create)
    if store.created:
        from eset2fa.accounts.console_users import ensure_administrator

        try:
            ensure_administrator(store, administrator_password)
        except BaseException:
            store.close()
            raise
    return store


def verify(
    store: Store, name: str, code: str, *, now: float | datetime | None = None
) -> VerifyResult:
    """Check NAME's one-time password; `.accepted` says whether to let them in.

    Counts a rejection toward the lockout, turns `pending` into `active` on the first accepted
    code, refuses a replayed code, and audits the attempt, in one transaction. Raises NotFound,
    StateConflict (no TOTP enabled) and Locked (even a correct code). `now` (unix time or an
    aware datetime) is for tests. Calls `twofactor.totp.verify_otp`.
    """
    from eset2fa.twofactor.totp import verify_otp

    return verify_otp(store, name, code, now=now)


def verify_recovery_code(store: Store, name: str, code: str) -> VerifyResult:
    """Accept one of NAME's unused recovery codes instead of a one-time password (each works
    once); counted, locked and audited like `verify`. Calls `recovery.codes.use_recovery_code`.
    """
    from eset2fa.recovery.codes import use_recovery_code

    return use_recovery_code(store, name, code)


def status(store: Store, name: str) -> UserStatus:
    """NAME's two-factor state, lock and failed-attempt count; NotFound when there is no such
    user. Reads only. Calls `accounts.console_users.user_status`."""
    from eset2fa.accounts.console_users import user_status

    return user_status(store, name)


def enable(
    store: Store,
    names: str | Sequence[str] | None = None,
    *,
    method: Method | str = "totp",
    actor: Actor | None = None,
    group: str | None = None,
    all_users: bool = False,
    phone: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> BulkReport:
    """Turn on two-factor authentication for one user, a list, a `group` or `all_users` (exactly
    one of them); each becomes `pending` with a fresh secret, in one transaction.

    Returns a BulkReport: `.results` ([{"name", "result"}], result "enabled", "already_enabled",
    "not_found" or "denied"), `.counts`, and for one TOTP user `.uri`, the otpauth:// URI to show
    as a QR code (it holds the secret: show it to that user only). `phone` (one user) records
    their number. `progress(n)` is called as users are done. Calls `twofactor.enrollment.enable`.
    """
    from eset2fa.twofactor.enrollment import enable as enable_users

    return enable_users(
        store,
        _acting(actor),
        names=[names] if isinstance(names, str) else names,
        group=group,
        all_users=all_users,
        method=method,
        phone=phone,
        progress=progress,
    )


def disable(
    store: Store,
    names: str | Sequence[str] | None = None,
    *,
    actor: Actor | None = None,
    group: str | None = None,
    all_users: bool = False,
    progress: Callable[[int], None] | None = None,
) -> BulkReport:
    """Turn off two-factor authentication (secret, phone, lock and counters cleared; the audit log
    kept) for one user, a list, a `group` or `all_users`, in one transaction.

    Returns a BulkReport (results "disabled", "already_disabled", "not_found", "denied"). It does
    not ask for confirmation: the caller decides. Calls `twofactor.enrollment.disable`.
    """
    from eset2fa.twofactor.enrollment import disable as disable_users

    return disable_users(
        store,
        _acting(actor),
        names=[names] if isinstance(names, str) else names,
        group=group,
        all_users=all_users,
        progress=progress,
    )


def unlock(store: Store, name: str, *, actor: Actor | None = None) -> UnlockResult:
    """Clear NAME's lock and failed-attempt count (Write permission over NAME needed).
    Calls `twofactor.lockout.unlock`."""
    from eset2fa.twofactor.lockout import unlock as unlock_user

    return unlock_user(store, _acting(actor), name)
