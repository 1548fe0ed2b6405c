"""Write permission over users (SPEC S2): grants of Write over a user or over a group.

The local operator and the Administrator account have Write over everyone. A console user acting
with `--as` may change a user only with a grant over that user or over the user's group. Granting is
itself a change: the acting user must hold Write over both the grantee and the target, so no one can
hand out more than they have.
"""

from __future__ import annotations

import sqlite3
from typing import NamedTuple

from eset2fa.accounts.actors import Actor
from eset2fa.db import Store
from eset2fa.db import grants as grant_rows
from eset2fa.db import users as user_rows
from eset2fa.errors import NotFound, PermissionDenied


# NamedTuple, not a dataclass: this module is imported by `user status`, and creating a
# dataclass (exec of generated code) costs ~0.8 ms per class at start-up.
class WriteScope(NamedTuple):
    """The users and groups an actor may change, loaded once (bulk commands check many users)."""

    everyone: bool
    user_ids: frozenset[int]
    groups: frozenset[str]  # lower-cased

    def covers(self, user_id: int, group: str | None) -> bool:
        if self.everyone or user_id in self.user_ids:
            return True
        return group is not None and group.lower() in self.groups

    def covers_group(self, group: str) -> bool:
        return self.everyone or group.lower() in self.groups


def write_scope(conn: sqlite3.Connection, actor: Actor) -> WriteScope:
    if actor.is_admin:
        return WriteScope(True, frozenset(), frozenset())
    rows = grant_rows.targets(conn, actor.user_id)
    user_ids = frozenset(r[0] for r in rows if r[0] is not None)
    groups = frozenset(r[1].lower() for r in rows if r[1] is not None)
    return WriteScope(False, user_ids, groups)


def require_write(conn: sqlite3.Connection, actor: Actor, user: sqlite3.Row) -> None:
    if not write_scope(conn, actor).covers(user["id"], user["group_name"]):
        raise PermissionDenied(
            f"{actor.label} has no Write permission over {user['name']}.",
            f"Ask an administrator: eset2fa user grant {actor.label} --write {user['name']}",
        )


def require_group_write(conn: sqlite3.Connection, actor: Actor, group: str) -> None:
    if not write_scope(conn, actor).covers_group(group):
        raise PermissionDenied(
            f"{actor.label} has no Write permission over group {group}.",
            f"Ask an administrator: eset2fa user grant {actor.label} --write-group {group}",
        )


def covers_name(store: Store, actor: Actor):
    """A predicate on user names: does `actor` have Write over that user? (None: no user.)

    For lists that may hold another user's secrets (the outbox keeps reset codes and enrollment
    links): a delegated user sees only what concerns the users they may change.
    """
    if actor.is_admin:
        return lambda _name: True
    conn = store.conn
    scope = write_scope(conn, actor)
    cache: dict[str, bool] = {}

    def covered(name: str | None) -> bool:
        if name is None:
            return False
        if name not in cache:
            row = user_rows.find(conn, name)
            cache[name] = row is not None and scope.covers(row["id"], row["group_name"])
        return cache[name]

    return covered


def require_admin(actor: Actor, what: str) -> None:
    """Store-wide changes (settings, the encryption key) are not covered by Write over users."""
    if not actor.is_admin:
        raise PermissionDenied(
            f"{actor.label} may not {what}: only the Administrator or the local operator may.",
            "Grants of Write cover users and groups, not the store itself (settings, key, copies).",
        )


def list_grants(conn: sqlite3.Connection, actor_id: int) -> list[dict]:
    return [
        {"write_user": r["target_user"]} if r["target_user"] else {"write_group": r["target_group"]}
        for r in grant_rows.described(conn, actor_id)
    ]


def add_grant(
    conn: sqlite3.Connection, grantee_id: int, target_user_id: int | None, target_group: str | None
) -> bool:
    """True if the grant was new."""
    from eset2fa.clock import now_iso

    return grant_rows.add(conn, grantee_id, target_user_id, target_group, now_iso())


def remove_grant(
    conn: sqlite3.Connection, grantee_id: int, target_user_id: int | None, target_group: str | None
) -> None:
    if not grant_rows.remove(conn, grantee_id, target_user_id, target_group):
        raise NotFound("No such grant.", "List a user's grants with `eset2fa user show NAME`.")
