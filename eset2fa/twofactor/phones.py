"""Phone numbers in one form: E.164 (`+420601123456`), the form SMS gateways expect.

A user's number is stored once and never changed (SPEC S8): only disabling 2FA clears it.
"""

from __future__ import annotations

import sqlite3

from eset2fa.db import users as user_rows
from eset2fa.errors import StateConflict, UsageError
from eset2fa.ops import audit_chain

_HINT = "Give the number in international form, e.g. +420601123456 (country code first)."


def normalize_phone(text: str, default_region: str | None = None) -> str:
    """`text` as an E.164 number; a national number needs `default_region` (e.g. "CZ")."""
    import phonenumbers

    cleaned = (text or "").strip()
    if not cleaned or len(cleaned) > 40:
        raise UsageError(f"{cleaned[:40]!r} is not a phone number.", _HINT)
    try:
        number = phonenumbers.parse(cleaned, default_region)
    except phonenumbers.NumberParseException:
        raise UsageError(f"{cleaned!r} is not a phone number.", _HINT) from None
    if not phonenumbers.is_valid_number(number):
        raise UsageError(f"{cleaned!r} is not a valid phone number.", _HINT)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def immutable_error(name: str) -> StateConflict:
    return StateConflict(
        f"{name} already has a phone number; it cannot be changed.",
        f"Only disabling 2FA clears it: eset2fa user disable {name} (then enable again).",
    )


def store_phone(conn: sqlite3.Connection, actor: str, row: sqlite3.Row, phone: str) -> None:
    """Record a user's phone number once (inside the caller's write transaction)."""
    if not user_rows.set_phone_if_none(conn, row["id"], phone):
        raise immutable_error(row["name"])
    audit_chain.record(conn, actor, "user.phone", row["name"], "ok")
