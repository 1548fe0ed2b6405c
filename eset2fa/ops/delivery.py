"""Delivering SMS and pushes: the core side of the transports.

Transports (`eset2fa.transports`) know nothing about the store. This module gives them what they
need from it: a `TransportSettings` reader for their settings and credentials, and a `record`
callable that keeps a message in the `outbox` table (the embedded transport's way of "sending").
`sms_transport(store)` / `push_transport(store)` build the configured transport;
`list_messages(store)` reads the kept messages back for `eset2fa outbox`.

Heavy libraries (requests in the network transports, cryptography and keyring behind the master
key) are imported only when a message is actually sent, kept or read.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from eset2fa.clock import now_iso
from eset2fa.db import messages as message_rows
from eset2fa.db.connection import joined_write
from eset2fa.ops import settings

if TYPE_CHECKING:
    from eset2fa.db import Store
    from eset2fa.transports.base import PushTransport, Record, SmsTransport

SEALED_PLACEHOLDER = "(encrypted)"  # the `body` column of a message whose text is sealed


def sealed_context(channel: str, recipient: str) -> str:
    """What binds a sealed outbox body to its row (`db rekey` re-seals with the same context)."""
    return f"outbox:{channel}:{recipient}"


class TransportSettings:
    """A store's settings as a transport reads them (a `transports.base.SettingsReader`).

    Every call reads the store afresh, as the transports did when they held the store.
    """

    __slots__ = ("_store",)

    def __init__(self, store: Store) -> None:
        self._store = store

    def get(self, key: str) -> Any:
        return settings.get(self._store.conn, key)

    def prefixed(self, prefix: str) -> dict[str, str]:
        return settings.get_prefixed(self._store.conn, prefix)

    def secret(self, key: str) -> str | None:
        return settings.get_secret(self._store, key)


def recorder(store: Store) -> Record:
    """The `record` callable for the outbox transports: keeps one message in `store`."""

    def record(
        channel: str,
        recipient: str,
        user: str | None,
        body: str,
        data: dict | None,
        *,
        sealed: bool = False,
    ) -> int:
        blob = None
        if sealed:
            from eset2fa.secrets.keys import load_key

            master = load_key(store.conn, store.path, create=True)
            blob = master.seal(body.encode(), sealed_context(channel, recipient))
            body = SEALED_PLACEHOLDER
        # The caller may be inside its own write transaction (the message then commits with it).
        with joined_write(store.conn) as conn:
            return message_rows.insert(
                conn,
                now_iso(),
                channel,
                recipient,
                user,
                body,
                json.dumps(data) if data else None,
                blob,
            )

    return record


def _pick(store: Store, kind: str):
    from eset2fa.transports.registry import transport_class

    reader = TransportSettings(store)
    transport = transport_class(kind, reader.get(f"{kind}.transport"))
    return transport(reader, recorder(store))


def sms_transport(store: Store) -> SmsTransport:
    """The transport `sms.transport` names, ready to send; UsageError for an unknown name."""
    return _pick(store, "sms")


def push_transport(store: Store) -> PushTransport:
    """The transport `push.transport` names, ready to send; UsageError for an unknown name."""
    return _pick(store, "push")


def list_messages(
    store: Store,
    *,
    user: str | None = None,
    channel: str | None = None,
    limit: int | None = 100,
    visible: Callable[[str | None], bool] | None = None,
) -> list[dict]:
    """The newest messages, oldest first, sealed bodies decrypted (a missing key: exit 9).

    `visible(user_name) -> bool`, if given, drops the other messages before anything is decrypted.
    """
    rows = []
    master = None
    for row in reversed(message_rows.newest(store.conn, user=user, channel=channel, limit=limit)):
        if visible is not None and not visible(row["user_name"]):
            continue
        item = dict(row)
        sealed = item.pop("sealed")
        if sealed is not None:
            if master is None:
                from eset2fa.secrets.keys import load_key

                master = load_key(store.conn, store.path)
            context = sealed_context(item["channel"], item["recipient"])
            item["body"] = master.open(sealed, context).decode()
        item["user"] = item.pop("user_name")
        item["data"] = json.loads(item["data"]) if item["data"] else {}
        rows.append(item)
    return rows
