"""The words of the second factor: a user's 2FA state and method, used by the core and the CLI."""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    """A user's two-factor state: `pending` until the first accepted code or approved push."""

    disabled = "disabled"
    pending = "pending"
    active = "active"


class Method(StrEnum):
    totp = "totp"  # an authenticator app (RFC 6238)
    push = "push"  # approve a push request on the phone


class Requirement(StrEnum):
    """What `user status --require` can ask of a user (`console_users.meets`)."""

    active = "active"
    pending = "pending"
    disabled = "disabled"
    enabled = "enabled"  # pending or active
    locked = "locked"
    unlocked = "unlocked"
