"""The second-factor policy and its defaults, in one place (settings `totp.window`,
`lockout.max_failures`, `lockout.max_password_failures` and `lockout.password_delay_seconds`;
`eset2fa.ops.settings` declares them with these defaults)."""

from __future__ import annotations

from typing import NamedTuple

DEFAULT_WINDOW = 1  # accepted clock drift, in 30 s steps either side (SPEC §2)
MAX_WINDOW = 10  # ±5 min: every verification computes 2 x window + 1 codes
DEFAULT_MAX_FAILURES = 10  # wrong codes in a row that lock an account (SPEC S5)
DEFAULT_MAX_PASSWORD_FAILURES = 10  # wrong passwords in a row (--as, auth login) that lock it
# The wait before the answer that follows one wrong password; it doubles with each further one
# up to the cap (lockout.password_delay). The cap is part of the rule, not a setting: an answer
# never waits longer, whatever the base is set to.
DEFAULT_PASSWORD_DELAY_SECONDS = 0.25
PASSWORD_DELAY_CAP_SECONDS = 2.0


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
