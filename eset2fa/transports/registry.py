"""Which class a transport name selects: the values `sms.transport` and `push.transport` accept.

The registry imports the concrete transports; they import only `eset2fa.transports.base`, so there
is no import circle. To add a transport, subclass SmsTransport or PushTransport in a module of its
own, list it here, and add its name to the setting's choices in `eset2fa.ops.settings`.
"""

from __future__ import annotations

from eset2fa.errors import UsageError
from eset2fa.transports.base import PushTransport, SmsTransport
from eset2fa.transports.local_outbox import OutboxPush, OutboxSms
from eset2fa.transports.ntfy import NtfyPush
from eset2fa.transports.sms_http import HttpSms

REGISTRY: dict[str, dict[str, type[SmsTransport] | type[PushTransport]]] = {
    "sms": {"outbox": OutboxSms, "http": HttpSms},
    "push": {"outbox": OutboxPush, "ntfy": NtfyPush},
}


def transport_class(kind: str, name: str) -> type[SmsTransport] | type[PushTransport]:
    """The class registered as `name` for `kind` ("sms" or "push"); UsageError when unknown."""
    registry = REGISTRY[kind]
    if name not in registry:
        raise UsageError(
            f"Unknown {kind} transport {name!r}.",
            f"Choose one of {', '.join(sorted(registry))} with "
            f"`eset2fa config set {kind}.transport NAME`.",
        )
    return registry[name]
