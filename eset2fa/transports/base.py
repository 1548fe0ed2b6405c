"""The transport interface and registry."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from eset2fa.errors import UsageError

if TYPE_CHECKING:
    from eset2fa.db import Store


@dataclass(frozen=True)
class Delivery:
    """What a transport reports after handing a message over."""

    transport: str  # registry name, e.g. "outbox"
    recipient: str  # phone number or topic; never a credential
    reference: str | None = None  # the gateway's message id, the outbox row id
    details: dict[str, Any] = field(default_factory=dict)


class SmsTransport:
    """Sends one text message to one E.164 phone number."""

    name: str = ""  # the value of `sms.transport` that selects this class

    def __init__(self, store: Store) -> None:
        self.store = store  # settings and credentials are read from the store

    def send_sms(self, phone: str, text: str, *, user: str | None = None) -> Delivery:
        """Deliver `text` to `phone`; raise DeliveryFailed (exit 7) when the gateway refuses."""
        raise NotImplementedError


class PushTransport:
    """Sends a push request to a user's device and waits for the approval to come back."""

    name: str = ""  # the value of `push.transport` that selects this class

    def __init__(self, store: Store) -> None:
        self.store = store

    def send_push(self, request: dict) -> Delivery:
        """Publish the request (id, user, expiry, approve token) to the user's device."""
        raise NotImplementedError

    def wait_for_reply(self, request: dict, deadline: float) -> str | None:
        """Block until an approval token for `request` arrives or `deadline` (unix time) passes.

        Returns the token as received (the caller checks it), or None at the deadline.
        """
        raise NotImplementedError


def _registry(kind: str) -> dict[str, type]:
    from eset2fa.transports import ntfy, outbox, sms_http

    registries: dict[str, dict[str, type]] = {
        "sms": {"outbox": outbox.OutboxSms, "http": sms_http.HttpSms},
        "push": {"outbox": outbox.OutboxPush, "ntfy": ntfy.NtfyPush},
    }
    return registries[kind]


def _pick(store: Store, kind: str):
    from eset2fa.ops import config

    name = config.get(store.conn, f"{kind}.transport")
    registry = _registry(kind)
    if name not in registry:
        raise UsageError(
            f"Unknown {kind} transport {name!r}.",
            f"Choose one of {', '.join(sorted(registry))} with "
            f"`eset2fa config set {kind}.transport NAME`.",
        )
    return registry[name](store)


def sms_transport(store: Store) -> SmsTransport:
    return _pick(store, "sms")


def push_transport(store: Store) -> PushTransport:
    return _pick(store, "push")
