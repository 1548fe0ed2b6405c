"""Sending an SMS on purpose: `eset2fa sms test` checks the gateway configuration end to end."""

from __future__ import annotations

from eset2fa.accounts.actors import Actor
from eset2fa.db import Store
from eset2fa.errors import DeliveryFailed, PermissionDenied
from eset2fa.ops import audit_chain
from eset2fa.twofactor.phones import normalize_phone

DEFAULT_TEST_TEXT = "eset2fa test message: your SMS gateway works."


def send_test_sms(
    store: Store, actor: Actor, phone: str, text: str | None = None, region: str | None = None
) -> dict:
    """Send one SMS through the configured transport; audit `sms.test` either way."""
    from eset2fa.ops.delivery import sms_transport

    if not actor.is_admin:
        raise PermissionDenied(
            "Only an administrator may send test SMS.", "Run it as the local operator."
        )
    number = normalize_phone(phone, region)
    transport = sms_transport(store)
    try:
        delivery = transport.send_sms(number, text or DEFAULT_TEST_TEXT)
    except DeliveryFailed as error:
        with store.write() as conn:
            audit_chain.record(
                conn,
                actor.label,
                "sms.test",
                number,
                "failed",
                {"transport": transport.name, "error": error.message},
            )
        raise
    with store.write() as conn:
        audit_chain.record(
            conn,
            actor.label,
            "sms.test",
            number,
            "ok",
            {"transport": transport.name, "reference": delivery.reference},
        )
    return {
        "transport": delivery.transport,
        "recipient": delivery.recipient,
        "reference": delivery.reference,
        "details": delivery.details,
    }
