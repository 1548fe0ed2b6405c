"""Who is acting: the local operator (full rights) or a console user authenticated with `--as`."""

from __future__ import annotations

import os
from typing import NamedTuple

ADMINISTRATOR = "Administrator"


# NamedTuple, not a dataclass: this module is imported by `user status`, and creating a
# dataclass (exec of generated code) costs ~0.8 ms per class at start-up.
class Actor(NamedTuple):
    label: str  # what the audit log records: "local:<os user>" or the console user's name
    user_id: int | None = None  # None for the local operator
    is_admin: bool = False  # full rights: the local operator and the Administrator account

    @property
    def is_local(self) -> bool:
        return self.user_id is None


def local_operator() -> Actor:
    """The person at this machine's shell, trusted like any local admin tool (README: trust)."""
    import getpass  # not at import time: most commands never need the operator's name

    try:
        who = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers): fall back to the numeric uid
        who = f"uid{os.getuid()}" if hasattr(os, "getuid") else "unknown"
    return Actor(label=f"local:{who}", user_id=None, is_admin=True)
