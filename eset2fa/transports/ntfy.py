"""Push through a self-hosted ntfy server (`push.transport = ntfy`).

Publishing: a JSON message (POST to the server's root URL, Bearer `ntfy.publish_token`) on the
user's request topic `ntfy.topic_prefix` + user name (characters other than letters, digits and
`-` are written as `_xx` hex, so every user gets a distinct valid topic). Its title and message
carry the request ID shown at login. Two action buttons:

- "Approve": an ntfy `http` action that POSTs the single-use approval token to
  `{server}/{ntfy.reply_topic}`, with `Authorization: Bearer <ntfy.reply_token>` when set (a
  write-only token for the reply topic: it travels to every phone);
- with `server.public_url` set (number matching), "Answer" instead: a `view` action opening
  `<public-url>/p/<id>?t=<token>`, also the notification's `click` URL; the page asks for the
  number shown at login (`eset2fa.twofactor.push_approval`);
- "Reject": a `broadcast` action, which stays on the phone (an Android intent) and only clears the
  notification: as the source says, rejecting sends no feedback, so nothing reaches the server and
  the request simply expires.

Waiting: no inbound server. `wait_for_reply` polls `GET {server}/{reply_topic}/json?poll=1&since=`
(first the request's creation time, then the last message ID seen) with `ntfy.poll_token` (or the
publish token) every `ntfy.poll_interval` seconds and hands back the body of a message that names
the request; `eset2fa.twofactor.push_approval` verifies it.
"""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime
from urllib.parse import quote

from eset2fa.errors import DeliveryFailed
from eset2fa.transports.base import Delivery, PushTransport, Record, SettingsReader

WHAT = "ntfy server"
_TOPIC_SAFE = re.compile(r"[A-Za-z0-9-]")


def user_topic(prefix: str, user: str) -> str:
    escaped = "".join(c if _TOPIC_SAFE.fullmatch(c) else f"_{ord(c):02x}" for c in user)
    return f"{prefix}{escaped}"


class NtfyPush(PushTransport):
    name = "ntfy"

    def __init__(self, settings: SettingsReader, record: Record) -> None:
        super().__init__(settings, record)
        self._session = None
        self._since: dict[str, str] = {}  # request id -> `since` for the next poll
        self._queued: dict[str, list[str]] = {}  # replies seen but not yet handed back

    # -- settings -----------------------------------------------------------------------------
    def _server(self) -> str:
        server = self.settings.get("ntfy.server")
        if not server:
            raise DeliveryFailed(
                "The ntfy server is not configured: ntfy.server is not set.",
                "Set it: eset2fa config set ntfy.server https://ntfy.example.org",
            )
        return server.rstrip("/")

    def _secrets(self) -> dict[str, str | None]:
        return {
            key: self.settings.secret(f"ntfy.{key}")
            for key in ("publish_token", "reply_token", "poll_token")
        }

    def _http(self):
        if self._session is None:
            from eset2fa.transports.http import make_session

            self._session = make_session(self.settings)
        return self._session

    # -- publishing ---------------------------------------------------------------------------
    def message_for(self, request: dict) -> dict:
        """The JSON ntfy publishes for `request` (the Approve action carries its token)."""
        server = self._server()
        tokens = self._secrets()
        reply_topic = self.settings.get("ntfy.reply_topic")
        approve = {
            "action": "http",
            "label": "Approve",
            "url": f"{server}/{quote(reply_topic)}",
            "method": "POST",
            "body": request["token"],
            "clear": True,
        }
        if tokens["reply_token"]:
            approve["headers"] = {"Authorization": f"Bearer {tokens['reply_token']}"}
        link = request.get("link")
        if link:
            # Number matching: the answer page is the only way to approve (a one-tap Approve
            # would skip the number, and the core refuses the bare token for such a request).
            approve = {"action": "view", "label": "Answer", "url": link, "clear": True}
        reject = {
            "action": "broadcast",
            "label": "Reject",
            "clear": True,
            "extras": {"request": request["id"], "decision": "reject"},
        }
        topic = user_topic(self.settings.get("ntfy.topic_prefix"), request["user"])
        if topic == reply_topic:
            raise DeliveryFailed(
                f"User {request['user']}'s request topic would be the reply topic {reply_topic}.",
                "Give ntfy.reply_topic a name outside ntfy.topic_prefix (default eset2fa_reply).",
            )
        message = {
            "topic": topic,
            "title": f"Login request {request['id']}",
            "message": (
                f"{request['user']}: approve only if request ID {request['id']} is on your"
                f" login screen. Expires {request['expires_at']}."
            ),
            "priority": 5,
            "tags": ["lock"],
            "actions": [approve, reject],
        }
        if link:
            message["click"] = link  # tapping the notification opens the answer page
        return message

    def send_push(self, request: dict) -> Delivery:
        from eset2fa.transports.http import call

        message = self.message_for(request)
        tokens = self._secrets()
        headers = {"Content-Type": "application/json"}
        if tokens["publish_token"]:
            headers["Authorization"] = f"Bearer {tokens['publish_token']}"
        response = call(
            self._http(),
            "POST",
            self._server() + "/",
            what=WHAT,
            secrets=[*tokens.values(), request["token"]],
            expect=range(200, 300),
            data=json.dumps(message),
            headers=headers,
        )
        try:
            reference = response.json().get("id")
        except (ValueError, AttributeError):
            reference = None
        return Delivery(self.name, message["topic"], reference=reference)

    # -- waiting ------------------------------------------------------------------------------
    def wait_for_reply(self, request: dict, deadline: float) -> str | None:
        queued = self._queued.setdefault(request["id"], [])
        if queued:
            return queued.pop(0)
        interval = self.settings.get("ntfy.poll_interval")
        time.sleep(max(0.0, min(interval, deadline - time.time())))
        if time.time() >= deadline:
            return None
        queued.extend(self._poll(request))
        return queued.pop(0) if queued else None

    def _poll(self, request: dict) -> list[str]:
        from eset2fa.transports.http import call

        tokens = self._secrets()
        reader = tokens["poll_token"] or tokens["publish_token"]
        reply_topic = self.settings.get("ntfy.reply_topic")
        since = self._since.get(request["id"]) or str(_unix(request["created_at"]) - 1)
        headers = {"Authorization": f"Bearer {reader}"} if reader else {}
        try:
            response = call(
                self._http(),
                "GET",
                f"{self._server()}/{quote(reply_topic)}/json",
                what=WHAT,
                secrets=tokens.values(),
                expect=(200,),
                params={"poll": "1", "since": since},
                headers=headers,
            )
        except DeliveryFailed as error:
            if 400 <= (error.status or 0) < 500:
                raise  # credentials or topic wrong: waiting longer cannot help
            return []  # a network hiccup: the next poll tries again until the deadline
        replies = []
        prefix = request["id"] + "."
        for line in response.text.splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if not isinstance(event, dict):
                continue
            if event.get("id"):
                self._since[request["id"]] = str(event["id"])
            body = event.get("message")
            if event.get("event") == "message" and isinstance(body, str):
                if body.strip().startswith(prefix):
                    replies.append(body.strip())
        return replies


def _unix(iso: str) -> int:
    return int(datetime.strptime(iso, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp())
