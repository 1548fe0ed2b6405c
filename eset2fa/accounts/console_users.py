"""Console users: names, groups, passwords, grants, and the two-factor fields other modules fill."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from typing import NamedTuple

from eset2fa.accounts import permissions
from eset2fa.accounts.actors import ADMINISTRATOR, Actor
from eset2fa.clock import now_iso
from eset2fa.db import Store
from eset2fa.db import users as user_rows
from eset2fa.errors import PermissionDenied, StateConflict, UsageError
from eset2fa.ops import audit_chain

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}")
GROUP_PATTERN = NAME_PATTERN


def validate_name(name: str, what: str = "user name") -> str:
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise UsageError(
            f"Invalid {what} {name!r}.",
            "Use 1-64 characters: letters, digits and . _ @ + - (starting with a letter or digit).",
        )
    return name


def require_user(store: Store, name: str) -> sqlite3.Row:
    """The user named `name`; NotFound (exit 3) when there is none.

    Commands call it to fail on an unknown name before asking for a confirmation or a password.
    """
    return user_rows.get(store.conn, name)


def status_of(row: sqlite3.Row) -> dict:
    return {
        "name": row["name"],
        "group": row["group_name"],
        "state": row["state"],
        "method": row["method"],
        "locked": bool(row["locked"]),
        "fail_count": row["fail_count"],
    }


def user_status(store: Store, name: str) -> dict:
    """The user's two-factor status (`status_of`); NotFound (exit 3) when there is none."""
    return status_of(user_rows.get(store.conn, name))


def meets(status: dict, requirement: str) -> bool:
    return {
        "active": status["state"] == "active",
        "pending": status["state"] == "pending",
        "disabled": status["state"] == "disabled",
        "enabled": status["state"] != "disabled",
        "locked": status["locked"],
        "unlocked": not status["locked"],
    }[requirement]


def user_details(store: Store, name: str) -> dict:
    conn = store.conn
    row = user_rows.get(conn, name)
    details = status_of(row)
    details.update(
        {
            "builtin": bool(row["builtin"]),
            "created_at": row["created_at"],
            "has_password": row["password_hash"] is not None,
            "password_failures": row["password_failures"],  # wrong passwords in a row (lockout)
            "phone": row["phone"],
            "locked_at": row["locked_at"],
            "enabled_at": row["enabled_at"],
            "activated_at": row["activated_at"],
            "grants": permissions.list_grants(conn, row["id"]),
        }
    )
    return details


def list_users(
    store: Store,
    *,
    group: str | None = None,
    state: str | None = None,
    locked: bool | None = None,
    limit: int | None = None,
    as_json: bool = False,
) -> Iterator:
    """The matching users by name, streamed from the query (a listing of 1,000,000 users is
    written while it is read, never held): (name, group, state, method, locked, fail_count)
    tuples, or with `as_json` each user's `status_of` dict as JSON text, written by SQLite."""
    select = user_rows.status_json if as_json else user_rows.status_tuples
    return select(store.conn, group=group, state=state, locked=locked, limit=limit)


def _require_group_scope(conn: sqlite3.Connection, actor: Actor, group: str | None) -> None:
    # A delegated user may only create users inside a group they have Write over: otherwise they
    # could create users no one but the Administrator can manage.
    if actor.is_admin:
        return
    if group is None:
        raise PermissionDenied(
            f"{actor.label} may only add users to a group they have Write permission over.",
            "Pass --group G for a group you were granted, or ask an administrator.",
        )
    permissions.require_group_write(conn, actor, group)


def add_user(
    store: Store, actor: Actor, name: str, *, group: str | None = None, password: str | None = None
) -> dict:
    validate_name(name)
    if group is not None:
        validate_name(group, "group name")
    password_hash = None
    if password is not None:
        from eset2fa.accounts import passwords

        # Before the write lock: hashing takes ~50-250 ms with the default profile.
        password_hash = passwords.hash_password(password, passwords.configured_profile(store.conn))
    with store.write() as conn:
        _require_group_scope(conn, actor, group)
        if user_rows.exists(conn, name):
            raise StateConflict(
                f"A user named {name!r} already exists.", "Names are case-insensitive."
            )
        user_rows.insert(conn, name, group, password_hash, now_iso())
        audit_chain.record(
            conn, actor.label, "user.add", name, "ok", {"group": group} if group else None
        )
    return user_status(store, name)


class BulkEntry(NamedTuple):  # not a dataclass: start-up cost (see permissions.py)
    line: int
    name: str
    group: str | None


def parse_user_lines(lines: Iterable[str]) -> tuple[list[BulkEntry], list[dict]]:
    """One name per line, or CSV `name,group`; blank lines and `#` comments skipped.

    Returns the entries and a per-line result for lines that could not be used.
    """
    entries, rejected = [], []
    for item in iter_user_lines(lines):
        (entries if isinstance(item, BulkEntry) else rejected).append(item)
    return entries, rejected


def iter_user_lines(lines: Iterable[str]) -> Iterator[BulkEntry | dict]:
    """`parse_user_lines` a line at a time: a BulkEntry, or the result of a line that could not be
    used ({"line", "name", "result": "invalid"})."""
    for number, raw in enumerate(lines, start=1):
        text = raw.strip()
        if not text or text.startswith("#"):
            continue
        name, _, group = (part.strip() for part in text.partition(","))
        if number == 1 and name.lower() == "name" and group.lower() in ("group", ""):
            continue  # a CSV header
        group = group or None
        if not NAME_PATTERN.fullmatch(name) or (group and not GROUP_PATTERN.fullmatch(group)):
            yield {"line": number, "name": name, "result": "invalid"}
            continue
        yield BulkEntry(number, name, group)


def add_users_bulk(
    store: Store,
    actor: Actor,
    entries: list[BulkEntry],
    *,
    default_group: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[dict]:
    """Add many users in one transaction: all the new ones land, or (on any error) none."""
    results: list[dict] = []
    created_at = now_iso()
    chunk = 5000
    with store.write() as conn:
        scope = permissions.write_scope(conn, actor)
        existing = user_rows.existing_names(conn, [e.name for e in entries])
        rows, events, seen = [], [], set()
        for entry in entries:
            group = entry.group or default_group
            key = entry.name.lower()
            if key in existing or key in seen:
                results.append({"line": entry.line, "name": entry.name, "result": "exists"})
                continue
            if not actor.is_admin and (group is None or not scope.covers_group(group)):
                results.append({"line": entry.line, "name": entry.name, "result": "denied"})
                continue
            seen.add(key)
            rows.append((entry.name, group, created_at))
            events.append(
                audit_chain.AuditEvent(
                    actor.label, "user.add", entry.name, "ok", {"group": group} if group else None
                )
            )
            results.append({"line": entry.line, "name": entry.name, "result": "added"})
        for start in range(0, len(rows), chunk):
            user_rows.insert_many(conn, rows[start : start + chunk])
            if progress:
                progress(len(rows[start : start + chunk]))
        audit_chain.record_many(conn, events)
    return results


def delete_user(store: Store, actor: Actor, name: str) -> dict:
    with store.write() as conn:
        row = user_rows.get(conn, name)
        if row["builtin"]:
            raise StateConflict(
                f"{row['name']} is the built-in administrator and cannot be deleted.",
                "Disable its two-factor authentication or reset its password instead.",
            )
        permissions.require_write(conn, actor, row)
        user_rows.delete(conn, row["id"])
        audit_chain.record(conn, actor.label, "user.delete", row["name"], "ok")
    return {"name": row["name"], "deleted": True}


def _grant_targets(
    conn: sqlite3.Connection, actor: Actor, write_user: str | None, write_group: str | None
) -> tuple[int | None, str | None, str]:
    if (write_user is None) == (write_group is None):
        raise UsageError("Give exactly one of --write USER or --write-group GROUP.")
    if write_user is not None:
        target = user_rows.get(conn, write_user)
        permissions.require_write(conn, actor, target)
        return target["id"], None, f"user {target['name']}"
    validate_name(write_group, "group name")
    permissions.require_group_write(conn, actor, write_group)
    return None, write_group, f"group {write_group}"


def grant(
    store: Store,
    actor: Actor,
    grantee: str,
    *,
    write_user: str | None = None,
    write_group: str | None = None,
) -> dict:
    return _change_grant(store, actor, grantee, write_user, write_group, revoke=False)


def revoke(
    store: Store,
    actor: Actor,
    grantee: str,
    *,
    write_user: str | None = None,
    write_group: str | None = None,
) -> dict:
    return _change_grant(store, actor, grantee, write_user, write_group, revoke=True)


def _change_grant(
    store: Store,
    actor: Actor,
    grantee: str,
    write_user: str | None,
    write_group: str | None,
    *,
    revoke: bool,
) -> dict:
    """Add or remove one grant of Write; the actor needs Write over the grantee and the target."""
    with store.write() as conn:
        who = user_rows.get(conn, grantee)
        permissions.require_write(conn, actor, who)
        user_id, group, label = _grant_targets(conn, actor, write_user, write_group)
        if revoke:
            permissions.remove_grant(conn, who["id"], user_id, group)
            action, result = "user.revoke", "ok"
        else:
            new = permissions.add_grant(conn, who["id"], user_id, group)
            action, result = "user.grant", "ok" if new else "unchanged"
        audit_chain.record(conn, actor.label, action, who["name"], result, {"write": label})
        grants = permissions.list_grants(conn, who["id"])
    if revoke:
        return {"name": who["name"], "revoked": label, "grants": grants}
    return {"name": who["name"], "granted": label, "new": new, "grants": grants}


def ensure_administrator(store: Store, password: str | None = None) -> str | None:
    """Create the built-in Administrator if missing. Returns the generated password, if one was."""
    if user_rows.has_builtin(store.conn):
        return None
    from eset2fa.accounts import passwords
    from eset2fa.db import stored_settings

    generated = None
    if password is None:
        password = generated = passwords.generate_password()
    # ESET2FA_ARGON2_PROFILE counts only here, for a store that has no users yet (its creation):
    # it is recorded as the store's setting, audited, and ignored by every later process.
    chosen = passwords.profile_for_new_store()
    if chosen is not None and user_rows.count(store.conn) > 0:
        chosen = None
    profile = chosen or passwords.configured_profile(store.conn)
    password_hash = passwords.hash_password(password, profile)
    with store.write() as conn:
        if user_rows.has_builtin(conn):
            return None  # another process created it meanwhile
        user_rows.insert(conn, ADMINISTRATOR, None, password_hash, now_iso(), builtin=True)
        audit_chain.record(
            conn,
            "system",
            "store.init",
            ADMINISTRATOR,
            "ok",
            {"password": "generated" if generated else "given"},
        )
        if chosen is not None and stored_settings.value(conn, passwords.SETTING) is None:
            stored_settings.put_value(conn, passwords.SETTING, chosen, now_iso())
            audit_chain.record(
                conn,
                "system",
                "config.set",
                passwords.SETTING,
                "ok",
                {"value": chosen, "from": passwords.ENV_VAR},
            )
    return generated
