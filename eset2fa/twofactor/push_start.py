"""The push second factor for callers that do not wait: start it, then ask how it ended.

`auth push` waits in one process (`login.push_login` over `push_approval.send_and_wait`). An
application calling the server (`POST /v1/push`, `GET /v1/push/<id>`) cannot hold an HTTP request
open for 150 s, so it starts the request here and polls its state. The rules are the same and come
from the same places: who may get a push (method push, not locked), the push-fatigue rate limit,
the single-use approval token and the deadline (`push_approval.create_request`), the transport
(`ops.delivery`), and the audit rows. The answer comes back as for `auth push`: the push page's
token, or an administrator's `eset2fa push approve ID` for the outbox transport.
"""

from __future__ import annotations

from eset2fa.accounts.actors import Actor
from eset2fa.clock import now_iso
from eset2fa.db import Store
from eset2fa.db import push_requests as push_request_rows
from eset2fa.db import users as user_rows
from eset2fa.errors import DeliveryFailed, NotFound, StateConflict
from eset2fa.ops import audit_chain
from eset2fa.twofactor import lockout, push_approval


def require_push_user(store: Store, name: str):
    """The user's row, if they approve pushes and are not locked (`auth push`, `auth login`,
    `POST /v1/push`); StateConflict or Locked otherwise."""
    row = user_rows.get(store.conn, name)
    if row["state"] == "disabled" or row["method"] != "push":
        raise StateConflict(
            f"{row['name']} does not approve push requests"
            + (f" (their method is {row['method']})." if row["method"] else " (2FA is off)."),
            f"Enable it with `eset2fa user enable {row['name']} --method push`.",
        )
    if row["locked"]:
        raise lockout.locked_error(row["name"])
    return row


def start(store: Store, actor: Actor, name: str) -> dict:
    """Create a push request for NAME and send it; returns the request (never its token).

    Raises NotFound, StateConflict (not a push user), Locked, PushRateLimited (push fatigue) and
    DeliveryFailed (the request is then expired: no late approval can count).
    """
    from eset2fa.ops.delivery import push_transport

    row = require_push_user(store, name)
    transport = push_transport(store)
    request = push_approval.create_request(store, actor, row["name"], transport=transport.name)
    try:
        delivery = transport.send_push(push_approval.for_transport(request))
    except DeliveryFailed as error:
        with store.write() as conn:
            push_request_rows.decide(conn, request["id"], "expired", now_iso(), "delivery failed")
            audit_chain.record(
                conn, actor.label, "push.send", request["user"], "failed",
                {"request": request["id"], "error": error.message},
            )  # fmt: skip
        raise
    with store.write() as conn:
        audit_chain.record(
            conn, actor.label, "push.send", request["user"], "ok",
            {"request": request["id"], "transport": delivery.transport},
        )  # fmt: skip
    return {**push_approval.without_secrets(request), "state": "pending"}


def state(store: Store, actor: Actor, request_id: str) -> dict:
    """The request as it stands (pending, approved, rejected, expired), for its requester only.

    A request another caller started is NotFound, as an unknown one is. The first time an approved
    request is seen for a `pending` user, the user becomes `active` (as `auth push` does).
    """
    try:
        request = push_approval.get_request(store, request_id)
    except NotFound:
        request = None
    if request is None or request["requested_by"] != actor.label:
        raise NotFound(f"No push request {request_id!r}.", "Start one with POST /v1/push.")
    pending_user = user_rows.find(store.conn, request["user"])
    if request["state"] == "approved" and pending_user and pending_user["state"] == "pending":
        with store.write() as conn:  # read again under the write lock
            row = user_rows.find(conn, request["user"])
            if row is not None and row["state"] == "pending" and row["method"] == "push":
                user_rows.activate(conn, row["id"], now_iso())
                audit_chain.record(
                    conn, actor.label, "auth.push", row["name"], "ok", {"request": request["id"]}
                )
    return request
