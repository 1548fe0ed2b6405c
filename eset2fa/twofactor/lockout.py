"""The lockout rule, written once (SPEC S5): every rejected factor counts, the limit locks.

Used by one-time passwords (`verify_otp`) and recovery codes alike: a rejection adds one to the
user's failed-attempt count inside the caller's write transaction (`BEGIN IMMEDIATE`, so parallel
attempts from several processes never lose a count); at `lockout.max_failures` the account is
locked, and a locked account is refused even with a correct factor until `user unlock` (an
administrator with Write permission) clears the lock and the count. An accepted factor below the
limit resets the count to 0.

One rejection does not count: a replay of the one-time password accepted in the same time step
(`verify_otp` decides it; `not_counted`). It proves possession of the factor, so counting it would
let one correct code sent several times at once lock its owner out.
"""

from __future__ import annotations

import sqlite3
from typing import NamedTuple

from eset2fa.accounts import permissions
from eset2fa.accounts.actors import Actor
from eset2fa.clock import now_iso
from eset2fa.db import Store
from eset2fa.db import users as user_rows
from eset2fa.ops import audit_chain


class Counted(NamedTuple):
    """A rejection after it was counted."""

    fail_count: int
    locked: bool  # True when this rejection locked the account
    remaining: int  # rejections left before the lock


def count_failure(
    conn: sqlite3.Connection, user_id: int, fail_count: int, max_failures: int
) -> Counted:
    """Count one rejected factor for the user whose stored count is `fail_count`."""
    fail_count += 1
    locked = fail_count >= max_failures
    if locked:
        user_rows.lock(conn, user_id, fail_count, now_iso())
    else:
        user_rows.set_fail_count(conn, user_id, fail_count)
    return Counted(fail_count, locked, max(max_failures - fail_count, 0))


def not_counted(fail_count: int, max_failures: int) -> Counted:
    """A rejection that does not count (a replay of the accepted code): the count as it stands."""
    return Counted(fail_count, False, max(max_failures - fail_count, 0))


def clear_failures(conn: sqlite3.Connection, user_id: int) -> None:
    """An accepted factor: the count starts again from 0."""
    user_rows.set_fail_count(conn, user_id, 0)


def unlock(store: Store, actor: Actor, name: str) -> dict:
    """Clear a lockout (needs Write permission over the user); resets the fail count."""
    with store.write() as conn:
        row = user_rows.get(conn, name)
        permissions.require_write(conn, actor, row)
        user_rows.unlock(conn, row["id"])
        audit_chain.record(
            conn,
            actor.label,
            "user.unlock",
            row["name"],
            "ok" if row["locked"] else "unchanged",
            {"fail_count": row["fail_count"]},
        )
    return {"name": row["name"], "was_locked": bool(row["locked"]), "locked": False}
