"""The transport interface: what a transport is given, and what it reports after sending.

A transport is handed two things by the core (`eset2fa.ops.delivery` builds both from the store):
a `SettingsReader` for its settings and credentials, and a `Record` callable that keeps a message
(the embedded outbox transport uses it; network transports ignore it). Transports therefore know
nothing about the store: they import nothing from `eset2fa.db` and run no SQL. Which class a
`sms.transport` / `push.transport` name selects is decided in `eset2fa.transports.registry`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class Delivery:
    """What a transport reports after handing a message over."""

    transport: str  # registry name, e.g. "outbox"
    recipient: str  # phone number or topic; never a credential
    reference: str | None = None  # the gateway's message id, the outbox row id
    details: dict[str, Any] = field(default_factory=dict)


class SettingsReader(Protocol):
    """Read access to the settings a transport is configured with (`eset2fa config`)."""

    def get(self, key: str) -> Any:
        """The setting's typed value (int, float, str, ...), or its declared default."""

    def prefixed(self, prefix: str) -> dict[str, str]:
        """The stored values of a key family, e.g. `sms.params.` -> {"To": "{phone}"}."""

    def secret(self, key: str) -> str | None:
        """A credential in clear text (from `<key>_env` or decrypted), or None when unset."""


class Record(Protocol):
    """Keeps one message in the store instead of sending it; returns the message's id."""

    def __call__(
        self,
        channel: str,
        recipient: str,
        user: str | None,
        body: str,
        data: dict | None,
        *,
        sealed: bool = False,
    ) -> int:
        """`sealed=True` stores `body` encrypted (it may carry a code or an enrollment link)."""


class SmsTransport:
    """Sends one text message to one E.164 phone number."""

    name: str = ""  # the value of `sms.transport` that selects this class

    def __init__(self, settings: SettingsReader, record: Record) -> None:
        self.settings = settings  # settings and credentials, read when a message is sent
        self.record = record  # keeps a message in the store (the outbox transport's delivery)

    def send_sms(
        self, phone: str, text: str, *, user: str | None = None, ttl: int | None = None
    ) -> Delivery:
        """Deliver `text` to `phone`; raise DeliveryFailed (exit 7) when the gateway refuses.

        `ttl` is the message's lifetime in seconds (a reset code's `reset.code_ttl_seconds`): a
        gateway that queues messages is told to drop it unsent after that long, so a code never
        arrives once it has expired. None means the message has no lifetime of its own; network
        transports then use `sms.ttl_seconds` (0: the gateway's own default).
        """
        raise NotImplementedError


class PushTransport:
    """Sends a push request to a user's device and waits for the approval to come back."""

    name: str = ""  # the value of `push.transport` that selects this class

    def __init__(self, settings: SettingsReader, record: Record) -> None:
        self.settings = settings  # settings and credentials, read when a push is sent or polled
        self.record = record  # keeps a message in the store (the outbox transport's delivery)

    def send_push(self, request: dict) -> Delivery:
        """Publish the request (id, user, expiry, approve token) to the user's device."""
        raise NotImplementedError

    def wait_for_reply(self, request: dict, deadline: float) -> str | None:
        """Block until an approval token for `request` arrives or `deadline` (unix time) passes.

        Returns the token as received (the caller checks it), or None at the deadline.
        """
        raise NotImplementedError
