"""The second-factor policy and its defaults, in one place (settings `totp.window` and
`lockout.max_failures`; `eset2fa.ops.settings` declares them with these defaults)."""

from __future__ import annotations

from typing import NamedTuple

DEFAULT_WINDOW = 1  # accepted clock drift, in 30 s steps either side (SPEC §2)
MAX_WINDOW = 10  # ±5 min: every verification computes 2 x window + 1 codes
DEFAULT_MAX_FAILURES = 10  # wrong codes in a row that lock an account (SPEC S5)


class Policy(NamedTuple):
    window: int
    max_failures: int


# Parsed policies by their stored texts: every verification reads the two settings with the
# user's row, and they almost never change.
_parsed: dict[tuple[str | None, str | None], Policy] = {}


def from_stored(window: str | None, max_failures: str | None) -> Policy:
    """The policy from the stored setting texts (None: not set, the default applies)."""
    policy = _parsed.get((window, max_failures))
    if policy is None:
        policy = Policy(
            DEFAULT_WINDOW if window is None else int(window),
            DEFAULT_MAX_FAILURES if max_failures is None else int(max_failures),
        )
        if len(_parsed) < 64:  # settings texts are few; never let the cache grow without bound
            _parsed[(window, max_failures)] = policy
    return policy
