"""The lockout rule, written once (SPEC S5): every rejected factor counts, the limit locks.

Used by one-time passwords (`verify_otp`), recovery codes and passwords (`--as`, `auth login`;
`check_password`): a rejection adds one to the user's count inside a write transaction
(`BEGIN IMMEDIATE`, so parallel attempts from several processes never lose a count); at the limit
the account is locked, and a locked account is refused even with a correct factor until
`user unlock` (an administrator with Write permission) clears the lock and the counts. An accepted
factor below the limit resets its count to 0.

Two counts, one lock. Wrong one-time passwords and recovery codes count in `fail_count` (limit
`lockout.max_failures`), wrong passwords in `password_failures` (limit
`lockout.max_password_failures`). Each count is reset only by a success of its own factor: were
they one count, a correct password would reset the code count (whoever holds the password could
guess codes without end, ten per login) and a correct code would reset the password count
(whoever holds the phone could guess passwords without end). Either count at its limit sets the
same `locked` flag, which refuses both factors.

Passwords are also slowed down: the answer that follows wrong passwords waits `password_delay`
(it doubles with each failure from `lockout.password_delay_seconds`, at most 2 s), slept before
the password is checked and outside any transaction, so the wait never holds the write lock.

One rejection does not count: a replay of the one-time password accepted in the same time step
(`verify_otp` decides it; `not_counted`). It proves possession of the factor, so counting it would
let one correct code sent several times at once lock its owner out.
"""

from __future__ import annotations

import sqlite3
import time
from typing import NamedTuple

from eset2fa.accounts import permissions
from eset2fa.accounts.actors import Actor
from eset2fa.clock import now_iso
from eset2fa.db import Store
from eset2fa.db import users as user_rows
from eset2fa.errors import Locked
from eset2fa.ops import audit_chain
from eset2fa.twofactor.policy import DEFAULT_PASSWORD_DELAY_SECONDS, PASSWORD_DELAY_CAP_SECONDS


class Counted(NamedTuple):
    """A rejection after it was counted."""

    fail_count: int
    locked: bool  # True when this rejection locked the account
    remaining: int  # rejections left before the lock


def _next_count(count: int, limit: int) -> Counted:
    """The rule itself: one more rejection; at the limit, the lock."""
    count += 1
    return Counted(count, count >= limit, max(limit - count, 0))


def count_failure(
    conn: sqlite3.Connection, user_id: int, fail_count: int, max_failures: int
) -> Counted:
    """Count one rejected one-time factor for the user whose stored count is `fail_count`."""
    counted = _next_count(fail_count, max_failures)
    if counted.locked:
        user_rows.lock(conn, user_id, counted.fail_count, now_iso())
    else:
        user_rows.set_fail_count(conn, user_id, counted.fail_count)
    return counted


def not_counted(fail_count: int, max_failures: int) -> Counted:
    """A rejection that does not count (a replay of the accepted code): the count as it stands."""
    return Counted(fail_count, False, max(max_failures - fail_count, 0))


def clear_failures(conn: sqlite3.Connection, user_id: int) -> None:
    """An accepted factor: the count starts again from 0."""
    user_rows.set_fail_count(conn, user_id, 0)


def locked_error(name: str) -> Locked:
    """What a locked account answers, whichever factor locked it and whatever was given."""
    return Locked(
        f"{name} is locked after too many failed attempts.",
        f"An administrator can run `eset2fa user unlock {name}`.",
    )


# -- passwords ---------------------------------------------------------------------------------


def password_delay(failures: int, base: float = DEFAULT_PASSWORD_DELAY_SECONDS) -> float:
    """Seconds the answer to a password attempt waits when the user has `failures` wrong passwords
    in a row: 0 for none, then `base`, 2 x base, 4 x base ... never more than 2 s.

    The only place the wait is decided; it depends on the count, never on the password given.
    """
    if failures <= 0 or base <= 0:
        return 0.0
    return min(PASSWORD_DELAY_CAP_SECONDS, base * 2.0 ** min(failures - 1, 32))


def count_password_failure(
    conn: sqlite3.Connection, user_id: int, failures: int, max_failures: int
) -> Counted:
    """Count one wrong password for the user whose stored password count is `failures`."""
    counted = _next_count(failures, max_failures)
    if counted.locked:
        user_rows.lock_after_password_failures(conn, user_id, counted.fail_count, now_iso())
    else:
        user_rows.set_password_failures(conn, user_id, counted.fail_count)
    return counted


class PasswordCheck(NamedTuple):
    """What a password attempt ended with. The caller refuses unless `accepted`, and must answer
    the same for every refusal that is not `locked` (unknown names cannot be probed)."""

    row: sqlite3.Row | None  # the user's row when accepted or locked; None otherwise
    accepted: bool
    locked: bool  # the account is locked: refused without the password being looked at
    failures: int  # the user's wrong passwords in a row after this attempt (0 when unknown)


def check_password(
    store: Store,
    name: str,
    password: str,
    *,
    action: str,
    actor: str | None = None,
    results: tuple[str, str] = ("ok", "failed"),
) -> PasswordCheck:
    """Check NAME's password with the throttle and the lockout; audited as `action` by `actor`
    (default: the user), with results[0] for a right password and results[1] for a wrong one.

    - A user with wrong passwords behind them waits `password_delay` first, outside any
      transaction (the wait never holds the write lock).
    - A locked account is refused (`locked`) before the password is examined: a right and a wrong
      password get the same answer in the same time.
    - A wrong password counts (`count_password_failure`); at the limit the account locks. A right
      one resets the count.
    - An unknown name, or a user without a password, costs one Argon2 hash like a wrong password
      and is neither delayed nor counted: there is no account a guess could open.
    """
    from eset2fa.accounts import passwords
    from eset2fa.ops import settings

    row = user_rows.find(store.conn, name)
    base = settings.get(store.conn, "lockout.password_delay_seconds")
    max_failures = settings.get(store.conn, "lockout.max_password_failures")
    guessable = row is not None and bool(row["password_hash"])
    locked_before = guessable and bool(row["locked"])
    if guessable:
        delay = password_delay(row["password_failures"], base)
        if delay:
            time.sleep(delay)
    profile = passwords.configured_profile(store.conn)
    ok = False
    if not locked_before:
        ok = passwords.verify_password(
            row["password_hash"] if row is not None else None, password, profile
        )
    # A right password whose hash is weaker than the store's profile gets a new hash, made here
    # (Argon2 takes up to a few hundred ms) and stored below if the password did not change.
    stronger = None
    if ok and passwords.needs_rehash(row["password_hash"], profile):
        stronger = passwords.rehash(password, profile)

    target = row["name"] if row is not None else name
    who = actor or target
    with store.write() as conn:
        # Re-read under the write lock: a parallel attempt may have counted or locked meanwhile.
        state = user_rows.password_state(conn, row["id"]) if guessable else None
        if state is None:  # unknown name, no password, or deleted meanwhile
            audit_chain.record(conn, who, action, target, results[1])
            return PasswordCheck(None, False, False, 0)
        failures, locked = state
        if locked_before or locked:
            audit_chain.record(conn, who, action, target, "locked", {"password_failures": failures})
            return PasswordCheck(row, False, True, failures)
        if ok:
            if failures:
                user_rows.set_password_failures(conn, row["id"], 0)
            rehashed = stronger is not None and user_rows.replace_password_hash(
                conn, row["id"], row["password_hash"], stronger
            )
            details = {"rehashed": profile} if rehashed else None
            audit_chain.record(conn, who, action, target, results[0], details)
            return PasswordCheck(row, True, False, 0)
        counted = count_password_failure(conn, row["id"], failures, max_failures)
        details: dict = {"password_failures": counted.fail_count}
        if counted.locked:
            details["locked"] = True
        audit_chain.record(conn, who, action, target, results[1], details)
        return PasswordCheck(None, False, False, counted.fail_count)


# -- unlocking ---------------------------------------------------------------------------------


def unlock(store: Store, actor: Actor, name: str) -> dict:
    """Clear a lockout (needs Write permission over the user); resets both failure counts."""
    with store.write() as conn:
        row = user_rows.get(conn, name)
        permissions.require_write(conn, actor, row)
        user_rows.unlock(conn, row["id"])
        user_rows.clear_password_failures(conn, row["id"])
        audit_chain.record(
            conn,
            actor.label,
            "user.unlock",
            row["name"],
            "ok" if row["locked"] else "unchanged",
            {"fail_count": row["fail_count"], "password_failures": row["password_failures"]},
        )
    return {"name": row["name"], "was_locked": bool(row["locked"]), "locked": False}
