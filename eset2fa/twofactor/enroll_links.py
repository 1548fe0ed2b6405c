"""One-time enrollment links (`<server.public_url>/e/<token>`) and the enrollment SMS.

The source: "Users will receive a link via text message (SMS), which they can open in their phone's
web browser to view instructions for configuring 2FA". With `server.public_url` set, every
enrollment SMS carries such a link instead of the otpauth URI, so the TOTP secret never travels by
SMS; the page (`eset2fa serve`) shows the QR code and the "Add to authenticator" link, and takes the
first code, which activates 2FA through `verify_otp` (same lockout, same audit).

The token is a 72-bit selector (finds the row) followed by a 144-bit verifier, stored only as its
keyed hash (`eset2fa.secrets.code_hash`): neither the database nor a backup holds a usable link. A
link is valid while its user is a pending, unlocked TOTP user, for
`server.enroll_link_ttl_seconds` (900), and until the first code activates the user. A user has at
most one link: a new one supersedes the previous; a token reset or a recovery (a new secret) and
disabling 2FA drop it. An expired, used, superseded or unknown token is one answer: `None`.

`send_enrollment_sms` is the one place an enrollment SMS is written, for every path that sends one
(first login, token reset confirmation, `user enable --phone`, bulk enable of users with a stored
phone). Without a public URL, the first login keeps sending the otpauth URI (and says that the SMS
carries the secret); the other paths, which never sent the secret, send nothing.
"""

from __future__ import annotations

import base64
import os
import re
import sqlite3
from datetime import timedelta

from eset2fa.clock import now, now_iso, to_iso
from eset2fa.db import Store
from eset2fa.db import enroll_links as link_rows
from eset2fa.db import users as user_rows
from eset2fa.errors import DeliveryFailed, Eset2faError
from eset2fa.ops import audit_chain, settings
from eset2fa.secrets import code_hash, keys

PATH = "/e/"
_SELECTOR_BYTES = 9  # 12 base64url characters
_VERIFIER_BYTES = 18  # 24 characters, 144 bits: the part that is only stored hashed
_TOKEN_RE = re.compile(r"([A-Za-z0-9_-]{12})([A-Za-z0-9_-]{24})")
SECRET_WARNING = (
    "The enrollment SMS carries the TOTP secret in clear text; set server.public_url (and run "
    "`eset2fa serve`) to send a one-time link instead."
)

# Page outcomes of `submit_code`.
ACTIVATED = "activated"
WRONG_CODE = "wrong_code"
INVALID = "invalid"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def issue(conn: sqlite3.Connection, store: Store, row, actor_label: str, public: str) -> dict:
    """A new link for `row` (a pending TOTP user), superseding theirs; inside a write transaction.

    Returns {"url", "expires_at"}: the URL holds the token and is handed to the SMS only.
    """
    codes_key = keys.for_connection(conn, store.path, create=True).codes_key
    selector = _b64(os.urandom(_SELECTOR_BYTES))
    verifier = _b64(os.urandom(_VERIFIER_BYTES))
    salt = code_hash.new_salt()
    created = now()
    ttl = settings.get(conn, "server.enroll_link_ttl_seconds")
    expires_at = to_iso(created + timedelta(seconds=ttl))
    link_rows.put(
        conn,
        row["id"],
        selector=selector,
        code_hash=code_hash.hash_code(codes_key, salt, verifier),
        salt=salt,
        created_at=to_iso(created),
        expires_at=expires_at,
        created_by=actor_label,
    )
    audit_chain.record(
        conn, actor_label, "enroll.link", row["name"], "issued", {"expires_at": expires_at}
    )
    return {"url": f"{public}{PATH}{selector}{verifier}", "expires_at": expires_at}


def send_enrollment_sms(
    store: Store, actor_label: str, row, phone: str, *, uri: str | None = None
) -> dict | None:
    """Send `row`'s enrollment SMS to `phone`: the one-time link, or (no public URL) `uri`.

    Returns what was sent, for the caller's output: {"sent_to", "transport", "carries": "link" or
    "secret", "expires_at" (a link), "warning" (the secret)}, or {"sent_to", "error"} when the
    gateway refused (no link is left behind then). None when nothing is sent: no public URL and
    no `uri` (the paths that never sent the secret keep not sending it).
    """
    from eset2fa.ops.delivery import sms_transport

    public = settings.public_url(store.conn)
    if public is None and uri is None:
        return None
    name = row["name"]
    if public is not None:
        keys.for_store(store, create=True)  # a missing key stops here, before anything is written
        with store.write() as conn:
            link = issue(conn, store, row, actor_label, public)
        ttl = settings.get(store.conn, "server.enroll_link_ttl_seconds")
        minutes = max(ttl // 60, 1)
        text = (
            f"Two-factor enrollment for {name}: open {link['url']} on this phone to set up "
            f"your authenticator app (one use, valid {minutes} min)."
        )
        sent = {"sent_to": phone, "carries": "link", "expires_at": link["expires_at"]}
    else:
        text = (
            f"Two-factor enrollment for {name}: open this link with your authenticator app: {uri}"
        )
        sent = {"sent_to": phone, "carries": "secret", "warning": SECRET_WARNING}
        ttl = None
    try:
        delivery = sms_transport(store).send_sms(phone, text, user=name, ttl=ttl)
    except DeliveryFailed as error:
        if public is not None:
            with store.write() as conn:  # a link nobody received must not stay valid
                link_rows.delete(conn, row["id"])
        return {"sent_to": phone, "error": error.message}
    return {**sent, "transport": delivery.transport}


def _parse(token: str) -> tuple[str, str] | None:
    match = _TOKEN_RE.fullmatch(token) if isinstance(token, str) else None
    return (match.group(1), match.group(2)) if match else None


def _valid_link(store: Store, conn: sqlite3.Connection, token: str):
    """(link row, user row) while the token is a current link of a pending TOTP user, else None."""
    parsed = _parse(token)
    if parsed is None:
        return None
    selector, verifier = parsed
    link = link_rows.find(conn, selector)
    if link is None:
        return None
    codes_key = keys.for_store(store).codes_key
    if not code_hash.matches(codes_key, link["salt"], verifier, link["code_hash"]):
        return None
    if link["expires_at"] <= now_iso():
        return None
    user = user_rows.find_by_id(conn, link["user_id"])
    if (
        user is None
        or user["method"] != "totp"
        or user["state"] != "pending"
        or user["secret"] is None
        or user["locked"]
    ):
        return None
    return link, user


def open_link(store: Store, token: str, *, audit: bool = True) -> dict | None:
    """What the enrollment page shows: {"name", "uri", "issuer", "expires_at"}; None: invalid.

    Audited (`enroll.link` opened / invalid), never with the token; `audit=False` for the page
    shown again after a wrong code (the code's attempt is audited by `verify_otp`).
    """
    from eset2fa.twofactor import totp

    found = _valid_link(store, store.conn, token)
    if audit:
        with store.write() as conn:
            if found is None:
                audit_chain.record(conn, "enroll-link", "enroll.link", None, "invalid")
            else:
                audit_chain.record(conn, "enroll-link", "enroll.link", found[1]["name"], "opened")
    if found is None:
        return None
    link, user = found
    secret = keys.for_store(store).open(user["secret"], totp.secret_context(user["id"]))
    issuer = settings.get(store.conn, "totp.issuer")
    uri = totp.provisioning_uri(
        base64.b32encode(secret).decode(), user["name"], issuer, **totp.parameters_of(user)
    )
    return {"name": user["name"], "uri": uri, "issuer": issuer, "expires_at": link["expires_at"]}


def submit_code(store: Store, token: str, code: str) -> tuple[str, str | None]:
    """The first code typed on the page: (ACTIVATED, WRONG_CODE or INVALID, the user's name).

    The code goes through `verify_otp`, as `auth verify` does: a wrong one counts toward the
    lockout, a replay is refused, the attempt is audited. Activation uses the link up. INVALID:
    the link is not (any more) valid, or the user is locked; the name is then None.
    """
    from eset2fa.twofactor import totp

    found = _valid_link(store, store.conn, token)
    if found is None:
        with store.write() as conn:
            audit_chain.record(conn, "enroll-link", "enroll.link", None, "invalid")
        return INVALID, None
    link, user = found
    try:
        result = totp.verify_otp(
            store, user["name"], (code or "").strip(), actor="enroll-link", action="auth.verify"
        )
    except Eset2faError:  # locked, no longer enabled, deleted meanwhile: the link is not valid
        return INVALID, None
    if result.accepted and result.state == "active":
        with store.write() as conn:
            link_rows.delete(conn, user["id"], link["selector"])
            audit_chain.record(conn, "enroll-link", "enroll.link", user["name"], "used")
        return ACTIVATED, user["name"]
    return WRONG_CODE, user["name"]
