"""`user export --otpauth`: active TOTP users' secrets as otpauth:// URIs, for leaving eset2fa.

Each URI carries the user's name, the store's issuer (`totp.issuer`) and the user's own parameters
(algorithm, digits, period when not the defaults), so any authenticator app or TOTP server reads
it, and `user import --otpauth` into another store keeps every user's codes working. Exporting
prints secrets: the command asks for --yes, the actor needs Write permission over every user
exported, and each exported user is audited by name (never the secret), before anything is shown.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import NamedTuple

from eset2fa.accounts import permissions
from eset2fa.accounts.actors import Actor
from eset2fa.db import Store
from eset2fa.db import users as user_rows
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
    users: list[ExportedUser]
    not_permitted: int  # --all: active TOTP users outside the actor's Write permission


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
    """
    from eset2fa.ops import settings
    from eset2fa.secrets import keys

    if bool(names) == all_users:
        raise UsageError(
            "Give user NAMEs or --all (exactly one).", "Example: eset2fa user export --all --yes"
        )
    conn = store.conn
    scope = permissions.write_scope(conn, actor)
    if names:
        rows = _named(conn, names, scope)
        not_permitted = 0
    else:
        rows, not_permitted = [], 0
        page = user_rows.exportable_page(conn, after_id=0, limit=PAGE)
        while page:
            for row in page:
                if scope.covers(row["id"], row["group_name"]):
                    rows.append(row)
                else:
                    not_permitted += 1
            page = user_rows.exportable_page(conn, after_id=page[-1]["id"], limit=PAGE)
    issuer = settings.get(conn, "totp.issuer")
    key = keys.for_store(store) if rows else None
    exported = []
    for row in rows:
        secret = base64.b32encode(key.open(row["secret"], totp.secret_context(row["id"])))
        secret = secret.decode("ascii").rstrip("=")
        parameters = totp.parameters_of(row)
        exported.append(
            ExportedUser(
                row["name"],
                totp.provisioning_uri(secret, row["name"], issuer, **parameters),
                secret,
                parameters["algorithm"] or totp.ALGORITHM,
                parameters["digits"] or totp.DIGITS,
                parameters["period"] or totp.PERIOD_SECONDS,
                issuer,
            )
        )
        if progress:
            progress(1)
    with store.write() as write_conn:
        details = {"format": output_format}  # one object: the audit encodes it once
        audit_chain.record_many(
            write_conn,
            (
                audit_chain.AuditEvent(actor.label, "user.export", user.name, "ok", details)
                for user in exported
            ),
        )
    return ExportReport(exported, not_permitted)


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
