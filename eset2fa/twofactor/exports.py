"""`user export --otpauth`: active TOTP users' secrets as otpauth:// URIs, for leaving eset2fa.

Each URI carries the user's name, the store's issuer (`totp.issuer`) and the user's own parameters
(algorithm, digits, period when not the defaults), so any authenticator app or TOTP server reads
it, and `user import --otpauth` into another store keeps every user's codes working. Exporting
prints secrets: the command asks for --yes, the actor needs Write permission over every user
exported, and each exported user is audited by name (never the secret), before anything is shown.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable, Iterator
from typing import NamedTuple

from eset2fa.accounts import permissions
from eset2fa.accounts.actors import Actor
from eset2fa.db import Store
from eset2fa.db import users as user_rows
from eset2fa.db.connection import open_snapshot
from eset2fa.errors import NotFound, PermissionDenied, StateConflict, UsageError
from eset2fa.ops import audit_chain
from eset2fa.twofactor import totp

PAGE = 5000


class ExportedUser(NamedTuple):
    name: str
    uri: str
    secret: str  # base32, as the URI has it
    algorithm: str
    digits: int
    period: int
    issuer: str

    def to_dict(self) -> dict:
        return self._asdict()


class ExportReport(NamedTuple):
    users: Iterable[ExportedUser]  # read once; with --all streamed from a snapshot of the store
    count: int  # how many `users` yields
    not_permitted: int  # --all: active TOTP users outside the actor's Write permission


def _exported(key, row, issuer: str) -> ExportedUser:
    secret = base64.b32encode(key.open(row["secret"], totp.secret_context(row["id"])))
    secret = secret.decode("ascii").rstrip("=")
    parameters = totp.parameters_of(row)
    return ExportedUser(
        row["name"],
        totp.provisioning_uri(secret, row["name"], issuer, **parameters),
        secret,
        parameters["algorithm"] or totp.ALGORITHM,
        parameters["digits"] or totp.DIGITS,
        parameters["period"] or totp.PERIOD_SECONDS,
        issuer,
    )


def export_otpauth(
    store: Store,
    actor: Actor,
    *,
    names: list[str] | None = None,
    all_users: bool = False,
    output_format: str = "otpauth",
    progress: Callable[[int], None] | None = None,
) -> ExportReport:
    """The named (or all) active TOTP users, as URIs; audited before it returns.

    Named users must all exist (NotFound), be active TOTP users (StateConflict) and be within the
    actor's Write permission (PermissionDenied); nothing is exported otherwise. With `all_users`,
    users outside the actor's permission are left out and counted.

    With `all_users` the users are streamed: the export is audited (and every secret checked to
    open) a page at a time in one write transaction, and after it commits the same users are read
    again from a snapshot taken inside that transaction, as the caller prints them. So 1,000,000
    users are exported in flat memory, every one printed was audited, and a secret that does not
    open stops the export before anything is printed.
    """
    from eset2fa.ops import settings
    from eset2fa.secrets import keys

    if bool(names) == all_users:
        raise UsageError(
            "Give user NAMEs or --all (exactly one).", "Example: eset2fa user export --all --yes"
        )
    conn = store.conn
    scope = permissions.write_scope(conn, actor)
    issuer = settings.get(conn, "totp.issuer")
    details = {"format": output_format}  # one object: the audit encodes it once
    if names:
        rows = _named(conn, names, scope)
        key = keys.for_store(store) if rows else None
        exported = [_exported(key, row, issuer) for row in rows]
        with store.write() as write_conn:
            audit_chain.record_many(
                write_conn,
                (
                    audit_chain.AuditEvent(actor.label, "user.export", user.name, "ok", details)
                    for user in exported
                ),
            )
        if progress:
            progress(len(exported))
        return ExportReport(exported, len(exported), 0)

    key = None
    count = not_permitted = 0
    snapshot = None
    try:
        with store.write() as write_conn:
            snapshot = open_snapshot(store)  # before anything is written: the same users
            for page in _pages(write_conn):
                events = []
                for row in page:
                    if not scope.covers(row["id"], row["group_name"]):
                        not_permitted += 1
                        continue
                    if key is None:
                        key = keys.for_store(store)
                    key.open(row["secret"], totp.secret_context(row["id"]))  # fails here, not later
                    events.append(
                        audit_chain.AuditEvent(
                            actor.label, "user.export", row["name"], "ok", details
                        )
                    )
                count += len(events)
                audit_chain.record_many(write_conn, events)
    except BaseException:
        if snapshot is not None:
            snapshot.close()
        raise

    def users() -> Iterator[ExportedUser]:
        try:
            for page in _pages(snapshot):
                for row in page:
                    if scope.covers(row["id"], row["group_name"]):
                        yield _exported(key, row, issuer)
                if progress:
                    progress(len(page))
        finally:
            snapshot.close()

    return ExportReport(users(), count, not_permitted)


def _pages(conn) -> Iterator[list]:
    page = user_rows.exportable_page(conn, after_id=0, limit=PAGE)
    while page:
        yield page
        page = user_rows.exportable_page(conn, after_id=page[-1]["id"], limit=PAGE)


def _named(conn, names: list[str], scope: permissions.WriteScope) -> list:
    unique = list(dict.fromkeys(names))
    exportable = {row["name"].lower(): row for row in user_rows.exportable_named(conn, unique)}
    rows, seen = [], set()
    for name in unique:
        row = exportable.get(name.lower())
        if row is None:
            found = user_rows.find(conn, name)
            if found is None:
                raise NotFound(f"No user named {name!r}.", "List users with `eset2fa user list`.")
            raise StateConflict(
                f"{found['name']} is not an active TOTP user ({found['state']}"
                + (f", {found['method']}" if found["method"] else "")
                + "): only active TOTP secrets are exported.",
                "List them with `eset2fa user list --state active`.",
            )
        if not scope.covers(row["id"], row["group_name"]):
            raise PermissionDenied(
                f"No Write permission over {row['name']}.",
                f"Ask an administrator to grant it: eset2fa user grant ACTOR --write {row['name']}",
            )
        if row["id"] not in seen:
            seen.add(row["id"])
            rows.append(row)
    return rows
