"""The embedded transport: messages are kept in the `outbox` table instead of being sent.

It needs no network, so a new store works out of the box; the admin reads what was "sent" with
`eset2fa outbox`, and tests assert on it. A push sent to the outbox is approved with
`eset2fa push approve ID` (there is no phone to press the button).

The transport only says what to keep: the `record` callable it is given (built by
`eset2fa.ops.delivery`) writes the row. SMS bodies can carry secrets (the enrollment link holds the
TOTP secret, a reset SMS its code), so they are recorded with `sealed=True`: stored encrypted with
the master key, bound to their channel and recipient, the `body` column then holding only a
placeholder. `eset2fa outbox` shows them decrypted.
"""

from __future__ import annotations

import time

from eset2fa.transports.base import Delivery, PushTransport, SmsTransport


class OutboxSms(SmsTransport):
    name = "outbox"

    def send_sms(
        self, phone: str, text: str, *, user: str | None = None, ttl: int | None = None
    ) -> Delivery:
        # Nothing queues in the outbox: the admin reads it now, and a code's own expiry still
        # applies, so the lifetime is not kept.
        row_id = self.record("sms", phone, user, text, None, sealed=True)
        return Delivery(self.name, phone, reference=str(row_id))


class OutboxPush(PushTransport):
    name = "outbox"
    poll_seconds = 0.5

    def send_push(self, request: dict) -> Delivery:
        # A push carries the request ID and the user's name. Without a public URL never the
        # approval token; with one, the link to the answer page (which holds the token), so the
        # body is then kept encrypted like an SMS with a code.
        body = f"Login request {request['id']} for {request['user']}: Approve or Reject"
        link = request.get("link")
        if link:
            body = f"Login request {request['id']} for {request['user']}: answer at {link}"
        data = {"request_id": request["id"], "expires_at": request.get("expires_at")}
        row_id = self.record(
            "push", request["user"], request["user"], body, data, sealed=bool(link)
        )
        return Delivery(self.name, request["user"], reference=str(row_id))

    def wait_for_reply(self, request: dict, deadline: float) -> str | None:
        # Approval arrives through the database (`eset2fa push approve`), not through this channel:
        # the caller re-reads the request's state, so here we only pace the polling.
        time.sleep(max(0.0, min(self.poll_seconds, deadline - time.time())))
        return None
