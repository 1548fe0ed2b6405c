"""Phone numbers in one form: E.164 (`+420601123456`), the form SMS gateways expect."""

from __future__ import annotations

from .errors import UsageError

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
