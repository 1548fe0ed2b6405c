"""The `token_resets` table: at most one pending token reset per user, its code only hashed."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable


def delete_for_users(conn: sqlite3.Connection, user_ids: Iterable[int]) -> None:
    conn.executemany(
        "DELETE FROM token_resets WHERE user_id = ?", ((user_id,) for user_id in user_ids)
    )
