"""Console users: names, groups, passwords, grants, and the two-factor fields other modules fill."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Iterable
from typing import NamedTuple

from eset2fa.accounts import permissions
from eset2fa.accounts.actors import ADMINISTRATOR, Actor
from eset2fa.clock import now_iso
from eset2fa.db import Store
from eset2fa.errors import NotFound, PermissionDenied, StateConflict, UsageError
from eset2fa.ops import audit_log

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}")
GROUP_PATTERN = NAME_PATTERN
STATES = ("disabled", "pending", "active")
REQUIREMENTS = ("active", "pending", "disabled", "enabled", "locked", "unlocked")

STATUS_COLUMNS = "id, name, group_name, state, method, locked, fail_count"


def validate_name(name: str, what: str = "user name") -> str:
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise UsageError(
            f"Invalid {what} {name!r}.",
            "Use 1-64 characters: letters, digits and . _ @ + - (starting with a letter or digit).",
        )
    return name


def get_user(conn: sqlite3.Connection, name: str, columns: str = "*") -> sqlite3.Row:
    row = conn.execute(f"SELECT {columns} FROM users WHERE name = ?", (name,)).fetchone()
    if row is None:
        raise NotFound(f"No user named {name!r}.", "List users with `eset2fa user list`.")
    return row


def status_of(row: sqlite3.Row) -> dict:
    return {
        "name": row["name"],
        "group": row["group_name"],
        "state": row["state"],
        "method": row["method"],
        "locked": bool(row["locked"]),
        "fail_count": row["fail_count"],
    }


def user_status(conn: sqlite3.Connection, name: str) -> dict:
    return status_of(get_user(conn, name, STATUS_COLUMNS))


def meets(status: dict, requirement: str) -> bool:
    return {
        "active": status["state"] == "active",
        "pending": status["state"] == "pending",
        "disabled": status["state"] == "disabled",
        "enabled": status["state"] != "disabled",
        "locked": status["locked"],
        "unlocked": not status["locked"],
    }[requirement]


def user_details(conn: sqlite3.Connection, name: str) -> dict:
    row = get_user(conn, name)
    details = status_of(row)
    details.update(
        {
            "builtin": bool(row["builtin"]),
            "created_at": row["created_at"],
            "has_password": row["password_hash"] is not None,
            "phone": row["phone"],
            "locked_at": row["locked_at"],
            "enabled_at": row["enabled_at"],
            "activated_at": row["activated_at"],
            "grants": permissions.list_grants(conn, row["id"]),
        }
    )
    return details


def list_users(
    conn: sqlite3.Connection,
    *,
    group: str | None = None,
    state: str | None = None,
    locked: bool | None = None,
    limit: int | None = None,
) -> list[dict]:
    clauses, params = [], []
    if group is not None:
        clauses.append("group_name = ?")
        params.append(group)
    if state is not None:
        clauses.append("state = ?")
        params.append(state)
    if locked is not None:
        clauses.append("locked = ?")
        params.append(int(locked))
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    sql = f"SELECT {STATUS_COLUMNS} FROM users {where} ORDER BY name"
    if limit:
        sql += f" LIMIT {int(limit)}"
    return [status_of(row) for row in conn.execute(sql, params)]


def _insert(
    conn: sqlite3.Connection,
    name: str,
    group: str | None,
    password_hash: str | None,
    builtin: bool = False,
) -> int:
    cursor = conn.execute(
        "INSERT INTO users (name, group_name, password_hash, builtin, created_at)"
        " VALUES (?, ?, ?, ?, ?)",
        (name, group, password_hash, int(builtin), now_iso()),
    )
    return cursor.lastrowid


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
        from eset2fa.accounts.passwords import hash_password

        password_hash = hash_password(password)  # before the write lock: hashing takes ~50 ms
    with store.write() as conn:
        _require_group_scope(conn, actor, group)
        if conn.execute("SELECT 1 FROM users WHERE name = ?", (name,)).fetchone():
            raise StateConflict(
                f"A user named {name!r} already exists.", "Names are case-insensitive."
            )
        _insert(conn, name, group, password_hash)
        audit_log.record(
            conn, actor.label, "user.add", name, "ok", {"group": group} if group else None
        )
    return user_status(store.conn, name)


class BulkEntry(NamedTuple):  # not a dataclass: start-up cost (see permissions.py)
    line: int
    name: str
    group: str | None


def parse_user_lines(lines: Iterable[str]) -> tuple[list[BulkEntry], list[dict]]:
    """One name per line, or CSV `name,group`; blank lines and `#` comments skipped.

    Returns the entries and a per-line result for lines that could not be used.
    """
    entries, rejected = [], []
    for number, raw in enumerate(lines, start=1):
        text = raw.strip()
        if not text or text.startswith("#"):
            continue
        name, _, group = (part.strip() for part in text.partition(","))
        if number == 1 and name.lower() == "name" and group.lower() in ("group", ""):
            continue  # a CSV header
        group = group or None
        if not NAME_PATTERN.fullmatch(name) or (group and not GROUP_PATTERN.fullmatch(group)):
            rejected.append({"line": number, "name": name, "result": "invalid"})
            continue
        entries.append(BulkEntry(number, name, group))
    return entries, rejected


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
        existing = set()
        names = [e.name for e in entries]
        for start in range(0, len(names), 900):  # stay under SQLite's variable limit
            part = names[start : start + 900]
            marks = ",".join("?" * len(part))
            existing.update(
                r[0].lower()
                for r in conn.execute(f"SELECT name FROM users WHERE name IN ({marks})", part)
            )
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
                audit_log.AuditEvent(
                    actor.label, "user.add", entry.name, "ok", {"group": group} if group else None
                )
            )
            results.append({"line": entry.line, "name": entry.name, "result": "added"})
        for start in range(0, len(rows), chunk):
            conn.executemany(
                "INSERT INTO users (name, group_name, created_at) VALUES (?, ?, ?)",
                rows[start : start + chunk],
            )
            if progress:
                progress(len(rows[start : start + chunk]))
        audit_log.record_many(conn, events)
    return results


def delete_user(store: Store, actor: Actor, name: str) -> dict:
    with store.write() as conn:
        row = get_user(conn, name, "id, name, group_name, builtin")
        if row["builtin"]:
            raise StateConflict(
                f"{row['name']} is the built-in administrator and cannot be deleted.",
                "Disable its two-factor authentication or reset its password instead.",
            )
        permissions.require_write(conn, actor, row)
        conn.execute("DELETE FROM users WHERE id = ?", (row["id"],))
        audit_log.record(conn, actor.label, "user.delete", row["name"], "ok")
    return {"name": row["name"], "deleted": True}


def _grant_targets(
    conn: sqlite3.Connection, actor: Actor, write_user: str | None, write_group: str | None
) -> tuple[int | None, str | None, str]:
    if (write_user is None) == (write_group is None):
        raise UsageError("Give exactly one of --write USER or --write-group GROUP.")
    if write_user is not None:
        target = get_user(conn, write_user, "id, name, group_name")
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
    with store.write() as conn:
        who = get_user(conn, grantee, "id, name, group_name, builtin")
        permissions.require_write(conn, actor, who)
        user_id, group, label = _grant_targets(conn, actor, write_user, write_group)
        new = permissions.add_grant(conn, who["id"], user_id, group)
        audit_log.record(
            conn,
            actor.label,
            "user.grant",
            who["name"],
            "ok" if new else "unchanged",
            {"write": label},
        )
        grants = permissions.list_grants(conn, who["id"])
    return {"name": who["name"], "granted": label, "new": new, "grants": grants}


def revoke(
    store: Store,
    actor: Actor,
    grantee: str,
    *,
    write_user: str | None = None,
    write_group: str | None = None,
) -> dict:
    with store.write() as conn:
        who = get_user(conn, grantee, "id, name, group_name, builtin")
        permissions.require_write(conn, actor, who)
        user_id, group, label = _grant_targets(conn, actor, write_user, write_group)
        permissions.remove_grant(conn, who["id"], user_id, group)
        audit_log.record(conn, actor.label, "user.revoke", who["name"], "ok", {"write": label})
        grants = permissions.list_grants(conn, who["id"])
    return {"name": who["name"], "revoked": label, "grants": grants}


def ensure_administrator(store: Store, password: str | None = None) -> str | None:
    """Create the built-in Administrator if missing. Returns the generated password, if one was."""
    if store.execute("SELECT 1 FROM users WHERE builtin = 1").fetchone():
        return None
    from eset2fa.accounts.passwords import generate_password, hash_password

    generated = None
    if password is None:
        password = generated = generate_password()
    password_hash = hash_password(password)
    with store.write() as conn:
        if conn.execute("SELECT 1 FROM users WHERE builtin = 1").fetchone():
            return None  # another process created it meanwhile
        _insert(conn, ADMINISTRATOR, None, password_hash, builtin=True)
        audit_log.record(
            conn,
            "system",
            "store.init",
            ADMINISTRATOR,
            "ok",
            {"password": "generated" if generated else "given"},
        )
    return generated
