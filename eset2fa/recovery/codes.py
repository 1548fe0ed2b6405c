"""One-time recovery codes: a way in for a user whose phone is gone, without an administrator.

`user recovery-codes NAME --regenerate` makes 10 codes, shows them once and keeps only their
hashes; each works once at `auth verify NAME --recovery-code CODE` or at `auth login`. A used code
resets the fail count like a good OTP; a wrong one counts toward the lockout like a wrong OTP; a
locked user is refused even with a good code.

Hashing (`eset2fa.secrets.code_hash`): HMAC-SHA256 with one random 16-byte salt per user's batch,
keyed with a subkey of the store's key, not Argon2. A code has 10 symbols from a 32-letter
alphabet, 50 bits of entropy, and without the key a stolen database does not let anyone test a
guess at all; checking a code stays two HMACs: the slow-hash cost is what protects low-entropy
passwords, and these are not low-entropy.
"""

from __future__ import annotations

import hmac
import secrets
import sqlite3
from collections.abc import Iterable

from eset2fa.accounts import permissions
from eset2fa.accounts.actors import Actor
from eset2fa.clock import now_iso
from eset2fa.db import Store
from eset2fa.db import recovery_codes as code_rows
from eset2fa.db import users as user_rows
from eset2fa.errors import Eset2faError, NotFound, StateConflict
from eset2fa.ops import audit_chain
from eset2fa.secrets import code_hash, keys
from eset2fa.twofactor import lockout, policy
from eset2fa.twofactor.totp import VerifyResult

COUNT = 10
# Crockford's base32: no I, L, O, U, so a code read aloud or copied by hand survives.
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
SYMBOLS = 10  # 10 x 5 bits = 50 bits
_ALIASES = str.maketrans({"I": "1", "L": "1", "O": "0"})
SCRATCH_DIGITS = 8  # google-authenticator-libpam's scratch codes (see normalize)


def normalize(code: str) -> str | None:
    """The code in canonical form (upper case, no dashes or spaces); None if it cannot be one.

    Eight ASCII digits are a google-authenticator-libpam scratch code, imported as a recovery
    code by `user import --google-authenticator` (their entropy is lower, 26.6 bits, but each
    works once and every wrong attempt counts toward the lockout).
    """
    stripped = (code or "").replace("-", "").replace(" ", "").strip()
    if len(stripped) == SCRATCH_DIGITS and stripped.isascii() and stripped.isdigit():
        return stripped
    cleaned = stripped.upper().translate(_ALIASES)
    if len(cleaned) != SYMBOLS or not cleaned.isascii() or any(c not in ALPHABET for c in cleaned):
        return None
    return cleaned


def looks_like_recovery_code(text: str) -> bool:
    """Tells a recovery code typed at a one-time password prompt from a 6-digit OTP."""
    return normalize(text) is not None


def _new_code() -> str:
    raw = "".join(secrets.choice(ALPHABET) for _ in range(SYMBOLS))
    return f"{raw[:5]}-{raw[5:]}"


def regenerate(store: Store, actor: Actor, name: str) -> tuple[dict, list[str]]:
    """Replace NAME's recovery codes with 10 new ones; (result, the codes: shown once only)."""
    codes_key = keys.for_store(store, create=True).codes_key
    with store.write() as conn:
        target = user_rows.get(conn, name)
        if actor.user_id != target["id"]:  # a user (password + OTP) may renew their own codes
            permissions.require_write(conn, actor, target)
        if target["state"] == "disabled":
            raise StateConflict(
                f"{target['name']} has no two-factor authentication; recovery codes stand in "
                "for its second factor.",
                f"Enable it first: eset2fa user enable {target['name']} --method totp",
            )
        codes = [_new_code() for _ in range(COUNT)]
        salt = code_hash.new_salt()
        hashes = [code_hash.hash_code(codes_key, salt, normalize(code)) for code in codes]
        replaced = code_rows.replace(conn, target["id"], salt, hashes, now_iso())
        audit_chain.record(
            conn,
            actor.label,
            "user.recovery-codes",
            target["name"],
            "regenerated",
            {"count": COUNT, "unused_replaced": replaced},
        )
    return {"name": target["name"], "count": COUNT, "replaced_unused": replaced}, codes


def store_imported(conn: sqlite3.Connection, user_id: int, codes: Iterable[str]) -> int:
    """Codes brought from another tool (google-authenticator-libpam's scratch codes) become the
    user's recovery codes, hashed like ours; inside the caller's write transaction."""
    codes_key = keys.for_connection(conn, create=True).codes_key
    salt = code_hash.new_salt()
    hashes = [code_hash.hash_code(codes_key, salt, normalize(code)) for code in codes]
    code_rows.replace(conn, user_id, salt, hashes, now_iso())
    return len(hashes)


def remaining(store: Store, actor: Actor, name: str) -> dict:
    """How many unused recovery codes NAME has (never the codes)."""
    target = user_rows.get(store.conn, name)
    permissions.require_write(store.conn, actor, target)
    return {"name": target["name"], "unused": code_rows.count_unused(store.conn, target["id"])}


def use_recovery_code(
    store: Store, name: str, code: str, *, actor: str | None = None, action: str = "auth.verify"
) -> VerifyResult:
    """Accept one unused recovery code for NAME (then spent); count, lock and audit like an OTP.

    Raises NotFound, StateConflict (no 2FA) and Locked (even a good code is refused).
    """
    given = normalize(code)
    # Loaded before the transaction, as verify_otp does: the audit row needs it in any case.
    codes_key = keys.for_store(store, create=True).codes_key
    refusal: Eset2faError | None = None
    outcome: VerifyResult | None = None
    with store.write() as conn:
        row = user_rows.find_for_verify(conn, name)
        if row is None:
            audit_chain.record(conn, actor or name, action, name, "unknown_user")
            refusal = NotFound(f"No user named {name!r}.", "List users with `eset2fa user list`.")
        elif row.state == "disabled":
            audit_chain.record(conn, actor or row.name, action, row.name, "not_enabled")
            refusal = StateConflict(
                f"{row.name} has no two-factor authentication.",
                "Recovery codes stand in for the second factor only.",
            )
        elif row.locked:
            audit_chain.record(conn, actor or row.name, action, row.name, "locked")
            refusal = lockout.locked_error(row.name)
        else:
            outcome = _decide(conn, row, given, codes_key)
            audit_chain.record(
                conn,
                actor or row.name,
                action,
                row.name,
                "accepted" if outcome.accepted else "rejected",
                {
                    "factor": "recovery_code",
                    "reason": outcome.reason,
                    "fail_count": outcome.fail_count,
                    **({"locked": True} if outcome.locked else {}),
                },
            )
    if refusal is not None:
        raise refusal
    return outcome


def _decide(
    conn: sqlite3.Connection, row: user_rows.VerifyRow, given: str | None, codes_key: bytes
) -> VerifyResult:
    max_failures = policy.from_stored(row.window, row.max_failures).max_failures
    unused = code_rows.unused(conn, row.id)
    matched = None
    if given is not None and unused:
        salt = unused[0]["salt"]  # one salt per batch: one HMAC per attempt
        candidate = code_hash.hash_code(codes_key, salt, given)
        for stored in unused:  # every stored hash is compared: no early exit
            if hmac.compare_digest(candidate, stored["code_hash"]):
                matched = stored["id"]
    if matched is not None:
        code_rows.mark_used(conn, matched, now_iso())
        lockout.clear_failures(conn, row.id)
        return VerifyResult(row.name, True, "recovery_code", row.state, 0, False, max_failures)
    counted = lockout.count_failure(conn, row.id, row.fail_count, max_failures)
    return VerifyResult(
        row.name,
        False,
        "wrong_code" if given is not None else "malformed",
        row.state,
        counted.fail_count,
        counted.locked,
        counted.remaining,
    )
