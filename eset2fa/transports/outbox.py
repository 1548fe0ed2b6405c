"""The embedded transport: messages are kept in the `outbox` table instead of being sent.

It needs no network, so a new store works out of the box; the admin reads what was "sent" with
`eset2fa outbox`, and tests assert on it. A push sent to the outbox is approved with
`eset2fa push approve ID` (there is no phone to press the button).

SMS bodies can carry secrets (the enrollment link holds the TOTP secret, a reset SMS its code), so
they are stored encrypted with the master key, bound to their channel and recipient; the `body`
column then holds only a placeholder. `eset2fa outbox` shows them decrypted.
"""

from __future__ import annotations

import json
import sqlite3
import time

from eset2fa.clock import now_iso
from eset2fa.transports.base import Delivery, PushTransport, SmsTransport

SEALED_PLACEHOLDER = "(encrypted)"


def sealed_context(channel: str, recipient: str) -> str:
    return f"outbox:{channel}:{recipient}"


def _store_message(
    conn: sqlite3.Connection,
    channel: str,
    recipient: str,
    user: str | None,
    body: str,
    data: dict | None = None,
    *,
    seal_with=None,
) -> int:
    """Keep a message; with `seal_with` (a MasterKey) its body is stored encrypted."""
    sealed = None
    if seal_with is not None:
        sealed = seal_with.seal(body.encode(), sealed_context(channel, recipient))
        body = SEALED_PLACEHOLDER
    own_transaction = not conn.in_transaction
    if own_transaction:
        conn.execute("BEGIN IMMEDIATE")
    try:
        cursor = conn.execute(
            "INSERT INTO outbox (at, channel, recipient, user_name, body, data, sealed)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                now_iso(),
                channel,
                recipient,
                user,
                body,
                json.dumps(data) if data else None,
                sealed,
            ),
        )
    except BaseException:
        if own_transaction:
            conn.execute("ROLLBACK")
        raise
    if own_transaction:
        conn.execute("COMMIT")
    return cursor.lastrowid


class OutboxSms(SmsTransport):
    name = "outbox"

    def send_sms(self, phone: str, text: str, *, user: str | None = None) -> Delivery:
        from eset2fa.secrets.keys import load_key

        master = load_key(self.store.conn, self.store.path, create=True)
        row_id = _store_message(self.store.conn, "sms", phone, user, text, seal_with=master)
        return Delivery(self.name, phone, reference=str(row_id))


class OutboxPush(PushTransport):
    name = "outbox"
    poll_seconds = 0.5

    def send_push(self, request: dict) -> Delivery:
        # A push carries the request ID and the user's name, never the approval token.
        body = f"Login request {request['id']} for {request['user']}: Approve or Reject"
        data = {"request_id": request["id"], "expires_at": request.get("expires_at")}
        row_id = _store_message(
            self.store.conn, "push", request["user"], request["user"], body, data
        )
        return Delivery(self.name, request["user"], reference=str(row_id))

    def wait_for_reply(self, request: dict, deadline: float) -> str | None:
        # Approval arrives through the database (`eset2fa push approve`), not through this channel:
        # the caller re-reads the request's state, so here we only pace the polling.
        time.sleep(max(0.0, min(self.poll_seconds, deadline - time.time())))
        return None


def list_messages(
    conn: sqlite3.Connection,
    *,
    user: str | None = None,
    channel: str | None = None,
    limit: int | None = 100,
    db_path=None,
    visible=None,
) -> list[dict]:
    """The newest messages, oldest first, sealed bodies decrypted (a missing key: exit 9).

    `visible(user_name) -> bool`, if given, drops the other messages before anything is decrypted.
    """
    clauses, params = [], []
    if user:
        clauses.append("user_name = ? COLLATE NOCASE")
        params.append(user)
    if channel:
        clauses.append("channel = ?")
        params.append(channel)
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    sql = f"SELECT id, at, channel, recipient, user_name, body, data, sealed FROM outbox {where}"
    sql += " ORDER BY id DESC"
    if limit:
        sql += f" LIMIT {int(limit)}"
    rows = []
    master = None
    for row in reversed(conn.execute(sql, params).fetchall()):
        if visible is not None and not visible(row["user_name"]):
            continue
        item = dict(row)
        sealed = item.pop("sealed")
        if sealed is not None:
            if master is None:
                from eset2fa.secrets.keys import load_key

                master = load_key(conn, db_path)
            context = sealed_context(item["channel"], item["recipient"])
            item["body"] = master.open(sealed, context).decode()
        item["user"] = item.pop("user_name")
        item["data"] = json.loads(item["data"]) if item["data"] else {}
        rows.append(item)
    return rows
