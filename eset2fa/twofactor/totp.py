"""TOTP (RFC 6238): secrets, otpauth:// URIs, and `verify_otp`, the one verification path.

`verify_otp(store, name, code)` is the Python API for integrations (PAM helpers, web apps) and what
`auth verify`, `auth login` and `--as` call. Rules (SPEC §2, S5):

- a code that is not exactly six ASCII digits (eight for a user imported with 8-digit codes)
  is rejected before any HMAC;
- the secret is decrypted with the master key, bound to the user (`user:<id>:totp`);
- the code is compared in constant time with the codes of the steps within ±`totp.window`;
- a time step at or before the last accepted one is a replay and is rejected;
- every rejection counts but one: the code of the last accepted step, sent again, is a replay
  that proves possession of the factor and is not counted (16 copies of one code sent at once
  are accepted once and lock nobody); a code of an earlier step still counts;
- at `lockout.max_failures` the user is locked, and a locked user is refused even with a
  correct code (the count is left as it is until `user unlock`);
- the first accepted code turns `pending` into `active`; an accepted code resets the count.

Reading the state, updating it and the audit row all happen in ONE `BEGIN IMMEDIATE` transaction,
so parallel attempts from several processes never lose a count.

pyotp builds the otpauth:// URI; the codes themselves come from the standard library's
`hmac.digest` (RFC 4226 dynamic truncation in three lines, checked against the RFC 6238 vectors and
pyotp in the tests), several times faster per verification than pyotp's per-call base32 decoding.

Per-user parameters: secrets imported from other tools (`user import`) may use HMAC-SHA256 or
-SHA512, 8 digits or another period; the users row keeps them (NULL meaning the default SHA1, 6,
30 s), verification reads them with the row and the URI carries them. Secrets eset2fa generates
always use the defaults.
The failed-attempt count and the lock are `lockout`'s, the defaults `policy`'s, the sealing
`eset2fa.secrets`'; the rows are read and written by `eset2fa.db.users`.
"""

from __future__ import annotations

import base64
import hmac
import sqlite3
import struct
from datetime import UTC, datetime
from typing import NamedTuple

from eset2fa.clock import to_iso, unix
from eset2fa.db import Store
from eset2fa.db import users as user_rows
from eset2fa.errors import EncryptionKeyError, NotFound, StateConflict
from eset2fa.ops import audit_chain
from eset2fa.secrets import keys
from eset2fa.twofactor import lockout, policy

DIGITS = 6
PERIOD_SECONDS = 30
ALGORITHM = "SHA1"
ALGORITHMS = ("SHA1", "SHA256", "SHA512")  # what a user's stored parameters may name
DIGIT_COUNTS = (6, 8)
SECRET_BYTES = 20  # 160 bits, the HMAC-SHA1 block-friendly size RFC 4226 recommends


def new_secret() -> bytes:
    """A fresh secret. It is stored (sealed) as raw bytes; base32 is only for the URI."""
    import secrets  # not at import time: eset2fa-pam never enrolls, and counts its start-up

    return secrets.token_bytes(SECRET_BYTES)


def encode_secret(secret: bytes) -> str:
    """Base32 without padding, as authenticator apps expect it."""
    return base64.b32encode(secret).decode("ascii")


def provisioning_uri(
    secret: str,
    account: str,
    issuer: str,
    *,
    algorithm: str | None = None,
    digits: int | None = None,
    period: int | None = None,
) -> str:
    """The Key Uri Format link (otpauth://totp/Issuer:account?secret=...&issuer=...).

    `algorithm`, `digits` and `period` are a user's stored parameters (None: the default, which
    the URI leaves out); `parameters_of(row)` gives them.
    """
    import hashlib

    return _uri_totp_class()(
        secret,
        digits=digits or DIGITS,
        digest=getattr(hashlib, (algorithm or ALGORITHM).lower()),
        interval=period or PERIOD_SECONDS,
        issuer=issuer,
    ).provisioning_uri(name=account)


_uri_totp: list = []


def _uri_totp_class():
    """pyotp's TOTP, built once, accepting the 80-bit secrets of google-authenticator-libpam:
    pyotp >= 2.10 refuses secrets under 112 bits, and imported ones must export again."""
    if not _uri_totp:
        import pyotp

        class UriTOTP(pyotp.TOTP):
            min_secret_length_bits = 80

        _uri_totp.append(UriTOTP)
    return _uri_totp[0]


def parameters_of(row) -> dict:
    """A users row's stored TOTP parameters, as provisioning_uri's keyword arguments."""
    return {
        "algorithm": row["totp_algorithm"],
        "digits": row["totp_digits"],
        "period": row["totp_period"],
    }


def time_step(moment: float, period: int = PERIOD_SECONDS) -> int:
    return int(moment // period)


_pack_counter = struct.Struct(">Q").pack
_unpack_word = struct.Struct(">I").unpack_from


def hotp(key: bytes, counter: int) -> bytes:
    """RFC 4226 HOTP over HMAC-SHA1 (dynamic truncation), as DIGITS ASCII digits."""
    return _truncate(hmac.digest(key, _pack_counter(counter), "sha1"))


def _truncate(digest: bytes) -> bytes:
    """RFC 4226 dynamic truncation of an HMAC-SHA1 digest to DIGITS ASCII digits."""
    number = _unpack_word(digest, digest[19] & 0x0F)[0] & 0x7FFFFFFF
    return b"%06d" % (number % 1_000_000)


def _truncate_to(digest: bytes, digits: int) -> bytes:
    """The same for any HMAC digest (SHA256, SHA512: the offset is in the last byte, as in RFC
    6238's reference code) and `digits` digits: for imported secrets only."""
    number = _unpack_word(digest, digest[-1] & 0x0F)[0] & 0x7FFFFFFF
    return b"%0*d" % (digits, number % 10**digits)


def code_at_step(secret: str, step: int) -> str:
    """The code for a time step, from a base32 secret."""
    return hotp(decode_secret(secret), step).decode("ascii")


def decode_secret(secret: str) -> bytes:
    return base64.b32decode(secret.upper() + "=" * (-len(secret) % 8))


def is_well_formed(code: str, digits: int = DIGITS) -> bool:
    # isdigit() alone accepts other scripts' digits ("١٢٣٤٥٦"); authenticators show ASCII.
    return isinstance(code, str) and len(code) == digits and code.isascii() and code.isdigit()


def _could_be_code(code: str) -> bool:
    """6 or 8 ASCII digits: checked before the row is read (then against the user's digits)."""
    return isinstance(code, str) and len(code) in DIGIT_COUNTS and code.isascii() and code.isdigit()


def secret_context(user_id: int) -> str:
    """The authenticated context that binds a sealed secret to its user."""
    return f"user:{user_id}:totp"


class VerifyResult(NamedTuple):
    """What a verification ended with; `accepted` is the only field an integration must read.

    Immutable; a NamedTuple rather than a frozen dataclass, whose __init__ costs ~1.5 us more on
    every verification.
    """

    name: str
    accepted: bool
    reason: str  # "accepted", "wrong_code", "malformed", "replay"
    state: str  # the user's 2FA state after this attempt
    fail_count: int
    locked: bool  # True when this rejection locked the account
    remaining: int  # wrong codes left before the lock

    def to_dict(self) -> dict:
        return self._asdict()


def _moment(now: float | datetime | None) -> float:
    if now is None:
        return unix()
    if isinstance(now, datetime):
        return now.timestamp()
    return float(now)


def _matching_step(
    key: bytes,
    code: str,
    step: int,
    window: int,
    algorithm: str | None = None,
    digits: int | None = None,
) -> int | None:
    """The step within the window whose code equals `code`, comparing every candidate.

    All candidates are computed and compared (no early exit), so the time taken does not depend
    on which step matched. `algorithm`/`digits`: the user's stored parameters (None: default).
    """
    given = code.encode("ascii")
    # One stdlib HMAC keyed once, copied per candidate: the key's padded blocks are hashed once
    # per verification instead of once per candidate (hmac.digest re-keys on every call).
    if algorithm is None and digits is None:  # the default SHA1/6 path, unchanged
        keyed = hmac.new(key, digestmod="sha1")
        truncate = _truncate
    else:
        keyed = hmac.new(key, digestmod=(algorithm or ALGORITHM).lower())
        width = digits or DIGITS

        def truncate(digest: bytes) -> bytes:
            return _truncate_to(digest, width)

    matched = None
    for candidate in range(max(step - window, 0), step + window + 1):  # no step before 1970
        mac = keyed.copy()
        mac.update(_pack_counter(candidate))
        if hmac.compare_digest(truncate(mac.digest()), given):
            matched = candidate
    return matched


def verify_otp(
    store: Store,
    name: str,
    code: str,
    *,
    now: float | datetime | None = None,
    actor: str | None = None,
    action: str = "auth.verify",
) -> VerifyResult:
    """Check NAME's one-time password; count, lock, activate and audit in one transaction.

    Returns a VerifyResult (accepted or not). Raises NotFound (no such user), StateConflict (2FA
    not enabled) and Locked (account locked: even a correct code is refused).
    `actor` is what the audit row records as the actor (default: the user themselves).
    """
    well_formed = _could_be_code(code)  # against the user's own digit count once the row is read
    # The key is loaded before the write transaction. A wrong or missing key is raised only when a
    # secret must be opened (an unknown user is still "not found"), and then inside the
    # transaction, which rolls back: the file is left unchanged.
    master = None
    key: object = None
    if well_formed:
        try:
            master = keys.for_store(store)
            key = master.sealer
        except EncryptionKeyError as error:
            key = error
    moment = _moment(now)
    step = time_step(moment)
    outcome: VerifyResult | None = None
    refusal: Exception | None = None
    memo: tuple | None = None

    with store.write() as conn:
        row = user_rows.find_user_for_verify(conn, name)
        if row is None:
            audit_chain.record(conn, actor or name, action, name, "unknown_user")
            refusal = NotFound(f"No user named {name!r}.", "List users with `eset2fa user list`.")
        else:
            rules, prev = _context(store.verify_memo, conn, row.data_version)
            if row.state == "disabled" or row.secret is None:
                last = audit_chain.record(
                    conn,
                    actor or row.name,
                    action,
                    row.name,
                    "not_enabled",
                    prev_hash=prev,
                    master=master,
                )
                refusal = StateConflict(
                    f"{row.name} has no one-time password enabled"
                    + (" (they approve push requests)." if row.state != "disabled" else "."),
                    f"Enable it with `eset2fa user enable {row.name} --method totp`.",
                )
            elif row.locked:
                who = actor or row.name
                last = audit_chain.record(
                    conn, who, action, row.name, "locked", prev_hash=prev, master=master
                )
                refusal = lockout.locked_error(row.name)
            else:
                if row.totp_period is not None:  # an imported secret with its own period
                    step = time_step(moment, row.totp_period)
                well_formed = well_formed and len(code) == (row.totp_digits or DIGITS)
                given = code if well_formed else None
                outcome = _decide(conn, row, rules, key, given, step, moment)
                last = audit_chain.record(
                    conn,
                    actor or row.name,
                    action,
                    row.name,
                    "accepted" if outcome.accepted else "rejected",
                    _details_json(outcome),
                    prev_hash=prev,
                    master=master,
                )
            memo = (row.data_version, rules, last)
    if memo is not None:  # committed: what the next verification on this connection may reuse
        store.verify_memo = _Memo(memo[0], conn.total_changes, memo[1], memo[2])
    if refusal is not None:
        raise refusal
    return outcome


class _Memo(NamedTuple):
    """What a committed verification leaves for the next one on the same connection: the policy
    and the audit chain's last link, valid while nothing else was written since. Another
    connection's commit (another process's `config set`, another verification's audit row)
    changes the database's `data_version`; this connection's own writes change its
    `total_changes`. Either one and the next verification reads both again."""

    data_version: int
    changes: int  # conn.total_changes after the commit
    policy: policy.Policy
    last_hash: bytes


def _context(
    memo: _Memo | None, conn: sqlite3.Connection, data_version: int
) -> tuple[policy.Policy, bytes]:
    """(policy, the chain's last link) inside the verification's write transaction."""
    if (
        memo is not None
        and memo.data_version == data_version
        and memo.changes == conn.total_changes
    ):
        return memo.policy, memo.last_hash
    window, max_failures, last = user_rows.verify_context(conn)
    return policy.from_stored(window, max_failures), last or audit_chain.GENESIS


def _details_json(outcome: VerifyResult) -> str:
    """The attempt's audit details, as json.dumps(..., sort_keys=True) would write them.

    Formatted directly (the reason is one of four identifiers, the count an int): this runs on every
    attempt, and building a JSON encoder for a two-key dict cost more than the UPDATE.
    """
    locked = '"locked": true, ' if outcome.locked else ""
    return f'{{"fail_count": {outcome.fail_count:d}, {locked}"reason": "{outcome.reason}"}}'


def _decide(
    conn: sqlite3.Connection,
    row: user_rows.VerifyUser,
    rules: policy.Policy,
    sealer,
    code: str | None,
    step: int,
    moment: float,
) -> VerifyResult:
    window, max_failures = rules
    reason = "malformed"
    matched = None
    if code is not None:
        if isinstance(sealer, EncryptionKeyError):
            raise sealer
        secret = sealer.open(row.secret, secret_context(row.id))
        matched = _matching_step(secret, code, step, window, row.totp_algorithm, row.totp_digits)
        if matched is None:
            reason = "wrong_code"
        elif row.last_step is not None and matched <= row.last_step:
            if matched == row.last_step:
                # The very code accepted in this step, sent again (a double submit, a retry, one
                # code fanned out to several checks): refused, but not counted, because it proves
                # possession of the factor. A code of an earlier step was never accepted: counted.
                kept = lockout.not_counted(row.fail_count, max_failures)
                return VerifyResult(row.name, False, "replay", row.state, *kept)
            reason = "replay"
        else:
            reason = "accepted"

    if reason == "accepted":
        # The accepted step is remembered (replay) and the failed-attempt count starts again
        # from 0 in the same UPDATE: lockout's rule, folded into one statement on the hot path.
        activated_at = None
        if row.state == "pending":
            activated_at = to_iso(datetime.fromtimestamp(moment, UTC))
        user_rows.accept_step(conn, row.id, matched, activated_at)
        return VerifyResult(row.name, True, reason, "active", 0, False, max_failures)

    counted = lockout.count_failure(conn, row.id, row.fail_count, max_failures)
    return VerifyResult(
        row.name, False, reason, row.state, counted.fail_count, counted.locked, counted.remaining
    )
