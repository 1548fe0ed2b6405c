"""What an exception that escaped a command means to the person or script that ran it.

Errors the core raises on purpose are Eset2faErrors already. A few others reach the face from
below and are turned into one of them here, so that they are rendered like every other error (one
line with a hint, or the JSON error document) with a documented exit code, never as a traceback.
Shared by the typer app (cli.py) and the direct entry (commands/entry.py).
"""

from __future__ import annotations

import errno
import sqlite3

from eset2fa.errors import Eset2faError, StorageError, UsageError

INTERRUPTED = "\nInterrupted."  # Ctrl-C: this on stderr, exit 130 (a write in progress rolled back)


def as_error(exc: BaseException) -> Eset2faError | None:
    """The error to render for `exc`, or None for what must go on (EPIPE, anything unforeseen:
    a bug shows its traceback)."""
    if isinstance(exc, Eset2faError):
        return exc
    if isinstance(exc, sqlite3.DatabaseError):
        # "database disk image is malformed", "file is not a database", a lock held too long...
        if "readonly" in str(exc) or "unable to open" in str(exc):
            hint = "Check that you may write the database file and its directory."
        else:
            hint = "Run `eset2fa db check`; if it is corrupt, restore with `eset2fa db restore`."
        return StorageError(f"The database could not be read or written ({exc}).", hint)
    if isinstance(exc, UnicodeError):
        # Bytes that are not UTF-8 in an argument or a file reach Python as lone surrogates and
        # fail where text meets SQLite or a file; the value itself is not echoed.
        return UsageError(
            "Some input is not valid UTF-8 text.",
            "Names, codes and values must be UTF-8: check the arguments and any file or "
            "standard input given.",
        )
    if isinstance(exc, OSError) and exc.errno != errno.EPIPE:
        # A file the command had to create, read or replace (a missing or read-only directory, a
        # path through a regular file): one line and exit 9. Only the path and the system's
        # reason are shown, never the data being written.
        where = f" on {exc.filename}" if exc.filename else ""
        return StorageError(
            f"A file operation failed{where}: {exc.strerror or type(exc).__name__}.",
            "Check that the directory exists and that you may write there.",
        )
    return None
