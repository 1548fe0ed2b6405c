"""Token reset by SMS (SPEC S7): a one-time code to the STORED phone, then a new TOTP secret.

1. `request_reset`: a verified backup first (nothing else happens if it fails), then an 8-digit
   code from `secrets` is sent by SMS to the number stored for the user (there is no way to give
   another one), and only then is the reset recorded: the code's keyed hash (a random salt and a
   subkey of the store's key, `eset2fa.secrets.code_hash`), an expiry (`reset.code_ttl_seconds`)
   and an attempt limit (`reset.max_attempts`). If the SMS cannot be delivered (exit 7) nothing
   is recorded, so there is never a pending reset whose code nobody received; an earlier pending
   reset is replaced only once a new code went out.
2. `confirm_reset`: the code is compared in constant time; every wrong code counts, the last
   allowed wrong code cancels the reset, an expired one is cancelled too. The right code provisions
   a new secret (the user becomes `pending` with a new QR code) in the same transaction that
   deletes the reset: the old secret works until that commit and never after.

Why a fast hash (`eset2fa.secrets.code_hash`) is enough here: the code lives at most
`reset.code_ttl_seconds` and online guessing is capped by the attempt limit. Offline, 10^8 codes
would fall to any unkeyed hash in seconds; keyed with a subkey of the store's key, which is not in
the file, a copy of the database or a backup does not let anyone test a single guess.
"""

from __future__ import annotations

import secrets
import sqlite3
from datetime import timedelta

from eset2fa.accounts import permissions
from eset2fa.accounts.actors import Actor
from eset2fa.clock import now, now_iso, to_iso
from eset2fa.db import Store
from eset2fa.db import token_resets as token_reset_rows
from eset2fa.db import users as user_rows
from eset2fa.errors import CheckFailed, DeliveryFailed, Eset2faError, StateConflict
from eset2fa.ops import audit_chain
from eset2fa.secrets import code_hash

CODE_DIGITS = 8


def _new_code() -> str:
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def _normalize(code: str) -> str | None:
    """The code without spaces or dashes; None if it is not CODE_DIGITS ASCII digits."""
    cleaned = (code or "").replace(" ", "").replace("-", "").strip()
    if len(cleaned) == CODE_DIGITS and cleaned.isascii() and cleaned.isdigit():
        return cleaned
    return None


def _check_resettable(row: sqlite3.Row) -> None:
    name = row["name"]
    if row["state"] == "disabled":
        raise StateConflict(
            f"{name} has no two-factor authentication, so there is no token to reset.",
            f"Enable it: eset2fa user enable {name} --method totp",
        )
    if row["method"] != "totp":
        raise StateConflict(
            f"{name} approves push requests; a token reset applies to authenticator apps (TOTP).",
            f"For a new device: eset2fa user recover {name} --lost-phone",
        )
    if row["phone"] is None:
        raise StateConflict(
            f"{name} has no stored phone number to send the verification code to.",
            f"Without the phone, recover instead: eset2fa user recover {name} --lost-phone",
        )


def has_pending_reset(store: Store, user_id: int) -> bool:
    return token_reset_rows.exists(store.conn, user_id)


def request_reset(store: Store, actor: Actor, name: str) -> dict:
    """Back up, send a verification code by SMS to NAME's stored phone, record its hash."""
    from eset2fa.ops import settings
    from eset2fa.ops.delivery import sms_transport
    from eset2fa.recovery.backup_first import backup_first

    target = user_rows.get(store.conn, name)
    permissions.require_write(store.conn, actor, target)
    _check_resettable(target)
    # The new secret needs the key at confirmation: without it, send no code (exit 9 now).
    from eset2fa.secrets import keys

    codes_key = keys.for_store(store).codes_key
    backup_path = backup_first(store, f"reset-token {target['name']}", actor)

    ttl = settings.get(store.conn, "reset.code_ttl_seconds")
    max_attempts = settings.get(store.conn, "reset.max_attempts")
    code = _new_code()
    phone = target["phone"]  # the stored number, and only that one (SPEC S7)
    transport = sms_transport(store)
    text = (
        f"eset2fa token reset for {target['name']}: your verification code is {code}. "
        f"It expires in {max(ttl // 60, 1)} min. "
        "If you did not ask for it, tell your administrator."
    )
    try:
        # The SMS lives no longer than the code: a gateway's queue drops it unsent once it expired.
        delivery = transport.send_sms(phone, text, user=target["name"], ttl=ttl)
    except DeliveryFailed as error:
        with store.write() as conn:
            audit_chain.record(
                conn,
                actor.label,
                "user.reset-token",
                target["name"],
                "delivery_failed",
                {"backup": backup_path, "transport": transport.name, "error": error.message},
            )
        error.hint = (
            f"{error.hint or ''} No reset was recorded; run `eset2fa user reset-token "
            f"{target['name']}` again once the gateway works."
        ).strip()
        raise
    salt = code_hash.new_salt()
    created = now()
    expires_at = to_iso(created + timedelta(seconds=ttl))
    with store.write() as conn:
        token_reset_rows.put(
            conn,
            target["id"],
            code_hash=code_hash.hash_code(codes_key, salt, code),
            salt=salt,
            phone=phone,
            created_at=to_iso(created),
            expires_at=expires_at,
            requested_by=actor.label,
            backup=backup_path,
        )
        audit_chain.record(
            conn,
            actor.label,
            "user.reset-token",
            target["name"],
            "sent",
            {"backup": backup_path, "transport": delivery.transport, "expires_at": expires_at},
        )
    return {
        "name": target["name"],
        "backup": backup_path,
        "sent_to": phone,
        "transport": delivery.transport,
        "reference": delivery.reference,
        "expires_at": expires_at,
        "max_attempts": max_attempts,
    }


def confirm_reset(
    store: Store,
    actor_label: str,
    name: str,
    code: str,
    *,
    actor: Actor | None = None,
    send_link: bool = True,
) -> dict:
    """Check a token reset code; on success NAME gets a new secret and is pending (new QR).

    With `server.public_url` set, the user then gets a one-time enrollment link by SMS to the
    stored phone (`send_link=False`: the caller sends it itself, as the login does).

    `actor` (an admin, `user reset-token --confirm`) needs Write permission over NAME; without it
    the caller has already authenticated NAME themselves (`auth login`). Raises StateConflict (no
    pending reset) or CheckFailed (wrong, expired or exhausted code; every attempt is counted).
    """
    from eset2fa.ops import settings
    from eset2fa.twofactor.enrollment import reenroll

    if actor is not None:
        target = user_rows.get(store.conn, name)
        permissions.require_write(store.conn, actor, target)
    given = _normalize(code)
    from eset2fa.secrets import keys

    codes_key = keys.for_store(store, create=True).codes_key
    refusal: Eset2faError | None = None
    result: dict | None = None
    with store.write() as conn:
        target = user_rows.get(conn, name)
        if actor is not None:
            permissions.require_write(conn, actor, target)
        reset = token_reset_rows.find(conn, target["id"])
        max_attempts = settings.get(conn, "reset.max_attempts")
        if reset is None:
            audit_chain.record(
                conn, actor_label, "user.reset-token.confirm", target["name"], "none"
            )
            refusal = StateConflict(
                f"{target['name']} has no pending token reset.",
                f"Start one (a code is sent by SMS): eset2fa user reset-token {target['name']}",
            )
        elif now_iso() >= reset["expires_at"]:
            token_reset_rows.delete(conn, target["id"])
            audit_chain.record(
                conn, actor_label, "user.reset-token.confirm", target["name"], "expired"
            )
            refusal = CheckFailed(
                f"The token reset code for {target['name']} has expired; the reset is cancelled.",
                f"Send a new code: eset2fa user reset-token {target['name']}",
            )
        elif given is not None and code_hash.matches(
            codes_key, reset["salt"], given, reset["code_hash"]
        ):
            token_reset_rows.delete(conn, target["id"])
            uri = reenroll(conn, store, target, "totp")
            audit_chain.record(
                conn,
                actor_label,
                "user.reset-token.confirm",
                target["name"],
                "ok",
                {"backup": reset["backup"], "attempts": reset["attempts"] + 1},
            )
            result = {
                "name": target["name"],
                "state": "pending",
                "method": "totp",
                "backup": reset["backup"],
                "uri": uri,
            }
        else:
            attempts = reset["attempts"] + 1
            remaining = max(max_attempts - attempts, 0)
            if remaining == 0:
                token_reset_rows.delete(conn, target["id"])
            else:
                token_reset_rows.set_attempts(conn, target["id"], attempts)
            audit_chain.record(
                conn,
                actor_label,
                "user.reset-token.confirm",
                target["name"],
                "rejected" if remaining else "cancelled",
                {"attempts": attempts, "malformed": given is None},
            )
            refusal = CheckFailed(
                f"Wrong token reset code for {target['name']}; "
                + (
                    f"{remaining} attempt(s) left."
                    if remaining
                    else "no attempts left: the reset is cancelled."
                ),
                "Enter the 8-digit code from the SMS."
                if remaining
                else f"Send a new code: eset2fa user reset-token {target['name']}",
            )
    if refusal is not None:
        raise refusal
    if send_link:
        from eset2fa.twofactor.enroll_links import send_enrollment_sms

        sent = send_enrollment_sms(store, actor_label, target, target["phone"])
        if sent is not None:
            result["sms"] = sent
    return result
