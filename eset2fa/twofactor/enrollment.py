"""Turning two-factor authentication on and off: enable (one or 100,000 users), disable, unlock.

Bulk enable runs in ONE write transaction: every selected user gets a fresh secret sealed with the
master key and bound to the user, or (on any error, Ctrl-C included) nobody changes. For speed at
100,000 users the secrets come from one `os.urandom` call, are sealed with one Sealer and
written with `executemany` in chunks (`eset2fa.db.users.set_pending`).
"""

from __future__ import annotations

import base64
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from eset2fa.accounts import permissions
from eset2fa.accounts.actors import Actor
from eset2fa.clock import now_iso
from eset2fa.db import Store
from eset2fa.db import enroll_links as enroll_link_rows
from eset2fa.db import recovery_codes as recovery_code_rows
from eset2fa.db import token_resets as token_reset_rows
from eset2fa.db import users as user_rows
from eset2fa.errors import NotFound, PermissionDenied, StateConflict, UsageError
from eset2fa.ops import audit_chain
from eset2fa.secrets import keys
from eset2fa.secrets.sealer import Sealer
from eset2fa.twofactor import totp
from eset2fa.twofactor.outcomes import Outcomes
from eset2fa.twofactor.states import Method

CHUNK = 5000

# Per-user results.
ENABLED = "enabled"
ALREADY_ENABLED = "already_enabled"
DISABLED = "disabled"
ALREADY_DISABLED = "already_disabled"
NOT_FOUND = "not_found"
DENIED = "denied"


def _outcomes() -> Outcomes:
    return Outcomes(("name", "result"))


@dataclass
class BulkReport:
    """Per-user results, in the order the users were asked for (or by id), and counts."""

    # Held in memory up to a point, then in a temporary file: 1,000,000 results in flat memory.
    outcomes: Outcomes = field(default_factory=_outcomes)
    uri: str | None = None  # the enrollment URI, only for a single-user TOTP enrollment
    # Enrollment SMS sent (server.public_url set: one-time links), one dict per user with a phone.
    sms: list[dict] = field(default_factory=list)
    warning: str | None = None  # why no enrollment SMS went out although a phone was given

    @property
    def results(self) -> list[dict]:
        return list(self.outcomes)

    @property
    def counts(self) -> dict[str, int]:
        return dict(self.outcomes.counts)


def _target_chunks(
    conn: sqlite3.Connection,
    names: Iterable[str] | None,
    group: str | None,
    all_users: bool,
) -> tuple[Iterator[list[sqlite3.Row]], Iterator[list[str]]]:
    """(chunks of rows found, chunks of names not found): rows in the order asked (names) or by
    id, each user once; names not found once each, in the order asked.

    With --group/--all the rows are read a chunk at a time (keyset pagination by id), so 100,000
    users never sit in memory at once; each chunk is read in full before it is updated. Names
    given as a list (a Sequence) are matched in memory; names given as any other iterable (a file of
    1,000,000 names, read as it goes) are matched in TEMP tables of the connection
    (`eset2fa.db.users.ask_names`) and read back a chunk at a time.
    """
    streamed = names is not None and not isinstance(names, Sequence)
    chosen = sum([streamed or bool(names), group is not None, all_users])
    if chosen != 1:
        raise UsageError(
            "Give user NAMEs, --group G, --all or --from-file (exactly one way).",
            "Example: eset2fa user enable alice bob --method totp",
        )
    if streamed:
        user_rows.ask_names(conn, names)
        return _asked_chunks(conn), _missing_chunks(conn)
    if names:
        rows, missing = _rows_by_name(conn, names)
        chunks = (rows[i : i + CHUNK] for i in range(0, len(rows), CHUNK))
        return chunks, iter([missing] if missing else [])
    first = user_rows.targets_page(conn, after_id=0, limit=CHUNK, group=group)
    if group is not None and not first:
        raise NotFound(f"No users in group {group!r}.", "List users with `eset2fa user list`.")

    def chunks() -> Iterator[list[sqlite3.Row]]:
        chunk = first
        while chunk:
            yield chunk
            chunk = user_rows.targets_page(conn, after_id=chunk[-1]["id"], limit=CHUNK, group=group)

    return chunks(), iter([])


def _asked_chunks(conn: sqlite3.Connection) -> Iterator[list[sqlite3.Row]]:
    chunk = user_rows.asked_found_page(conn, after=0, limit=CHUNK)
    while chunk:
        yield chunk
        chunk = user_rows.asked_found_page(conn, after=chunk[-1]["seq"], limit=CHUNK)


def _missing_chunks(conn: sqlite3.Connection) -> Iterator[list[str]]:
    chunk = user_rows.asked_missing_page(conn, after=0, limit=CHUNK)
    while chunk:
        yield [name for _seq, name in chunk]
        chunk = user_rows.asked_missing_page(conn, after=chunk[-1][0], limit=CHUNK)


def _rows_by_name(
    conn: sqlite3.Connection, names: list[str]
) -> tuple[list[sqlite3.Row], list[str]]:
    unique = list(dict.fromkeys(names))
    found = {row["name"].lower(): row for row in user_rows.targets_named(conn, unique)}
    rows, missing, seen = [], [], set()
    for name in unique:
        row = found.get(name.lower())
        if row is None:
            missing.append(name)
        elif row["id"] not in seen:
            seen.add(row["id"])
            rows.append(row)
    return rows, missing


def count_targets(
    store: Store,
    names: Iterable[str] | None,
    group: str | None,
    all_users: bool,
) -> int:
    """How many users a selection covers at most (the progress bar's total)."""
    if names is not None and not isinstance(names, Sequence):
        return 0  # streamed: the caller knows how many it gives
    if names:
        return len(names)
    if group is not None:
        return user_rows.count(store.conn, group=group)
    return user_rows.count(store.conn) if all_users else 0


def enable(
    store: Store,
    actor: Actor,
    *,
    names: Iterable[str] | None = None,
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
    if method not in Method.__members__:
        raise UsageError(f"Unknown method {method!r}.", "Use --method totp or --method push.")
    if phone is not None:
        from eset2fa.twofactor.phones import normalize_phone

        if not isinstance(names, Sequence) or len(names) != 1:
            raise UsageError("--phone applies to one user at a time.", "Give exactly one NAME.")
        phone = normalize_phone(phone)
    from eset2fa.ops import settings

    report = BulkReport()
    enabled_details = {"method": method}  # one object: the audit encodes it once
    single: sqlite3.Row | None = None
    secret: str | None = None
    # Users to send the enrollment link to: TOTP users enabled now who have a phone number.
    with_phone: list[tuple[sqlite3.Row, str]] = []
    one_name = isinstance(names, Sequence) and len(names) == 1
    with store.write() as conn:
        chunks, missing = _target_chunks(conn, names, group, all_users)
        scope = permissions.write_scope(conn, actor)
        issuer = settings.get(conn, "totp.issuer")
        key = sealer = None
        if method == "totp":
            key = keys.load_key(conn, store.path, create=True)
            sealer = key.sealer
        for rows in chunks:
            first = rows[0]
            if (
                phone is not None
                and scope.covers(first["id"], first["group_name"])
                and first["phone"] is not None
            ):
                from eset2fa.twofactor.phones import immutable_error

                raise immutable_error(first["name"])
            todo: list[sqlite3.Row] = []
            events: list[audit_chain.AuditEvent] = []
            for row in rows:
                if not scope.covers(row["id"], row["group_name"]):
                    result = DENIED
                elif row["state"] != "disabled":
                    result = ALREADY_ENABLED
                else:
                    result = ENABLED
                    todo.append(row)
                report.outcomes.add(row["name"], result)
                details = enabled_details if result == ENABLED else None
                events.append(
                    audit_chain.AuditEvent(actor.label, "user.enable", row["name"], result, details)
                )
            secrets_by_id = _write_enabled(conn, todo, method, sealer)
            if one_name and len(todo) == 1:
                single, secret = todo[0], secrets_by_id.get(todo[0]["id"])
                if phone is not None:
                    user_rows.set_phone(conn, single["id"], phone)
                    if method == "totp":
                        with_phone.append((single, phone))
            elif method == "totp":
                with_phone += [(row, row["phone"]) for row in todo if row["phone"] is not None]
            audit_chain.record_many(conn, events)
            if progress:
                progress(len(rows))
        for part in missing:
            audit_chain.record_many(
                conn,
                (audit_chain.AuditEvent(actor.label, "user.enable", n, NOT_FOUND) for n in part),
            )
            report.outcomes.extend((name, NOT_FOUND) for name in part)
        user_rows.forget_asked(conn)

    if single is not None and secret is not None:
        report.uri = totp.provisioning_uri(secret, single["name"], issuer)
    if key is not None:
        keys.remember(store, key)
    if with_phone:
        _send_links(store, actor, report, with_phone)
    return report


def _send_links(
    store: Store, actor: Actor, report: BulkReport, users: list[tuple[sqlite3.Row, str]]
) -> None:
    """The source: users "receive a link via text message" as soon as 2FA is enabled for them.

    Only with `server.public_url`: an SMS from here never carries the secret (without a public
    URL the user gets the enrollment at the first login, as before).
    """
    from eset2fa.ops import settings
    from eset2fa.twofactor.enroll_links import send_enrollment_sms

    if settings.public_url(store.conn) is None:
        report.warning = (
            "No enrollment SMS sent: server.public_url is not set, and without it the SMS would "
            "carry the secret (the user gets it at the first `eset2fa auth login`)."
        )
        return
    for row, phone in users:
        sent = send_enrollment_sms(store, actor.label, row, phone)
        if sent is not None:
            report.sms.append({"name": row["name"], **sent})


def _write_enabled(
    conn: sqlite3.Connection,
    rows: list[sqlite3.Row],
    method: str,
    sealer: Sealer | None,
) -> dict[int, str]:
    """Write method/state/secret for `rows`; returns the new secret of a single row (its URI).

    `sealer` is the master key's sealer for the whole run (None for push: no secret).
    """
    enabled_at = now_iso()
    secrets_by_id: dict[int, str] = {}
    if sealer is not None:
        # One urandom call per chunk for the secrets, one for the nonces: per-user calls dominate
        # at 100,000 users.
        size = totp.SECRET_BYTES
        material = os.urandom(size * len(rows))
        fresh = [material[i * size : (i + 1) * size] for i in range(len(rows))]
        sealed = sealer.seal_many(
            (secret, totp.secret_context(row["id"]))
            for secret, row in zip(fresh, rows, strict=True)
        )
        if len(rows) == 1:  # a single enrollment shows its URI; bulk never keeps secrets
            secrets_by_id[rows[0]["id"]] = totp.encode_secret(fresh[0])
    else:
        sealed = [None] * len(rows)
    user_rows.set_pending(
        conn,
        ((method, blob, enabled_at, row["id"]) for blob, row in zip(sealed, rows, strict=True)),
    )
    return secrets_by_id


def reenroll(conn: sqlite3.Connection, store: Store, row: sqlite3.Row, method: str) -> str | None:
    """Put ONE user back to `pending` with `method`, a fresh secret for TOTP; returns its URI.

    Inside the caller's write transaction (token reset, lost-phone recovery): the old secret is
    replaced in the same transaction, so it works until the moment of commit and never after.
    Also clears the replay step, the fail count and the lock, as `enable` does. The phone column
    is left to the caller.
    """
    from eset2fa.ops import settings

    sealer = None
    if method == "totp":
        sealer = keys.load_key(conn, store.path, create=True).sealer
    enroll_link_rows.delete(conn, row["id"])  # a link sent for the old secret must not show the new
    secret = _write_enabled(conn, [row], method, sealer).get(row["id"])
    if secret is None:
        return None
    return totp.provisioning_uri(secret, row["name"], settings.get(conn, "totp.issuer"))


def disable(
    store: Store,
    actor: Actor,
    *,
    names: Iterable[str] | None = None,
    group: str | None = None,
    all_users: bool = False,
    progress: Callable[[int], None] | None = None,
) -> BulkReport:
    """Turn 2FA off: clears the secret, phone, replay step, fail count and lock (audit kept)."""
    report = BulkReport()
    outcomes = report.outcomes
    with store.write() as conn:
        chunks, missing = _target_chunks(conn, names, group, all_users)
        scope = permissions.write_scope(conn, actor)
        # A chunk at a time (cleared, then audited), inside the one transaction: memory stays
        # flat at 1,000,000 users, and the audit rows are the same, in the same order.
        for rows in chunks:
            todo, events = [], []
            for row in rows:
                if not scope.covers(row["id"], row["group_name"]):
                    result = DENIED
                elif row["state"] == "disabled":
                    result = ALREADY_DISABLED
                else:
                    result = DISABLED
                    todo.append(row["id"])
                outcomes.add(row["name"], result)
                events.append(
                    audit_chain.AuditEvent(actor.label, "user.disable", row["name"], result)
                )
            clear_second_factor(conn, todo)
            audit_chain.record_many(conn, events)
            if progress:
                progress(len(rows))
        for part in missing:
            audit_chain.record_many(
                conn,
                (audit_chain.AuditEvent(actor.label, "user.disable", n, NOT_FOUND) for n in part),
            )
            outcomes.extend((name, NOT_FOUND) for name in part)
        user_rows.forget_asked(conn)
    return report


def clear_second_factor(conn: sqlite3.Connection, user_ids: list[int]) -> None:
    """Disabling 2FA, written once (user disable, lost-phone recovery, Administrator password
    reset): every second-factor field back to "never enrolled" (secret, phone, replay step, lock,
    counters), and what belonged to the removed setup goes with it (a pending token reset, the
    recovery codes), so a later enable starts clean. The audit log is kept."""
    user_rows.clear_two_factor(conn, user_ids)
    token_reset_rows.delete_for_users(conn, user_ids)
    recovery_code_rows.delete_for_users(conn, user_ids)
    enroll_link_rows.delete_for_users(conn, user_ids)


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


def check_install(store: Store, name: str) -> dict:
    """SPEC S10: a user with 2FA enabled cannot run server-assisted installations (exit 6)."""
    row = user_rows.get(store.conn, name)
    if row["state"] != "disabled":
        raise StateConflict(
            f"{row['name']} has two-factor authentication {row['state']} and cannot be used for "
            "server-assisted installations.",
            "Use a dedicated installation account without 2FA.",
        )
    return {"name": row["name"], "state": row["state"], "usable_for_install": True}


def enrollment_uri(store: Store, actor: Actor, name: str) -> dict:
    """The otpauth URI again, only while the user is pending (a new QR needs a token reset)."""
    from eset2fa.ops import settings

    row = user_rows.get(store.conn, name)
    permissions.require_write(store.conn, actor, row)
    if row["method"] != "totp" or row["state"] != "pending" or row["secret"] is None:
        raise StateConflict(
            f"{row['name']} is {row['state']}"
            + (f" ({row['method']})" if row["method"] else "")
            + "; the enrollment QR code is shown only while TOTP enrollment is pending.",
            f"A new secret needs a token reset (`eset2fa user reset-token {row['name']}`), or"
            f" `eset2fa user disable {row['name']}` and `user enable` again.",
        )
    key = keys.for_store(store)
    secret = base64.b32encode(key.open(row["secret"], totp.secret_context(row["id"]))).decode()
    issuer = settings.get(store.conn, "totp.issuer")
    with store.write() as conn:
        audit_chain.record(conn, actor.label, "user.qr", row["name"], "ok")
    uri = totp.provisioning_uri(secret, row["name"], issuer, **totp.parameters_of(row))
    return {"name": row["name"], "uri": uri}
