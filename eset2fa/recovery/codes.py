"""One-time recovery codes: a way in for a user whose phone is gone, without an administrator.

`user recovery-codes NAME --regenerate` makes 10 codes, shows them once and keeps only their
hashes; each works once at `auth verify NAME --recovery-code CODE` or at `auth login`. A used code
resets the fail count like a good OTP; a wrong one counts toward the lockout like a wrong OTP; a
locked user is refused even with a good code.

Hashing: HMAC-SHA256 with one random 16-byte salt per user's batch, not Argon2. A code has 10
symbols from a 32-letter alphabet, 50 bits of entropy, so brute-forcing even a fast hash of it
offline is out of reach (2^50 HMACs per code per salt), while checking a code stays one HMAC: the
slow-hash cost is what protects low-entropy passwords, and these are not low-entropy.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sqlite3

from eset2fa.accounts import console_users, permissions
from eset2fa.accounts.actors import Actor
from eset2fa.clock import now_iso
from eset2fa.db import Store
from eset2fa.errors import Eset2faError, Locked, NotFound, StateConflict
from eset2fa.ops import audit_log
from eset2fa.twofactor.totp import DEFAULT_MAX_FAILURES, VerifyResult

COUNT = 10
# Crockford's base32: no I, L, O, U, so a code read aloud or copied by hand survives.
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
SYMBOLS = 10  # 10 x 5 bits = 50 bits
_ALIASES = str.maketrans({"I": "1", "L": "1", "O": "0"})


def _hash(salt: bytes, normalized: str) -> str:
    return hmac.new(salt, normalized.encode("ascii"), hashlib.sha256).hexdigest()


def normalize(code: str) -> str | None:
    """The code in canonical form (upper case, no dashes or spaces); None if it cannot be one."""
    cleaned = (code or "").replace("-", "").replace(" ", "").strip().upper().translate(_ALIASES)
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
    with store.write() as conn:
        target = console_users.get_user(conn, name, "id, name, group_name, state")
        if actor.user_id != target["id"]:  # a user (password + OTP) may renew their own codes
            permissions.require_write(conn, actor, target)
        if target["state"] == "disabled":
            raise StateConflict(
                f"{target['name']} has no two-factor authentication; recovery codes stand in "
                "for its second factor.",
                f"Enable it first: eset2fa user enable {target['name']} --method totp",
            )
        codes = [_new_code() for _ in range(COUNT)]
        salt = secrets.token_bytes(16)
        created = now_iso()
        replaced = conn.execute(
            "DELETE FROM recovery_codes WHERE user_id = ? AND used_at IS NULL", (target["id"],)
        ).rowcount
        conn.execute("DELETE FROM recovery_codes WHERE user_id = ?", (target["id"],))
        conn.executemany(
            "INSERT INTO recovery_codes (user_id, code_hash, salt, created_at) VALUES (?, ?, ?, ?)",
            [(target["id"], _hash(salt, normalize(code)), salt, created) for code in codes],
        )
        audit_log.record(
            conn,
            actor.label,
            "user.recovery-codes",
            target["name"],
            "regenerated",
            {"count": COUNT, "unused_replaced": replaced},
        )
    return {"name": target["name"], "count": COUNT, "replaced_unused": replaced}, codes


def remaining(store: Store, actor: Actor, name: str) -> dict:
    """How many unused recovery codes NAME has (never the codes)."""
    target = console_users.get_user(store.conn, name, "id, name, group_name")
    permissions.require_write(store.conn, actor, target)
    (unused,) = store.execute(
        "SELECT count(*) FROM recovery_codes WHERE user_id = ? AND used_at IS NULL",
        (target["id"],),
    ).fetchone()
    return {"name": target["name"], "unused": unused}


def use_recovery_code(
    store: Store, name: str, code: str, *, actor: str | None = None, action: str = "auth.verify"
) -> VerifyResult:
    """Accept one unused recovery code for NAME (then spent); count, lock and audit like an OTP.

    Raises NotFound, StateConflict (no 2FA) and Locked (even a good code is refused).
    """
    given = normalize(code)
    refusal: Eset2faError | None = None
    outcome: VerifyResult | None = None
    with store.write() as conn:
        row = conn.execute(
            "SELECT id, name, state, fail_count, locked,"
            " (SELECT value FROM config WHERE key = 'lockout.max_failures') AS max_failures"
            " FROM users WHERE name = ?",
            (name,),
        ).fetchone()
        if row is None:
            audit_log.record(conn, actor or name, action, name, "unknown_user")
            refusal = NotFound(f"No user named {name!r}.", "List users with `eset2fa user list`.")
        elif row["state"] == "disabled":
            audit_log.record(conn, actor or row["name"], action, row["name"], "not_enabled")
            refusal = StateConflict(
                f"{row['name']} has no two-factor authentication.",
                "Recovery codes stand in for the second factor only.",
            )
        elif row["locked"]:
            audit_log.record(conn, actor or row["name"], action, row["name"], "locked")
            refusal = Locked(
                f"{row['name']} is locked after too many wrong codes.",
                f"An administrator can run `eset2fa user unlock {row['name']}`.",
            )
        else:
            outcome = _decide(conn, row, given)
            audit_log.record(
                conn,
                actor or row["name"],
                action,
                row["name"],
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


def _decide(conn: sqlite3.Connection, row: sqlite3.Row, given: str | None) -> VerifyResult:
    max_failures = DEFAULT_MAX_FAILURES if row["max_failures"] is None else int(row["max_failures"])
    unused = conn.execute(
        "SELECT id, code_hash, salt FROM recovery_codes WHERE user_id = ? AND used_at IS NULL",
        (row["id"],),
    ).fetchall()
    matched = None
    if given is not None and unused:
        candidate = _hash(unused[0]["salt"], given)  # one salt per batch: one HMAC per attempt
        for stored in unused:  # every stored hash is compared: no early exit
            if hmac.compare_digest(candidate, stored["code_hash"]):
                matched = stored["id"]
    if matched is not None:
        conn.execute("UPDATE recovery_codes SET used_at = ? WHERE id = ?", (now_iso(), matched))
        conn.execute("UPDATE users SET fail_count = 0 WHERE id = ?", (row["id"],))
        state = row["state"]
        return VerifyResult(row["name"], True, "recovery_code", state, 0, False, max_failures)
    fail_count = row["fail_count"] + 1
    locked = fail_count >= max_failures
    conn.execute(
        "UPDATE users SET fail_count = ?, locked = ?, locked_at = CASE WHEN ? THEN ? END"
        " WHERE id = ?",
        (fail_count, int(locked), int(locked), now_iso(), row["id"]),
    )
    return VerifyResult(
        row["name"],
        False,
        "wrong_code" if given is not None else "malformed",
        row["state"],
        fail_count,
        locked,
        max(max_failures - fail_count, 0),
    )
