"""Where the store is: a file path (SQLite, the default) or a PostgreSQL URL.

`--db` and `ESET2FA_DB` are parsed here once; the rest of eset2fa passes the result around without
looking inside. A PostgreSQL location prints as its redacted URL (never the password) and carries
the schema that holds eset2fa's tables (`eset2fa` unless the URL says `?schema=NAME`).

Imported at every start-up: nothing heavy here (psycopg is imported only when connecting).
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from eset2fa.errors import StorageError

DEFAULT_SCHEMA = "eset2fa"
_SCHEMES = ("postgresql://", "postgres://")
_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


class PgLocation:
    """A PostgreSQL store: the URL libpq gets (`dsn`), the schema, and a printable form.

    `str()` is the URL without its password, so it can go into any message, the audit log or a
    manifest. The password itself may also come from PGPASSWORD or ~/.pgpass (libpq reads them).
    """

    __slots__ = ("dsn", "schema", "redacted", "_password")

    def __init__(self, url: str) -> None:
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - raises ValueError on a malformed port
        except ValueError:
            raise StorageError(
                "The PostgreSQL URL given with --db or ESET2FA_DB is malformed.",
                "Write it as postgresql://USER[:PASSWORD]@HOST[:PORT]/DBNAME.",
            ) from None
        query = parse_qsl(parts.query, keep_blank_values=True)
        schema = DEFAULT_SCHEMA
        rest = []
        for name, value in query:
            if name == "schema":
                schema = value
            else:
                rest.append((name, value))
        if not _SCHEMA_NAME.fullmatch(schema):
            raise StorageError(
                f"The schema name {schema!r} in the PostgreSQL URL is not allowed.",
                "Use lower-case letters, digits and _ (default: eset2fa).",
            )
        self.schema = schema
        self._password = unquote(parts.password) if parts.password else None
        self.dsn = urlunsplit(parts._replace(query=urlencode(rest)))
        host = parts.hostname or ""
        if parts.port:
            host += f":{parts.port}"
        user = f"{quote(unquote(parts.username))}@" if parts.username else ""
        shown = urlunsplit(parts._replace(netloc=user + host, query=urlencode(rest)))
        if schema != DEFAULT_SCHEMA:
            shown += ("&" if rest else "?") + f"schema={schema}"
        self.redacted = shown

    def __str__(self) -> str:
        return self.redacted

    def __repr__(self) -> str:
        return f"PgLocation({self.redacted!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PgLocation) and (self.dsn, self.schema) == (
            other.dsn,
            other.schema,
        )

    def __hash__(self) -> int:
        return hash((self.dsn, self.schema))

    def scrub(self, text: str) -> str:
        """`text` with the URL and the password replaced by the redacted URL (for messages)."""
        text = text.replace(self.dsn, self.redacted)
        if self._password:
            text = text.replace(self._password, "***")
        return text

    @property
    def name(self) -> str:
        """A file-name-safe label for this store (backup file names)."""
        parts = urlsplit(self.dsn)
        db = parts.path.lstrip("/") or parts.username or "postgres"
        label = f"pg-{parts.hostname or 'local'}-{db}-{self.schema}"
        return re.sub(r"[^A-Za-z0-9._-]", "_", label)


def absolute(where):
    """A file path made absolute (for manifests, audit rows and output); a URL as it is."""
    import os

    return where if isinstance(where, PgLocation) else Path(os.path.abspath(where))


def is_file(where) -> bool:
    """Whether the store is a file (SQLite) rather than a server's schema."""
    return not isinstance(where, PgLocation)


def backup_folder(where) -> Path:
    """Where backups go by default: `backups/` beside a database file; for a PostgreSQL store,
    `backups/` in eset2fa's data directory on this machine (ESET2FA_HOME)."""
    if isinstance(where, PgLocation):
        from eset2fa.paths import data_dir

        return data_dir() / "backups"
    return absolute(where).parent / "backups"


def backup_stem(where) -> str:
    """The start of this store's backup file names."""
    return where.name if isinstance(where, PgLocation) else Path(where).stem


def is_postgres(text: str) -> bool:
    return text.startswith(_SCHEMES)


def parse(text: str) -> Path | PgLocation:
    """`--db` / `ESET2FA_DB`: a PostgreSQL URL, else a file path (`~` expanded)."""
    if is_postgres(text):
        return PgLocation(text)
    return Path(text).expanduser()
