"""The one error hierarchy: each failure the core raises carries a message, hint and exit code.

Errors are rendered in exactly one place (`cli.Eset2faGroup`), as one line plus a hint, or as
`{"error": {...}}` with `--json`. Messages never contain secrets: callers pass names, not values.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Exit codes documented in the README (SPEC §3)."""

    OK = 0
    CHECK_FAILED = 1  # a --require check failed, an OTP was rejected
    USAGE = 2
    NOT_FOUND = 3
    LOCKED = 4
    PERMISSION_DENIED = 5
    STATE_CONFLICT = 6  # already enabled, phone immutable, pending, already exists
    DELIVERY_FAILED = 7
    PUSH_DENIED = 8  # push denied or expired
    STORAGE = 9  # corrupt database, newer schema, wrong or missing key
    INTERRUPTED = 130


class Eset2faError(Exception):
    """Base of every error the core raises on purpose."""

    exit_code: ExitCode = ExitCode.CHECK_FAILED
    code: str = "error"  # stable machine-readable name, used in --json output

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __reduce__(self):
        # Pickled whole, hint included (an import's parsing process sends its errors back).
        return type(self), (self.message, self.hint)

    def to_dict(self) -> dict[str, object]:
        return {
            "code": self.code,
            "exit_code": int(self.exit_code),
            "message": self.message,
            "hint": self.hint,
        }


class CheckFailed(Eset2faError):
    exit_code = ExitCode.CHECK_FAILED
    code = "check_failed"


class UsageError(Eset2faError):
    exit_code = ExitCode.USAGE
    code = "usage"


class NotFound(Eset2faError):
    exit_code = ExitCode.NOT_FOUND
    code = "not_found"


class Locked(Eset2faError):
    exit_code = ExitCode.LOCKED
    code = "locked"


class PermissionDenied(Eset2faError):
    exit_code = ExitCode.PERMISSION_DENIED
    code = "permission_denied"


class StateConflict(Eset2faError):
    exit_code = ExitCode.STATE_CONFLICT
    code = "state_conflict"


class DeliveryFailed(Eset2faError):
    exit_code = ExitCode.DELIVERY_FAILED
    code = "delivery_failed"
    status: int | None = None  # the gateway's HTTP status, when it answered


class PushDenied(Eset2faError):
    exit_code = ExitCode.PUSH_DENIED
    code = "push_denied"


class StorageError(Eset2faError):
    exit_code = ExitCode.STORAGE
    code = "storage"


class EncryptionKeyError(StorageError):
    """The encryption key is missing or wrong (exit code 9, like any storage failure)."""

    code = "key"


class PushRateLimited(PushDenied):
    """Too many push requests for one user in the rate window (push fatigue): denied, exit 8."""

    code = "push_rate_limited"
