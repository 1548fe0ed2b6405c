"""Phone numbers: parsed and normalised to E.164 with `phonenumbers`, stored once (SPEC S8)."""

from __future__ import annotations

import sqlite3

from . import audit
from .errors import StateConflict, UsageError

_HINT = "Give the number in international form, e.g. +421 900 123 456 or +44 20 7946 0000."


def normalise(text: str) -> str:
    """E.164 form (`+421212345678`) of a valid number written in international form."""
    import phonenumbers

    try:
        number = phonenumbers.parse(text.strip(), None)
    except phonenumbers.NumberParseException:
        raise UsageError(f"{text!r} is not a phone number.", _HINT) from None
    if not phonenumbers.is_valid_number(number):
        raise UsageError(f"{text!r} is not a valid phone number.", _HINT)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def immutable_error(name: str) -> StateConflict:
    return StateConflict(
        f"{name} already has a phone number; it cannot be changed.",
        f"Only disabling 2FA clears it: eset2fa user disable {name} (then enable again).",
    )


def store_phone(conn: sqlite3.Connection, actor: str, row: sqlite3.Row, phone: str) -> None:
    """Record a user's phone number once (inside the caller's write transaction)."""
    cursor = conn.execute(
        "UPDATE users SET phone = ? WHERE id = ? AND phone IS NULL", (phone, row["id"])
    )
    if cursor.rowcount != 1:
        raise immutable_error(row["name"])
    audit.record(conn, actor, "user.phone", row["name"], "ok")
