"""The audit log: who did what to whom, when, and how it ended. Never a secret.

Rows are chained with HMAC-SHA256 under the audit-chain subkey of the store's key (each row's MAC
covers the previous row's), so `audit verify` detects a row edited, inserted or deleted after the
fact, even by someone who can write the file and re-compute the chain: without the key they
cannot compute the MACs. It cannot detect the newest rows deleted (nothing after them links to
them), nor changes by whoever holds the key. Rows are written inside the caller's write
transaction, so the audit row and the change it describes commit together or not at all.

Writing a row needs the key: code that has not loaded it gets it here (a store without a key gets
one: its first audited change, usually its creation). Chains written before the chain was keyed
(plain SHA-256) are re-keyed once by eset2fa.secrets.integrity, through `rechain`.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from typing import NamedTuple

from eset2fa.clock import now_iso
from eset2fa.db import Store
from eset2fa.db import audit_log as audit_rows

# The links are stored as 32 bytes (64 hex digits before schema 10); what a row's MAC covers is
# the previous link in hex, as it always was, so chains verify across the conversion.
GENESIS = bytes(32)  # the link before the first row
_GENESIS_HEX = "0" * 64
KEYED_ACTION = "audit.keyed"  # the upgrade step's row: the rows before it were re-keyed as found
_PAGE = 5000

# What a verification of a keyed chain can and cannot show (`audit verify`, README).
DETECTS = (
    "a row edited, inserted or deleted anywhere before the newest row, also when whoever did it "
    "re-computed the chain without the key"
)
CANNOT_DETECT = (
    "the newest rows deleted (the log cut short at its end), and changes by someone who holds "
    "the store's key"
)


class AuditEvent(NamedTuple):  # not a dataclass: start-up cost (see permissions.py)
    actor: str
    action: str
    target: str | None
    result: str
    details: dict | None = None


# json.dumps(..., sort_keys=True) builds a new encoder on every call; one shared encoder gives the
# same text for less work on the verification path, which audits every attempt.
_encode_details = json.JSONEncoder(sort_keys=True).encode


def _hex(link: bytes | str) -> str:
    """A stored link in hex (a text link is a row written before schema 10, or tampered with)."""
    return link.hex() if isinstance(link, bytes) else link


def _material(
    prev_hash: bytes | str,
    at: str,
    actor: str,
    action: str,
    target: str | None,
    result: str,
    details_json: str,
) -> bytes:
    return "\x1f".join(
        (_hex(prev_hash), at, actor, action, target or "", result, details_json)
    ).encode()


def _row_hash(mac, *fields) -> bytes:
    """The row's MAC: `mac` is the store's keyed HMAC template (MasterKey.audit_mac), copied so
    the key's padded blocks are hashed once per store, not once per row."""
    keyed = mac.copy()
    keyed.update(_material(*fields))
    return keyed.digest()


def _plain_hash(*fields) -> str:
    """What a row's hash was before the chain was keyed (plain SHA-256, in hex): checked when
    re-keying and for a store that has no key yet."""
    import hashlib

    return hashlib.sha256(_material(*fields)).hexdigest()


def _last_hash(conn: sqlite3.Connection) -> bytes | str:
    return audit_rows.last_hash(conn) or GENESIS


def _key(conn: sqlite3.Connection):
    """The store's key and whether it was loaded just now (which may have re-keyed the chain)."""
    # Imported here: `user status` and other reads import this module but write no row, and
    # loading eset2fa.secrets.keys costs them ~10 ms of start-up.
    from eset2fa.secrets import keys

    master = keys.cached(conn)
    if master is not None:
        return master, False
    return keys.for_connection(conn, create=True), True


def record_many(conn: sqlite3.Connection, events: Iterable[AuditEvent], *, master=None) -> int:
    """Append events to the chain. Must run inside a write transaction (Store.write)."""
    mac = (master or _key(conn)[0]).audit_mac
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
            mac, prev, at, event.actor, event.action, event.target, event.result, details_json
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
    prev_hash: bytes | None = None,
    master=None,
) -> bytes:
    """Append one event (inside the caller's write transaction); returns its hash, the chain's
    new last link.

    `details`: a dict, or its JSON text exactly as `json.dumps(details, sort_keys=True)` writes it.

    `prev_hash`: the chain's last hash (GENESIS for an empty log) when the caller already read it
    (eset2fa.db.users reads it with the user's row) in THIS transaction; by default it is read here.
    `master`: the store's established key, when the caller is establishing it (no lookup then).
    """
    if master is None:
        master, loaded_now = _key(conn)
        if loaded_now:
            prev_hash = None  # loading the key may have re-keyed the chain: read its end again
    prev = prev_hash if prev_hash is not None else _last_hash(conn)
    at = now_iso()
    if not details:
        details_json = ""
    elif isinstance(details, str):
        details_json = details
    else:
        details_json = _encode_details(details)
    digest = _row_hash(master.audit_mac, prev, at, actor, action, target, result, details_json)
    audit_rows.append(conn, (at, actor, action, target, result, details_json or None, prev, digest))
    return digest


def _fields(row) -> tuple:
    return (
        row["at"],
        row["actor"],
        row["action"],
        row["target"],
        row["result"],
        row["details"] or "",
    )


def rechain(conn: sqlite3.Connection, mac) -> dict:
    """Re-compute the whole chain with the keyed `mac` over unchanged rows (the caller's write
    transaction), checking the plain SHA-256 chain it replaces on the way.

    Returns {"rows", "legacy_chain": "intact" or "broken", "legacy_first_bad_id"}.
    """
    old_prev, new_prev = _GENESIS_HEX, GENESIS
    first_bad = None
    done, last_id = 0, 0
    while True:
        page = audit_rows.chain_page(conn, after_id=last_id, limit=_PAGE)
        if not page:
            break
        updates = []
        for row in page:
            fields = _fields(row)
            stored = _hex(row["hash"])
            if first_bad is None and (
                _hex(row["prev_hash"]) != old_prev or stored != _plain_hash(old_prev, *fields)
            ):
                first_bad = row["id"]
            old_prev = stored
            digest = _row_hash(mac, new_prev, *fields)
            updates.append((new_prev, digest, row["id"]))
            new_prev = digest
        audit_rows.set_hashes(conn, updates)
        done += len(page)
        last_id = page[-1]["id"]
    return {
        "rows": done,
        "legacy_chain": "intact" if first_bad is None else "broken",
        "legacy_first_bad_id": first_bad,
    }


def list_events(
    store: Store,
    *,
    user: str | None = None,
    since: str | None = None,
    action: str | None = None,
    limit: int | None = 100,
    as_json: bool = False,
) -> Iterator:
    """The newest `limit` matching rows (all when limit is None), oldest first, streamed from the
    query: `event_of` dicts, or with `as_json` the same as JSON texts, written by SQLite."""
    if as_json:
        return audit_rows.events_json(
            store.conn, user=user, since=since, action=action, limit=limit
        )
    rows = audit_rows.select_events(store.conn, user=user, since=since, action=action, limit=limit)
    return map(event_of, rows)


_EVENT_KEYS = ("id", "at", "actor", "action", "target", "result", "details")


def event_of(row: tuple) -> dict:
    """An audit row (id, at, actor, action, target, result, details JSON) as `audit list` shows
    it: details parsed ({} when none)."""
    event = dict(zip(_EVENT_KEYS, row, strict=True))
    event["details"] = json.loads(event["details"]) if event["details"] else {}
    return event


def verify_chain(store: Store) -> dict:
    """Re-compute the chain; report the first row whose MAC or link does not match.

    Needs the store's key (EncryptionKeyError otherwise). A store that has no key yet (made by an
    earlier eset2fa and not changed since) is checked against its plain SHA-256 chain, `keyed`
    False. Rows re-keyed by the upgrade step were trusted as found: `keyed_from` lists when, and a
    break the step found in the old chain stays reported.
    """
    from eset2fa.secrets import keys

    conn = store.conn
    keyed = keys.has_key(conn)
    mac = keys.for_store(store).audit_mac if keyed else None
    prev = GENESIS if keyed else _GENESIS_HEX
    checked = 0
    first_bad = None
    upgrades = []
    legacy_bad = None
    for row in audit_rows.chain(conn):
        fields = _fields(row)
        if keyed:  # links as stored: bytes (a text link is not one this chain wrote)
            link, stored = row["prev_hash"], row["hash"]
            expected = _row_hash(mac, prev, *fields)
        else:  # the plain chain of a store that has no key yet: compared in hex
            link, stored = _hex(row["prev_hash"]), _hex(row["hash"])
            expected = _plain_hash(prev, *fields)
        if link != prev or stored != expected:
            first_bad = row["id"]
            break
        if keyed and row["action"] == KEYED_ACTION and row["actor"] == "system":
            details = json.loads(row["details"] or "{}")
            upgrades.append({"id": row["id"], "at": row["at"], "rows": details.get("rows", 0)})
            if details.get("legacy_chain") == "broken" and legacy_bad is None:
                legacy_bad = details.get("legacy_first_bad_id")
        prev = stored
        checked += 1
    ok = first_bad is None and legacy_bad is None
    return {
        "ok": ok,
        "rows_checked": checked,
        "first_bad_id": first_bad if first_bad is not None else legacy_bad,
        "keyed": keyed,
        "keyed_from": upgrades,
        "broken_before_keyed": legacy_bad is not None,
        "detects": DETECTS
        if keyed
        else "a row edited or deleted by someone who did not re-compute the plain SHA-256 chain",
        "cannot_detect": CANNOT_DETECT
        if keyed
        else "an edit followed by a re-computed chain (not keyed yet: this store has no key; its "
        "next change gives it one), and the newest rows deleted",
    }
