"""The audit log: who did what to whom, when, and how it ended. Never a secret.

Rows are hash-chained (each row's hash covers the previous row's hash), so `audit verify` detects a
row edited or deleted after the fact by someone who can write the file but does not recompute the
whole chain. Rows are written inside the caller's write transaction, so the audit row and the change
it describes commit together or not at all.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from typing import NamedTuple

from eset2fa.clock import now_iso
from eset2fa.db import Store
from eset2fa.db import audit_log as audit_rows

GENESIS = "0" * 64


class AuditEvent(NamedTuple):  # not a dataclass: start-up cost (see permissions.py)
    actor: str
    action: str
    target: str | None
    result: str
    details: dict | None = None


# json.dumps(..., sort_keys=True) builds a new encoder on every call; one shared encoder gives the
# same text for less work on the verification path, which audits every attempt.
_encode_details = json.JSONEncoder(sort_keys=True).encode


def _row_hash(
    prev_hash: str,
    at: str,
    actor: str,
    action: str,
    target: str | None,
    result: str,
    details_json: str,
) -> str:
    import hashlib  # not at import time: read-only commands never hash

    material = "\x1f".join((prev_hash, at, actor, action, target or "", result, details_json))
    return hashlib.sha256(material.encode()).hexdigest()


def _last_hash(conn: sqlite3.Connection) -> str:
    return audit_rows.last_hash(conn) or GENESIS


def record_many(conn: sqlite3.Connection, events: Iterable[AuditEvent]) -> int:
    """Append events to the chain. Must run inside a write transaction (Store.write)."""
    prev = _last_hash(conn)
    at = now_iso()
    rows = []
    # Bulk commands pass one details dict shared by every event: encode it once (by identity).
    last_details, details_json = None, ""
    for event in events:
        if event.details is not last_details:
            last_details = event.details
            details_json = _encode_details(event.details) if event.details else ""
        digest = _row_hash(
            prev, at, event.actor, event.action, event.target, event.result, details_json
        )
        rows.append(
            (
                at,
                event.actor,
                event.action,
                event.target,
                event.result,
                details_json or None,
                prev,
                digest,
            )
        )
        prev = digest
    audit_rows.append_many(conn, rows)
    return len(rows)


def record(
    conn: sqlite3.Connection,
    actor: str,
    action: str,
    target: str | None,
    result: str = "ok",
    details: dict | str | None = None,
    *,
    prev_hash: str | None = None,
) -> None:
    """Append one event (inside the caller's write transaction).

    `details`: a dict, or its JSON text exactly as `json.dumps(details, sort_keys=True)` writes it.

    `prev_hash`: the chain's last hash (GENESIS for an empty log) when the caller already read it
    (eset2fa.db.users reads it with the user's row) in THIS transaction; by default it is read here.
    """
    prev = prev_hash if prev_hash is not None else _last_hash(conn)
    at = now_iso()
    if not details:
        details_json = ""
    elif isinstance(details, str):
        details_json = details
    else:
        details_json = _encode_details(details)
    digest = _row_hash(prev, at, actor, action, target, result, details_json)
    audit_rows.append(conn, (at, actor, action, target, result, details_json or None, prev, digest))


def list_events(
    store: Store,
    *,
    user: str | None = None,
    since: str | None = None,
    action: str | None = None,
    limit: int | None = 100,
) -> list[dict]:
    """The newest `limit` matching rows (all when limit is None), oldest first."""
    rows = audit_rows.select_events(store.conn, user=user, since=since, action=action, limit=limit)
    events = []
    for row in reversed(rows):
        event = dict(row)
        event["details"] = json.loads(event["details"]) if event["details"] else {}
        events.append(event)
    return events


def verify_chain(store: Store) -> dict:
    """Recompute the chain; report the first row whose hash or link does not match."""
    prev = GENESIS
    checked = 0
    for row in audit_rows.chain(store.conn):
        expected = _row_hash(
            prev,
            row["at"],
            row["actor"],
            row["action"],
            row["target"],
            row["result"],
            row["details"] or "",
        )
        if row["prev_hash"] != prev or row["hash"] != expected:
            return {"ok": False, "rows_checked": checked, "first_bad_id": row["id"]}
        prev = row["hash"]
        checked += 1
    return {"ok": True, "rows_checked": checked, "first_bad_id": None}
