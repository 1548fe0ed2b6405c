"""Delivery of SMS and push messages. The core picks the configured transport with
`eset2fa.ops.delivery.sms_transport(store)` / `push_transport(store)`; the names it accepts are in
`eset2fa.transports.registry`, and unknown names are a clear error."""

from eset2fa.transports.base import Delivery, PushTransport, Record, SettingsReader, SmsTransport

__all__ = ["Delivery", "PushTransport", "Record", "SettingsReader", "SmsTransport"]
