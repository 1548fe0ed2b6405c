"""Turning two-factor authentication on and off: enable (one or 100,000 users), disable, unlock.

Bulk enable runs in ONE write transaction: every selected user gets a fresh secret sealed with the
master key and bound to the user, or (on any error, Ctrl-C included) nobody changes. For speed at
100,000 users the secrets come from one `os.urandom` call, are sealed with one AESGCM object and
written with `executemany` in chunks.
"""

from __future__ import annotations

import base64
import os
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from . import audit, permissions, totp
from .actors import Actor
from .clock import now_iso
from .db import Store
from .errors import NotFound, PermissionDenied, StateConflict, UsageError

METHODS = ("totp", "push")
CHUNK = 5000
_IN_LIMIT = 900  # names per `IN (...)`: below SQLite's variable limit on old builds

# Per-user results.
ENABLED = "enabled"
ALREADY_ENABLED = "already_enabled"
DISABLED = "disabled"
ALREADY_DISABLED = "already_disabled"
NOT_FOUND = "not_found"
DENIED = "denied"


@dataclass
class BulkReport:
    """Per-user results, in the order the users were asked for, and counts by result."""

    results: list[dict] = field(default_factory=list)
    uri: str | None = None  # the enrollment URI, only for a single-user TOTP enrollment

    @property
    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for row in self.results:
            counts[row["result"]] = counts.get(row["result"], 0) + 1
        return counts

    def failed(self, ok: Iterable[str]) -> int:
        allowed = set(ok)
        return sum(1 for row in self.results if row["result"] not in allowed)


_COLUMNS = "id, name, group_name, state, method, phone"


def _select_targets(
    conn: sqlite3.Connection,
    names: list[str] | None,
    group: str | None,
    all_users: bool,
) -> tuple[list[sqlite3.Row], list[str]]:
    """(rows found, names not found), rows in the order asked (names) or by name."""
    chosen = sum([bool(names), group is not None, all_users])
    if chosen != 1:
        raise UsageError(
            "Give user NAMEs, --group G, --all or --from-file (exactly one way).",
            "Example: eset2fa user enable alice bob --method totp",
        )
    if all_users:
        return conn.execute(f"SELECT {_COLUMNS} FROM users ORDER BY name").fetchall(), []
    if group is not None:
        rows = conn.execute(
            f"SELECT {_COLUMNS} FROM users WHERE group_name = ? ORDER BY name", (group,)
        ).fetchall()
        if not rows:
            raise NotFound(f"No users in group {group!r}.", "List users with `eset2fa user list`.")
        return rows, []
    found: dict[str, sqlite3.Row] = {}
    unique = list(dict.fromkeys(names))
    for start in range(0, len(unique), _IN_LIMIT):
        part = unique[start : start + _IN_LIMIT]
        marks = ",".join("?" * len(part))
        for row in conn.execute(f"SELECT {_COLUMNS} FROM users WHERE name IN ({marks})", part):
            found[row["name"].lower()] = row
    rows, missing, seen = [], [], set()
    for name in unique:
        row = found.get(name.lower())
        if row is None:
            missing.append(name)
        elif row["id"] not in seen:
            seen.add(row["id"])
            rows.append(row)
    return rows, missing


def enable(
    store: Store,
    actor: Actor,
    *,
    names: list[str] | None = None,
    group: str | None = None,
    all_users: bool = False,
    method: str = "totp",
    phone: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> BulkReport:
    """Turn 2FA on (state `pending`) for the selected users, in one transaction.

    Users already enabled, unknown or outside the actor's Write permission are reported, not
    changed. For a single TOTP user the report carries the enrollment URI (shown only now).
    """
    if method not in METHODS:
        raise UsageError(f"Unknown method {method!r}.", "Use --method totp or --method push.")
    if phone is not None:
        from .phones import normalise

        if not names or len(names) != 1:
            raise UsageError("--phone applies to one user at a time.", "Give exactly one NAME.")
        phone = normalise(phone)
    from . import config

    report = BulkReport()
    with store.write() as conn:
        rows, missing = _select_targets(conn, names, group, all_users)
        scope = permissions.write_scope(conn, actor)
        issuer = config.get(conn, "totp.issuer")
        key = None
        if method == "totp":
            from .keys import load_key

            key = load_key(conn, store.path, create=True)
        if phone is not None and rows and rows[0]["phone"] is not None:
            from .phones import immutable_error

            raise immutable_error(rows[0]["name"])

        todo: list[sqlite3.Row] = []
        events: list[audit.AuditEvent] = []
        results_by_id: dict[int, dict] = {}
        for row in rows:
            if not scope.covers(row["id"], row["group_name"]):
                result = DENIED
            elif row["state"] != "disabled":
                result = ALREADY_ENABLED
            else:
                result = ENABLED
                todo.append(row)
            results_by_id[row["id"]] = {"name": row["name"], "result": result}
            details = {"method": method} if result == ENABLED else None
            events.append(
                audit.AuditEvent(actor.label, "user.enable", row["name"], result, details)
            )
        for name in missing:
            events.append(audit.AuditEvent(actor.label, "user.enable", name, NOT_FOUND))

        secrets_by_id = _write_enabled(conn, todo, method, key, progress)
        if phone is not None and todo:
            conn.execute("UPDATE users SET phone = ? WHERE id = ?", (phone, todo[0]["id"]))
        audit.record_many(conn, events)

    report.results = [results_by_id[row["id"]] for row in rows]
    report.results += [{"name": name, "result": NOT_FOUND} for name in missing]
    if method == "totp" and names and len(names) == 1 and len(todo) == 1:
        report.uri = totp.provisioning_uri(secrets_by_id[todo[0]["id"]], todo[0]["name"], issuer)
    if key is not None:
        totp.remember_key(store, key)
    return report


def _write_enabled(
    conn: sqlite3.Connection,
    rows: list[sqlite3.Row],
    method: str,
    key,
    progress: Callable[[int], None] | None,
) -> dict[int, str]:
    """Write method/state/secret for `rows`; returns the new secrets when there are few (URI)."""
    enabled_at = now_iso()
    remember = len(rows) == 1  # a single enrollment shows its URI; bulk never keeps secrets
    aead = None
    if key is not None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        aead = AESGCM(key.key)
    from .keys import NONCE_BYTES

    sql = (
        "UPDATE users SET method = ?, state = 'pending', secret = ?, enabled_at = ?,"
        " activated_at = NULL, last_step = NULL, fail_count = 0, locked = 0, locked_at = NULL"
        " WHERE id = ?"
    )
    secrets_by_id: dict[int, str] = {}
    for start in range(0, len(rows), CHUNK):
        part = rows[start : start + CHUNK]
        params = []
        if aead is not None:
            # One urandom call per chunk: per-user calls dominate at 100,000 users.
            material = os.urandom((totp.SECRET_BYTES + NONCE_BYTES) * len(part))
            step = totp.SECRET_BYTES + NONCE_BYTES
            for i, row in enumerate(part):
                chunk = material[i * step : (i + 1) * step]
                secret = base64.b32encode(chunk[: totp.SECRET_BYTES])
                nonce = chunk[totp.SECRET_BYTES :]
                context = totp.secret_context(row["id"]).encode()
                sealed = nonce + aead.encrypt(nonce, secret, context)
                params.append((method, sealed, enabled_at, row["id"]))
                if remember:
                    secrets_by_id[row["id"]] = secret.decode("ascii")
        else:
            params = [(method, None, enabled_at, row["id"]) for row in part]
        conn.executemany(sql, params)
        if progress:
            progress(len(part))
    return secrets_by_id


def disable(
    store: Store,
    actor: Actor,
    *,
    names: list[str] | None = None,
    group: str | None = None,
    all_users: bool = False,
) -> BulkReport:
    """Turn 2FA off: clears the secret, phone, replay step, fail count and lock (audit kept)."""
    report = BulkReport()
    with store.write() as conn:
        rows, missing = _select_targets(conn, names, group, all_users)
        scope = permissions.write_scope(conn, actor)
        todo, events, results = [], [], []
        for row in rows:
            if not scope.covers(row["id"], row["group_name"]):
                result = DENIED
            elif row["state"] == "disabled":
                result = ALREADY_DISABLED
            else:
                result = DISABLED
                todo.append((row["id"],))
            results.append({"name": row["name"], "result": result})
            events.append(audit.AuditEvent(actor.label, "user.disable", row["name"], result))
        for name in missing:
            events.append(audit.AuditEvent(actor.label, "user.disable", name, NOT_FOUND))
            results.append({"name": name, "result": NOT_FOUND})
        conn.executemany(
            "UPDATE users SET method = NULL, state = 'disabled', secret = NULL, phone = NULL,"
            " last_step = NULL, fail_count = 0, locked = 0, locked_at = NULL,"
            " enabled_at = NULL, activated_at = NULL WHERE id = ?",
            todo,
        )
        audit.record_many(conn, events)
    report.results = results
    return report


def raise_for_single(report: BulkReport, name: str, action: str) -> dict:
    """For a one-user command: turn a refused result into the matching error."""
    row = report.results[0]
    result = row["result"]
    if result == NOT_FOUND:
        raise NotFound(f"No user named {name!r}.", "List users with `eset2fa user list`.")
    if result == DENIED:
        raise PermissionDenied(
            f"No Write permission over {row['name']}.",
            f"Ask an administrator to grant it: eset2fa user grant ACTOR --write {row['name']}",
        )
    if result == ALREADY_ENABLED:
        raise StateConflict(
            f"{row['name']} already has two-factor authentication enabled.",
            f"To start over: eset2fa user disable {row['name']}, then {action} again.",
        )
    return row


def unlock(store: Store, actor: Actor, name: str) -> dict:
    """Clear a lockout (needs Write permission over the user); resets the fail count."""
    from .users import get_user

    with store.write() as conn:
        row = get_user(conn, name, "id, name, group_name, locked, fail_count")
        permissions.require_write(conn, actor, row)
        conn.execute(
            "UPDATE users SET locked = 0, locked_at = NULL, fail_count = 0 WHERE id = ?",
            (row["id"],),
        )
        audit.record(
            conn,
            actor.label,
            "user.unlock",
            row["name"],
            "ok" if row["locked"] else "unchanged",
            {"fail_count": row["fail_count"]},
        )
    return {"name": row["name"], "was_locked": bool(row["locked"]), "locked": False}


def check_install(conn: sqlite3.Connection, name: str) -> dict:
    """SPEC S10: a user with 2FA enabled cannot run server-assisted installations (exit 6)."""
    from .users import get_user

    row = get_user(conn, name, "name, state")
    if row["state"] != "disabled":
        raise StateConflict(
            f"{row['name']} has two-factor authentication {row['state']} and cannot be used for "
            "server-assisted installations.",
            "Use a dedicated installation account without 2FA.",
        )
    return {"name": row["name"], "state": row["state"], "usable_for_install": True}


def enrollment_uri(store: Store, actor: Actor, name: str) -> dict:
    """The otpauth URI again, only while the user is pending (a new QR needs a token reset)."""
    from . import config
    from .users import get_user

    row = get_user(store.conn, name, "id, name, group_name, state, method, secret")
    permissions.require_write(store.conn, actor, row)
    if row["method"] != "totp" or row["state"] != "pending" or row["secret"] is None:
        raise StateConflict(
            f"{row['name']} is {row['state']}"
            + (f" ({row['method']})" if row["method"] else "")
            + "; the enrollment QR code is shown only while TOTP enrollment is pending.",
            "An enrolled user needs a token reset (`eset2fa user reset-token`) for a new secret.",
        )
    key = totp.master_key(store)
    secret = key.open(row["secret"], totp.secret_context(row["id"])).decode("ascii")
    issuer = config.get(store.conn, "totp.issuer")
    with store.write() as conn:
        audit.record(conn, actor.label, "user.qr", row["name"], "ok")
    return {"name": row["name"], "uri": totp.provisioning_uri(secret, row["name"], issuer)}
