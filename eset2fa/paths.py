"""Where eset2fa keeps its files: one function decides, so every command agrees."""

from __future__ import annotations

import os
from pathlib import Path

APP_NAME = "eset2fa"
DB_FILENAME = "eset2fa.db"


def data_dir() -> Path:
    """The data directory: `ESET2FA_HOME` if set, else the platform's user data dir."""
    override = os.environ.get("ESET2FA_HOME")
    if override:
        return Path(override).expanduser()
    import platformdirs  # only when no explicit path was given

    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def default_db_path() -> Path:
    """`ESET2FA_DB` if set, else `eset2fa.db` in the data directory."""
    env = os.environ.get("ESET2FA_DB")
    if env:
        return Path(env).expanduser()
    return data_dir() / DB_FILENAME


def ensure_private_dir(path: Path) -> None:
    """Create a directory readable by its owner only (existing directories are left as they are)."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
