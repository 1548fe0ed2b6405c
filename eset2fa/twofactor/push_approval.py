"""Push requests (SPEC S12, S13): a short request ID, a single-use approval token, a deadline.

A request is `pending` until it is approved (by its token coming back from the phone, or by an admin
with `push approve`), rejected (by an admin; the phone's Reject sends nothing, as the source says),
or expired (no approval within `push.timeout_seconds`, 150 s by default).

The approval token is `<request id>.<expiry, unix>.<128-bit nonce>.<HMAC-SHA256>`, base64url. The
HMAC key is 32 random bytes created on first use and kept in the `config` table sealed with the
master key, like transport credentials: a copy of the database alone (a backup) cannot forge an
approval, and re-sealing credentials on key rotation carries it along. Losing it only invalidates
the pending requests. Only the SHA-256 of the nonce is stored, so the database never holds a usable
token. A token is checked in constant time and consumed in one write transaction, only while its
request is pending and unexpired.

Pushes to one user are rate-limited (`push.rate_limit` per `push.rate_window_seconds`): a flood of
requests meant to make a user tap Approve (push fatigue) is refused with exit code 8.

Number matching (against push fatigue, and against whoever reads the push topic): every request
gets a two-digit number that the login shows beside its ID, and two distinct decoys; the three are
stored in a random order fixed at creation (a page reloaded with fresh decoys would give the right
number away as the one that stays). With `server.public_url` set, the push links to
`<public-url>/p/<id>?t=<token>`; that page (`eset2fa serve`) shows the ID and the three numbers:
only the right pick approves, a wrong pick denies the request (audited), Reject closes it without
access and, as the source says, records nothing more unless `push.report_reject` is true. Such a
request (`needs_number`) can no longer be approved with the bare token (the ntfy Approve button,
`push approve --token`): only by the pick, or by an administrator's `push approve ID`. The number is
never put in the push, in the audit log or beside the token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import sqlite3
import time
from collections.abc import Callable
from datetime import timedelta

from eset2fa.accounts.actors import Actor
from eset2fa.accounts.permissions import require_write
from eset2fa.clock import now, to_iso
from eset2fa.db import Store
from eset2fa.db import push_requests as push_request_rows
from eset2fa.db import stored_settings as setting_rows
from eset2fa.db import users as user_rows
from eset2fa.errors import DeliveryFailed, NotFound, PushDenied, PushRateLimited, StateConflict
from eset2fa.ops import audit_chain, settings

STATES = ("pending", "approved", "rejected", "expired")
ID_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: no I, L, O, U to misread
APPROVAL_KEY = "push.approval_key"  # config row; not a user setting, so `config show` skips it
_KEY_CONTEXT = settings.secret_context(APPROVAL_KEY)
_ID_PATTERN = f"[{ID_ALPHABET}]{{3}}-[{ID_ALPHABET}]{{3}}"
_TOKEN_RE = re.compile(
    rf"({_ID_PATTERN})\.(\d{{1,12}})\.([A-Za-z0-9_-]{{22}})\.([A-Za-z0-9_-]{{43}})"
)
_FIELDS = (
    "id", "user", "created_at", "expires_at", "state", "transport", "requested_by",
    "decided_at", "decided_by", "number",
)  # fmt: skip
PAGE_PATH = "/p/"
CHOICES = 3  # the right number and two decoys


def _numbers() -> tuple[int, list[int]]:
    """The number shown at login (10-99) and the page's three choices, in a random order."""
    rng = secrets.SystemRandom()
    picks = rng.sample(range(10, 100), CHOICES)  # distinct
    number = picks[0]
    rng.shuffle(picks)
    return number, picks


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def new_request_id() -> str:
    chars = [secrets.choice(ID_ALPHABET) for _ in range(6)]
    return "".join(chars[:3]) + "-" + "".join(chars[3:])


def normalize_id(text: str) -> str:
    """What a person types ("k7q4m2", "K7Q-4M2 ") as the stored form."""
    compact = re.sub(r"[\s-]", "", text or "").upper()
    return f"{compact[:3]}-{compact[3:]}" if len(compact) == 6 else text


def _approval_key(store: Store, *, create: bool) -> bytes | None:
    """The HMAC key, sealed in the store; created (with the master key) on first use."""
    from eset2fa.secrets.keys import load_key

    conn = store.conn
    sealed = setting_rows.secret(conn, APPROVAL_KEY)
    if sealed is not None:
        return load_key(conn, store.path).open(sealed, _KEY_CONTEXT)
    if not create:
        return None
    # Called inside the caller's write transaction, so two processes never create two keys.
    key = secrets.token_bytes(32)
    sealed = load_key(conn, store.path, create=True).seal(key, _KEY_CONTEXT)
    setting_rows.put_secret(conn, APPROVAL_KEY, sealed, to_iso(now()))
    return key


def _mac(key: bytes, request_id: str, expires_unix: int, nonce: str) -> str:
    message = f"{request_id}.{expires_unix}.{nonce}".encode()
    return _b64(hmac.new(key, message, hashlib.sha256).digest())


def _nonce_hash(nonce: str) -> str:
    return hashlib.sha256(nonce.encode()).hexdigest()


def _row(conn: sqlite3.Connection, request_id: str) -> sqlite3.Row:
    row = push_request_rows.find(conn, normalize_id(request_id))
    if row is None:
        raise NotFound(f"No push request {request_id!r}.", "List them with `eset2fa push list`.")
    return row


def _public(row: sqlite3.Row) -> dict:
    """A request as shown: a pending request past its expiry reads as expired."""
    item = {key: row[key] for key in _FIELDS}
    if item["state"] == "pending" and item["expires_at"] <= to_iso(now()):
        item["state"] = "expired"
    return item


def get_request(store: Store, request_id: str) -> dict:
    return _public(_row(store.conn, request_id))


def list_requests(
    store: Store,
    *,
    user: str | None = None,
    state: str | None = None,
    limit: int | None = 100,
) -> list[dict]:
    """The newest `limit` requests (oldest first), by user and effective state."""
    rows = push_request_rows.newest(
        store.conn, now=to_iso(now()), user=user, state=state, limit=limit
    )
    return [_public(row) for row in reversed(rows)]


def create_request(
    store: Store, actor: Actor, name: str, *, timeout: int | None = None, transport: str = "outbox"
) -> dict:
    """A new pending request for `name`, with its approval token (returned once, never stored)."""
    denied = None
    with store.write() as conn:
        user = user_rows.get(conn, name)
        if actor.user_id != user["id"]:  # a user's own login asks for their own push
            require_write(conn, actor, user)
        seconds = timeout or settings.get(conn, "push.timeout_seconds")
        limit = settings.get(conn, "push.rate_limit")
        window = settings.get(conn, "push.rate_window_seconds")
        moment = now()
        recent = push_request_rows.count_since(
            conn, user["id"], to_iso(moment - timedelta(seconds=window))
        )
        if recent >= limit:
            audit_chain.record(
                conn, actor.label, "push.request", user["name"], "rate-limited",
                {"recent": recent, "limit": limit, "window_seconds": window},
            )  # fmt: skip
            denied = (user["name"], recent, window)
        else:
            key = _approval_key(store, create=True)
            # Whole seconds (the token carries a unix time), rounded up: never shorter than asked.
            expires = moment.replace(microsecond=0) + timedelta(
                seconds=seconds + (1 if moment.microsecond else 0)
            )
            expires_unix = int(expires.timestamp())
            nonce = _b64(secrets.token_bytes(16))  # 128 bits
            number, choices = _numbers()
            public = settings.public_url(conn)
            for _attempt in range(10):
                request_id = new_request_id()
                if push_request_rows.insert(
                    conn,
                    request_id,
                    user_id=user["id"],
                    created_at=to_iso(moment),
                    expires_at=to_iso(expires),
                    nonce_hash=_nonce_hash(nonce),
                    transport=transport,
                    requested_by=actor.label,
                    number=number,
                    choices=",".join(map(str, choices)),
                    needs_number=public is not None,
                ):
                    break
                # else an ID already taken (one in a billion): draw another
            token = (
                f"{request_id}.{expires_unix}.{nonce}.{_mac(key, request_id, expires_unix, nonce)}"
            )
            audit_chain.record(
                conn, actor.label, "push.request", user["name"], "ok",
                {"request": request_id, "timeout_seconds": seconds, "transport": transport},
            )  # fmt: skip
    if denied:
        user_name, recent, window = denied
        raise PushRateLimited(
            f"Too many push requests for {user_name}: {recent} in the last {window} s.",
            "This limit protects against push fatigue; wait, or raise push.rate_limit.",
        )
    request = {
        "id": request_id,
        "user": user["name"],
        "created_at": to_iso(moment),
        "expires_at": to_iso(expires),
        "expires_unix": expires_unix,
        "timeout_seconds": seconds,
        "transport": transport,
        "number": number,
        "token": token,
    }
    if public is not None:
        # The push carries this link (it holds the token): never the number.
        request["link"] = f"{public}{PAGE_PATH}{request_id}?t={token}"
    return request


def for_transport(request: dict) -> dict:
    """What a push transport gets: everything but the number (told only at the login screen)."""
    return {key: value for key, value in request.items() if key != "number"}


def without_secrets(request: dict) -> dict:
    """A new request as its requester may see it: no token, and no link (it holds the token)."""
    return {k: v for k, v in request.items() if k not in ("token", "link", "expires_unix")}


def _token_problem(
    store: Store, conn: sqlite3.Connection, token: str, request_id: str | None
) -> tuple[str | None, str | None, sqlite3.Row | None]:
    """(problem or None, request id, row) for a presented token. Runs in a write transaction."""
    match = _TOKEN_RE.fullmatch(token.strip()) if isinstance(token, str) else None
    if match is None:
        return "malformed token", None, None  # rejected before any crypto
    token_id, expires_text, nonce, mac = match.groups()
    if request_id is not None and token_id != normalize_id(request_id):
        return "token is for another request", token_id, None
    key = _approval_key(store, create=False)
    expected = _mac(key, token_id, int(expires_text), nonce) if key else "-" * 43
    if not hmac.compare_digest(mac.encode(), expected.encode()):
        return "bad signature", token_id, None
    row = push_request_rows.find(conn, token_id)
    if row is None:
        return "unknown request", token_id, None
    if not hmac.compare_digest(row["nonce_hash"], _nonce_hash(nonce)):
        return "token does not belong to this request", token_id, row
    if row["state"] != "pending":
        return f"request already {row['state']}", token_id, row
    stamp = to_iso(now())
    if int(expires_text) <= time.time() or row["expires_at"] <= stamp:
        return "request expired", token_id, row
    return None, token_id, row


def answer_page(store: Store, request_id: str, token: str) -> dict | None:
    """What the push answer page shows: {"id", "user", "choices", "expires_at"}; None when the
    token is not a valid, unused, unexpired token of this pending request (the neutral page)."""
    problem, _token_id, row = _token_problem(store, store.conn, token, request_id)
    if problem is not None or row["choices"] is None:
        return None
    return {
        "id": row["id"],
        "user": row["user"],
        "choices": [int(n) for n in row["choices"].split(",")],
        "expires_at": row["expires_at"],
    }


# Outcomes of `answer`.
APPROVED = "approved"
WRONG_NUMBER = "wrong_number"
REJECTED = "rejected"
INVALID = "invalid"


def answer(
    store: Store, request_id: str, token: str, *, pick: str | None = None, reject: bool = False
) -> str:
    """The phone's answer on the push page, once: APPROVED (the right number), WRONG_NUMBER (the
    request is denied, audited), REJECTED (closed; audited only with push.report_reject) or
    INVALID (the neutral page: wrong, used or expired token, or another request's)."""
    with store.write() as conn:
        problem, token_id, row = _token_problem(store, conn, token, request_id)
        if problem is None and row["choices"] is None:
            problem = "request has no number to match"
        if problem is not None:
            target = row["user"] if row is not None else None
            audit_chain.record(
                conn, "push-page", "push.answer", target, "denied",
                {"request": token_id, "reason": problem} if token_id else {"reason": problem},
            )  # fmt: skip
            return INVALID
        stamp = to_iso(now())
        if reject:
            push_request_rows.decide(conn, row["id"], "rejected", stamp, "phone")
            if settings.get(conn, "push.report_reject"):
                audit_chain.record(
                    conn, "push-page", "push.reject", row["user"], "reported",
                    {"request": row["id"], "note": "reported by the user"},
                )  # fmt: skip
            return REJECTED
        right = str(row["number"])
        if pick is not None and hmac.compare_digest(str(pick).strip().encode(), right.encode()):
            push_request_rows.decide(conn, row["id"], "approved", stamp, "number match")
            audit_chain.record(
                conn, "push-page", "push.approve", row["user"], "ok",
                {"request": row["id"], "via": "number match"},
            )  # fmt: skip
            return APPROVED
        push_request_rows.decide(conn, row["id"], "rejected", stamp, "wrong number")
        audit_chain.record(
            conn, "push-page", "push.answer", row["user"], "wrong_number", {"request": row["id"]}
        )
        return WRONG_NUMBER


def approve_with_token(store: Store, token: str, *, request_id: str | None = None) -> dict:
    """Consume an approval token: valid once, while its request is pending and unexpired."""
    with store.write() as conn:
        problem, token_id, row = _token_problem(store, conn, token, request_id)
        if problem is None and row["needs_number"]:
            problem = "number matching required (answer on the push page)"
        target = row["user"] if row is not None else token_id
        if problem is None:
            push_request_rows.decide(conn, token_id, "approved", to_iso(now()), "token")
        audit_chain.record(
            conn,
            "push-token",
            "push.approve",
            target,
            "denied" if problem else "ok",
            {"request": token_id, "reason": problem} if problem else {"request": token_id},
        )
    if problem:
        shown = token_id or (normalize_id(request_id) if request_id else "?")
        raise PushDenied(
            f"Approval for push request {shown} denied: {problem}.",
            "Approve only from the push itself, once, before it expires.",
        )
    return get_request(store, token_id)


def _decide(store: Store, actor: Actor, request_id: str, state: str) -> dict:
    with store.write() as conn:
        row = _row(conn, request_id)
        require_write(conn, actor, user_rows.get(conn, row["user"]))
        current = _public(row)["state"]
        if current != "pending":
            raise StateConflict(
                f"Push request {row['id']} is already {current}.",
                f"Only a pending request can be {state}; see `eset2fa push show {row['id']}`.",
            )
        push_request_rows.decide(conn, row["id"], state, to_iso(now()), actor.label)
        action = "push.approve" if state == "approved" else "push.reject"
        audit_chain.record(conn, actor.label, action, row["user"], "ok", {"request": row["id"]})
    return get_request(store, row["id"])


def approve(store: Store, actor: Actor | None, request_id: str, token: str | None = None) -> dict:
    """An admin approves (for the outbox transport); with a token, the token is checked."""
    if token is not None:
        _row(store.conn, request_id)  # an unknown ID is "not found", not "denied"
        return approve_with_token(store, token, request_id=request_id)
    return _decide(store, actor, request_id, "approved")


def reject(store: Store, actor: Actor, request_id: str) -> dict:
    return _decide(store, actor, request_id, "rejected")


def _expire(store: Store, request_id: str, reason: str) -> None:
    with store.write() as conn:
        if push_request_rows.decide(conn, request_id, "expired", to_iso(now()), reason):
            user = _row(conn, request_id)["user"]
            audit_chain.record(
                conn,
                "eset2fa",
                "push.expire",
                user,
                "ok",
                {"request": request_id, "reason": reason},
            )


def _state(store: Store, request_id: str) -> str:
    return push_request_rows.state(store.conn, request_id)


def send_and_wait(
    store: Store,
    actor: Actor,
    name: str,
    *,
    timeout: int | None = None,
    on_created: Callable[[dict], None] | None = None,
) -> dict:
    """Create a request, push it, and wait for its approval; PushDenied when rejected or expired.

    `on_created` gets the request (without its token) before the push goes out, so the caller can
    show the request ID the user must see in the push.
    """
    from eset2fa.ops.delivery import push_transport

    transport = push_transport(store)
    request = create_request(store, actor, name, timeout=timeout, transport=transport.name)
    request_id = request["id"]
    if on_created is not None:
        on_created({k: v for k, v in request.items() if k not in ("token", "link")})
    try:
        try:
            delivery = transport.send_push(for_transport(request))
        except DeliveryFailed as error:
            _expire(store, request_id, "delivery failed")
            with store.write() as conn:
                audit_chain.record(
                    conn, actor.label, "push.send", request["user"], "failed",
                    {"request": request_id, "error": error.message},
                )  # fmt: skip
            raise
        with store.write() as conn:
            audit_chain.record(
                conn, actor.label, "push.send", request["user"], "ok",
                {"request": request_id, "transport": delivery.transport},
            )  # fmt: skip
        deadline = float(request["expires_unix"])
        while _state(store, request_id) == "pending" and time.time() < deadline:
            token = transport.wait_for_reply(request, deadline)
            if token is not None:
                try:
                    approve_with_token(store, token, request_id=request_id)
                except PushDenied:
                    continue  # a forged or stale reply is audited; keep waiting for the real one
    finally:
        # Deadline passed, or the wait was interrupted: no late approval may count.
        _expire(
            store, request_id, "timeout" if time.time() >= request["expires_unix"] else "cancelled"
        )
    result = get_request(store, request_id)
    if result["state"] != "approved":
        raise PushDenied(
            f"Push request {request_id} for {request['user']} was {result['state']}: no access.",
            "Send a new request and approve it on the phone within the time limit.",
        )
    return result
