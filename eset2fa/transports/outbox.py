"""The embedded transport: messages are kept in the `outbox` table instead of being sent.

It needs no network, so a new store works out of the box; the admin reads what was "sent" with
`eset2fa outbox`, and tests assert on it. A push sent to the outbox is approved with
`eset2fa push approve ID` (there is no phone to press the button).
"""

from __future__ import annotations

import json
import sqlite3
import time

from ..clock import now_iso
from .base import Delivery, PushTransport, SmsTransport


def _store_message(
    conn: sqlite3.Connection,
    channel: str,
    recipient: str,
    user: str | None,
    body: str,
    data: dict | None = None,
) -> int:
    own_transaction = not conn.in_transaction
    if own_transaction:
        conn.execute("BEGIN IMMEDIATE")
    try:
        cursor = conn.execute(
            "INSERT INTO outbox (at, channel, recipient, user_name, body, data)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (now_iso(), channel, recipient, user, body, json.dumps(data) if data else None),
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
        row_id = _store_message(self.store.conn, "sms", phone, user, text)
        return Delivery(self.name, phone, reference=str(row_id))


class OutboxPush(PushTransport):
    name = "outbox"
    poll_seconds = 0.5

    def send_push(self, request: dict) -> Delivery:
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
) -> list[dict]:
    clauses, params = [], []
    if user:
        clauses.append("user_name = ? COLLATE NOCASE")
        params.append(user)
    if channel:
        clauses.append("channel = ?")
        params.append(channel)
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    sql = f"SELECT id, at, channel, recipient, user_name, body, data FROM outbox {where}"
    sql += " ORDER BY id DESC"
    if limit:
        sql += f" LIMIT {int(limit)}"
    rows = []
    for row in reversed(conn.execute(sql, params).fetchall()):
        item = dict(row)
        item["user"] = item.pop("user_name")
        item["data"] = json.loads(item["data"]) if item["data"] else {}
        rows.append(item)
    return rows
