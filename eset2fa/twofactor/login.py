"""The interactive login (SPEC S3): password, first-login enrollment, then the one-time password.

The command supplies the prompts and the rendering as callbacks, so this module never touches a
terminal. Steps:
1. the password (a wrong password or unknown name fails alike: names cannot be probed); wrong
   passwords are counted and slowed down, and lock the account (`lockout.check_password`);
2. for a user whose 2FA is `pending`: the phone number if none is stored yet (E.164, stored once),
   the enrollment SMS through the configured transport (a one-time link to the enrollment page
   with `server.public_url`, else the otpauth URI: `enroll_links.send_enrollment_sms`), and the QR
   code shown;
3. the one-time password, checked by `verify_otp` (wrong codes count toward the lockout).
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass

from eset2fa.db import Store
from eset2fa.db import users as user_rows
from eset2fa.errors import CheckFailed, Locked, UsageError
from eset2fa.ops import audit_chain
from eset2fa.recovery import codes as recovery_codes
from eset2fa.recovery import token_reset
from eset2fa.secrets import keys
from eset2fa.twofactor import lockout, totp

OTP_ATTEMPTS = 3  # prompts per login; every wrong one counts toward the lockout
PHONE_ATTEMPTS = 3


@dataclass
class LoginCallbacks:
    ask_phone: Callable[[str], str]  # prompt -> typed phone number
    ask_otp: Callable[[str], str]  # prompt -> typed code
    show_enrollment: Callable[[str], None]  # otpauth URI -> shows the QR code
    notice: Callable[[str], None]  # a line for the person logging in


def pending_uri(store: Store, row) -> str:
    """The enrollment URI of a pending TOTP user (no permission check: the user themselves)."""
    from eset2fa.ops import settings

    secret = keys.for_store(store).open(row["secret"], totp.secret_context(row["id"]))
    issuer = settings.get(store.conn, "totp.issuer")
    return totp.provisioning_uri(
        base64.b32encode(secret).decode(), row["name"], issuer, **totp.parameters_of(row)
    )


def _check_password(store: Store, name: str, password: str):
    """The password, counted and throttled by `lockout.check_password` like `--as`."""

    check = lockout.check_password(
        store, name, password, action="auth.login", results=("password_ok", "password_failed")
    )
    if check.locked:
        raise lockout.locked_error(check.row["name"])
    if not check.accepted:
        raise CheckFailed(
            "Login failed: wrong name or password.",
            "Check both; an administrator can reset a password.",
        )
    return check.row


def _enroll_phone(store: Store, row, callbacks: LoginCallbacks) -> str:
    from eset2fa.twofactor.phones import normalize_phone, store_phone

    for attempt in range(1, PHONE_ATTEMPTS + 1):
        typed = callbacks.ask_phone("Phone number for the enrollment link (international form)")
        try:
            phone = normalize_phone(typed)
            break
        except UsageError as error:
            if attempt == PHONE_ATTEMPTS:
                raise
            callbacks.notice(f"{error.message} {error.hint}")
    with store.write() as conn:
        store_phone(conn, row["name"], row, phone)
    return phone


def _send_link(store: Store, row, phone: str, uri: str, callbacks: LoginCallbacks) -> str | None:
    """The enrollment SMS (a one-time link, or the otpauth URI without server.public_url);
    returns the warning when the SMS carried the secret."""
    from eset2fa.twofactor.enroll_links import send_enrollment_sms

    sent = send_enrollment_sms(store, row["name"], row, phone, uri=uri)
    if "error" in sent:
        callbacks.notice(f"The enrollment SMS could not be sent ({sent['error']}).")
        return None
    if sent["carries"] == "link":
        callbacks.notice(
            f"Enrollment link sent by SMS to {phone} ({sent['transport']}): open it on the phone;"
            f" it works once, until {sent['expires_at']}."
        )
        return None
    callbacks.notice(f"Enrollment link sent by SMS to {phone} ({sent['transport']}).")
    callbacks.notice(f"Warning: {sent['warning']}")
    return sent["warning"]


def _confirm_token_reset(store: Store, row, callbacks: LoginCallbacks):
    """A token reset is pending: the code from its SMS comes first; returns the re-read row.

    The right code gives the user their new secret (pending), so the enrollment step below shows
    the new QR code. Wrong codes count toward the reset's attempt limit, not the OTP lockout.
    """
    callbacks.notice(f"A token reset is pending for {row['name']}: a code was sent by SMS.")
    for attempt in range(1, OTP_ATTEMPTS + 1):
        code = callbacks.ask_otp("Verification code from the token reset SMS")
        try:
            # The login sends the enrollment SMS itself, right after this.
            token_reset.confirm_reset(store, row["name"], row["name"], code, send_link=False)
        except CheckFailed as error:
            if attempt == OTP_ATTEMPTS or not token_reset.has_pending_reset(store, row["id"]):
                raise
            callbacks.notice(error.message)
            continue
        callbacks.notice("Token reset confirmed: set up the authenticator app with the new code.")
        break
    return user_rows.find_by_id(store.conn, row["id"])


def login(store: Store, name: str, password: str, callbacks: LoginCallbacks) -> dict:
    """Run the login; returns {"name", "state", "second_factor"} or raises (exit codes as verify).

    Raises CheckFailed (wrong password or OTP), Locked, UsageError (no way to ask).
    """
    row = _check_password(store, name, password)
    if row["state"] == "disabled":
        callbacks.notice(f"{row['name']} has no two-factor authentication: password only.")
        return {"name": row["name"], "state": "disabled", "second_factor": None}
    if row["method"] == "push":
        from eset2fa.accounts.actors import Actor

        def announce(request: dict) -> None:
            callbacks.notice(
                f"Login request ID: {request['id']}, number {request['number']}. Approve the "
                f"push that shows this ID and pick {request['number']} "
                f"(within {request['timeout_seconds']} s)."
            )

        result = push_login(
            store, Actor(label=row["name"], user_id=row["id"]), row["name"], on_created=announce
        )
        return {
            "name": row["name"],
            "state": result["state"],
            "second_factor": "push",
            "request_id": result["id"],
            "number": result["number"],
        }
    if token_reset.has_pending_reset(store, row["id"]):
        row = _confirm_token_reset(store, row, callbacks)
    warning = None
    if row["state"] == "pending":
        phone = row["phone"] or _enroll_phone(store, row, callbacks)
        uri = pending_uri(store, row)
        warning = _send_link(store, row, phone, uri, callbacks)
        callbacks.show_enrollment(uri)

    for _attempt in range(OTP_ATTEMPTS):
        code = callbacks.ask_otp(f"One-time password for {row['name']} (or a recovery code)")
        code = code.strip()
        digits = row["totp_digits"] or totp.DIGITS  # 8 for a user imported with 8-digit codes
        if not totp.is_well_formed(code, digits) and recovery_codes.looks_like_recovery_code(code):
            result = recovery_codes.use_recovery_code(store, row["name"], code, action="auth.login")
            factor = "recovery_code"
        else:
            result = totp.verify_otp(store, row["name"], code, action="auth.login")
            factor = "totp"
        if result.accepted:
            if row["state"] == "pending" and result.state == "active":
                _issue_recovery_codes(store, row, callbacks)
            done = {"name": row["name"], "state": result.state, "second_factor": factor}
            return {**done, "warning": warning} if warning else done
        if result.locked:
            raise Locked(
                f"Wrong one-time password; {row['name']} is now locked.",
                "An administrator can run `eset2fa user unlock`.",
            )
        callbacks.notice(
            f"Wrong one-time password ({result.reason.replace('_', ' ')}); "
            f"{result.remaining} attempt(s) left before the lock."
        )
    raise CheckFailed(
        "Login failed: the one-time password was rejected.",
        "Check the phone's clock, and enter the code currently shown in the app.",
    )


def _issue_recovery_codes(store: Store, row, callbacks: LoginCallbacks) -> None:
    """At activation the user gets one-time recovery codes, shown this once (SPEC beyond item).

    With them a user who loses the phone can still log in once, without an administrator.
    """
    from eset2fa.accounts.actors import Actor

    _, codes = recovery_codes.regenerate(
        store, Actor(label=row["name"], user_id=row["id"]), row["name"]
    )
    callbacks.notice(
        "Two-factor authentication is active. Recovery codes, each usable once instead of a "
        "one-time password if the phone is lost (shown only now: store them safely):\n  "
        + "\n  ".join(codes)
    )


def push_login(
    store: Store,
    actor,
    name: str,
    *,
    timeout: int | None = None,
    on_created: Callable[[dict], None] | None = None,
) -> dict:
    """The push second factor (SPEC S12, S13): a request whose ID the login screen shows.

    Only for a user whose method is push and who is not locked. The first approved push turns a
    `pending` user `active`, as the first valid OTP does for TOTP. Raises PushDenied (exit 8) when
    the push is rejected or expires, DeliveryFailed (7) when it cannot be sent.
    """
    from eset2fa.clock import now_iso
    from eset2fa.errors import PushDenied
    from eset2fa.twofactor import push_approval
    from eset2fa.twofactor.push_start import require_push_user

    row = require_push_user(store, name)
    try:
        request = push_approval.send_and_wait(
            store, actor, row["name"], timeout=timeout, on_created=on_created
        )
    except PushDenied as denied:
        with store.write() as conn:
            audit_chain.record(conn, actor.label, "auth.push", row["name"], "denied")
        raise denied
    with store.write() as conn:
        state = user_rows.find_by_id(conn, row["id"])["state"]
        if state == "pending":
            user_rows.activate(conn, row["id"], now_iso())
            state = "active"
        audit_chain.record(
            conn, actor.label, "auth.push", row["name"], "ok", {"request": request["id"]}
        )
    return {**request, "state": state}
