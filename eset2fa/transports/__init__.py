"""Delivery of SMS and push messages. `sms_transport(store)` / `push_transport(store)` pick the
configured transport from the registry; unknown names are a clear error."""

from eset2fa.transports.base import (
    Delivery,
    PushTransport,
    SmsTransport,
    push_transport,
    sms_transport,
)

__all__ = ["Delivery", "PushTransport", "SmsTransport", "push_transport", "sms_transport"]
