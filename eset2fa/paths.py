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
    """Create a directory, and any missing parents, readable by their owner only (0700).

    mkdir's mode is filtered through the umask (under `umask 000` a plain mkdir gives 0777) and
    pathlib creates missing parents with 0777 minus the umask: each directory created here is
    set to 0700 after it is made. Directories that already exist are left as they are.
    """
    path = Path(path)
    missing = []
    while not path.exists():
        missing.append(path)
        if path.parent == path:
            break
        path = path.parent
    for directory in reversed(missing):  # the outermost first
        try:
            os.mkdir(directory, 0o700)
        except FileExistsError:
            if directory.is_dir():
                continue  # another process made it meanwhile: theirs, not ours to chmod
            raise
        os.chmod(directory, 0o700)
