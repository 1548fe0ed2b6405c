"""Versioned schema migrations: named functions, applied in order, recorded in the database.

The applied count is mirrored in `PRAGMA user_version` (it lives in the file header), so opening an
up-to-date store costs one header read; the names and times are in `schema_migrations`.
Append new migrations at the end of `MIGRATIONS`; never edit or reorder one that has shipped.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

Migration = tuple[str, Callable[[sqlite3.Connection], None]]


def _run(conn: sqlite3.Connection, script: str) -> None:
    # executescript() would COMMIT the surrounding transaction; run statements one by one instead,
    # cutting the script where SQLite itself sees a complete statement (comments may hold ';').
    statement = ""
    for line in script.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            conn.execute(statement)
            statement = ""
    if statement.strip():
        conn.execute(statement)


def m0001_initial(conn: sqlite3.Connection) -> None:
    _run(
        conn,
        """
        CREATE TABLE schema_migrations (
            name TEXT PRIMARY KEY,
            applied_at TEXT NOT NULL
        );
        CREATE TABLE meta (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL
        );
        CREATE TABLE users (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL COLLATE NOCASE UNIQUE,
            group_name TEXT COLLATE NOCASE,
            password_hash TEXT,
            builtin INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL,
            -- two-factor state, filled by enrollment
            method TEXT CHECK (method IN ('totp', 'push')),
            state TEXT NOT NULL DEFAULT 'disabled'
                CHECK (state IN ('disabled', 'pending', 'active')),
            secret BLOB,            -- AES-256-GCM ciphertext bound to the user, never plain
            phone TEXT,             -- E.164; set once, cleared only by disabling 2FA
            fail_count INTEGER NOT NULL DEFAULT 0,
            locked INTEGER NOT NULL DEFAULT 0,
            locked_at TEXT,
            last_step INTEGER,      -- last accepted TOTP time step (replay protection)
            enabled_at TEXT,
            activated_at TEXT
        );
        CREATE INDEX users_group ON users (group_name);
        CREATE INDEX users_state ON users (state);
        CREATE TABLE grants (
            id INTEGER PRIMARY KEY,
            actor_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
            target_user_id INTEGER REFERENCES users (id) ON DELETE CASCADE,
            target_group TEXT COLLATE NOCASE,
            created_at TEXT NOT NULL,
            CHECK ((target_user_id IS NULL) <> (target_group IS NULL))
        );
        CREATE UNIQUE INDEX grants_user ON grants (actor_id, target_user_id)
            WHERE target_user_id IS NOT NULL;
        CREATE UNIQUE INDEX grants_group ON grants (actor_id, target_group)
            WHERE target_group IS NOT NULL;
        CREATE TABLE audit (
            id INTEGER PRIMARY KEY,
            at TEXT NOT NULL,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            target TEXT,
            result TEXT NOT NULL,
            details TEXT,           -- JSON, never a secret
            prev_hash TEXT NOT NULL,
            hash TEXT NOT NULL      -- sha256 over prev_hash and this row: edits break the chain
        );
        CREATE INDEX audit_target ON audit (target COLLATE NOCASE);
        CREATE INDEX audit_at ON audit (at)
        """,
    )


def m0002_config_and_outbox(conn: sqlite3.Connection) -> None:
    _run(
        conn,
        """
        CREATE TABLE config (
            key TEXT PRIMARY KEY,
            value TEXT,             -- plain settings
            secret BLOB,            -- credentials: AES-256-GCM with the master key
            updated_at TEXT NOT NULL
        );
        CREATE TABLE outbox (
            id INTEGER PRIMARY KEY,
            at TEXT NOT NULL,
            channel TEXT NOT NULL CHECK (channel IN ('sms', 'push')),
            recipient TEXT NOT NULL,
            user_name TEXT,
            body TEXT NOT NULL,
            data TEXT               -- JSON: push actions, request id
        );
        CREATE INDEX outbox_user ON outbox (user_name COLLATE NOCASE)
        """,
    )


def m0003_push_requests(conn: sqlite3.Connection) -> None:
    _run(
        conn,
        """
        CREATE TABLE push_requests (
            id TEXT PRIMARY KEY,    -- short human ID shown at login and in the push, "K7Q-4M2"
            user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
            created_at TEXT NOT NULL,
            expires_at TEXT NOT NULL,
            state TEXT NOT NULL DEFAULT 'pending'
                CHECK (state IN ('pending', 'approved', 'rejected', 'expired')),
            nonce_hash TEXT NOT NULL,   -- sha256 of the approval token's nonce, never the token
            transport TEXT NOT NULL,
            requested_by TEXT NOT NULL,
            decided_at TEXT,
            decided_by TEXT            -- "token", an admin's label, or why it expired
        );
        CREATE INDEX push_requests_user ON push_requests (user_id, created_at);
        CREATE INDEX push_requests_state ON push_requests (state)
        """,
    )


def m0004_recovery(conn: sqlite3.Connection) -> None:
    _run(
        conn,
        """
        CREATE TABLE token_resets (
            -- at most one pending token reset per user; a new request replaces it
            user_id INTEGER PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
            code_hash TEXT NOT NULL,    -- HMAC-SHA256(salt, code) in hex, never the code
            salt BLOB NOT NULL,
            phone TEXT NOT NULL,        -- the stored number the code was sent to
            created_at TEXT NOT NULL,
            expires_at TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            requested_by TEXT NOT NULL,
            backup TEXT NOT NULL        -- the backup taken before the request
        );
        CREATE TABLE recovery_codes (
            id INTEGER PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
            code_hash TEXT NOT NULL,    -- HMAC-SHA256(salt, code) in hex, never the code
            salt BLOB NOT NULL,         -- one salt per user's batch
            created_at TEXT NOT NULL,
            used_at TEXT
        );
        CREATE INDEX recovery_codes_user ON recovery_codes (user_id)
        """,
    )


def m0005_outbox_sealed(conn: sqlite3.Connection) -> None:
    # SMS bodies can carry secrets (the enrollment link holds the TOTP secret, a reset SMS its
    # code): they are kept encrypted with the master key, `body` then holds only a placeholder.
    _run(conn, "ALTER TABLE outbox ADD COLUMN sealed BLOB")


def m0006_audit_indexes(conn: sqlite3.Connection) -> None:
    # Every authentication attempt appends an audit row inside its durable commit; each secondary
    # index adds a B-tree page to that commit. Neither index earned its cost: `audit list --user`
    # matches target OR actor, which SQLite cannot answer from a target-only index (it scanned the
    # table anyway), and a full scan of 1,000,000 rows for `--since` takes ~0.2 s (README).
    _run(
        conn,
        """
        DROP INDEX IF EXISTS audit_target;
        DROP INDEX IF EXISTS audit_at
        """,
    )


def m0007_password_failures(conn: sqlite3.Connection) -> None:
    # Wrong passwords (--as, auth login) are counted apart from wrong one-time passwords: each
    # count is reset only by a success of its own factor, so a correct password never resets the
    # OTP count (a password holder would get unlimited code guesses) and a correct code never
    # resets the password count. Either count reaching its limit sets the one `locked` flag.
    _run(conn, "ALTER TABLE users ADD COLUMN password_failures INTEGER NOT NULL DEFAULT 0")


def m0008_keyed_hashes(conn: sqlite3.Connection) -> None:
    # From this version `audit.hash` is an HMAC under a subkey of the store's key, and each
    # `code_hash` is HMAC(codes subkey, HMAC(salt, code)) (eset2fa.secrets.integrity). No column
    # changes: the rows are re-keyed the first time the key is loaded, because a migration runs
    # without the key. The version bump is the point: an older eset2fa now refuses this store
    # (newer schema) instead of appending unkeyed audit rows or code hashes that would no longer
    # verify, or misreading a key file that holds key ids.
    del conn


def m0009_totp_parameters(conn: sqlite3.Connection) -> None:
    # Per-user TOTP parameters for secrets imported from other tools (SHA256/SHA512, 8 digits,
    # periods other than 30 s). NULL means the default (SHA1, 6, 30): existing rows and every
    # secret eset2fa generates itself keep NULLs, so nothing is rewritten and the verification of
    # a default user takes the same path as before.
    _run(
        conn,
        """
        ALTER TABLE users ADD COLUMN totp_algorithm TEXT
            CHECK (totp_algorithm IN ('SHA1', 'SHA256', 'SHA512'));
        ALTER TABLE users ADD COLUMN totp_digits INTEGER CHECK (totp_digits IN (6, 8));
        ALTER TABLE users ADD COLUMN totp_period INTEGER CHECK (totp_period > 0)
        """,
    )


def _unhex(text):
    """A hash stored as hex digits, as bytes; anything else (not a hex text) as it was, so that
    `audit verify` still reports a row that was tampered with."""
    if isinstance(text, str):
        try:
            return bytes.fromhex(text)
        except ValueError:
            pass
    return text


def m0010_audit_hashes_as_bytes(conn: sqlite3.Connection) -> None:
    # The chain's links (`prev_hash`, `hash`) were 64 hex digits; as 32 bytes each row is 64
    # bytes smaller (about 700 MB on a log of 11,000,000 rows, which every backup copies and
    # checks). The columns keep their declared type, which SQLite does not impose on a BLOB, so
    # the schema (what restore compares) is unchanged. What a row's MAC covers is unchanged too
    # (the previous hash in hex): the chain verifies across the conversion. One pass over the
    # table, in the migration's transaction.
    conn.create_function("eset2fa_unhex", 1, _unhex, deterministic=True)
    try:
        conn.execute(
            "UPDATE audit SET prev_hash = eset2fa_unhex(prev_hash), hash = eset2fa_unhex(hash)"
            " WHERE typeof(hash) = 'text' OR typeof(prev_hash) = 'text'"
        )
    finally:
        conn.create_function("eset2fa_unhex", 1, None)


def m0011_api_keys(conn: sqlite3.Connection) -> None:
    # Keys of the applications that call the server's verification API (`eset2fa apikey`). The
    # key is `e2fa_<key_id>_<secret>`: `key_id` is public and finds the row, the secret (256
    # random bits) is kept only as its SHA-256. A revoked key's row is deleted (the audit log
    # keeps its history), so its name can be given to a new key.
    _run(
        conn,
        """
        CREATE TABLE api_keys (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE COLLATE NOCASE,
            key_id TEXT NOT NULL UNIQUE,
            secret_hash TEXT NOT NULL,  -- hex SHA-256 of the secret part, never the key
            created_at TEXT NOT NULL,
            created_by TEXT NOT NULL,
            last_used_at TEXT           -- at most a minute late: written once a minute per key
        )
        """,
    )


def m0012_enroll_links_and_push_numbers(conn: sqlite3.Connection) -> None:
    # One-time enrollment links (`<public-url>/e/<token>`) sent by SMS instead of the secret: one
    # per user, a new link replaces the previous one; the token is `selector` + a verifier that is
    # stored only as its keyed hash (eset2fa.secrets.code_hash). And number matching for push
    # answers: the two-digit number shown at login, the three numbers the answer page offers (in a
    # fixed order, so reloading the page cannot tell the right one from the decoys), and whether
    # the push linked to that page (then the bare approval token no longer approves).
    _run(
        conn,
        """
        CREATE TABLE enroll_links (
            user_id INTEGER PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
            selector TEXT NOT NULL UNIQUE,  -- the token's first part, to find the row
            code_hash TEXT NOT NULL,        -- keyed hash of the verifier, never the token
            salt BLOB NOT NULL,
            created_at TEXT NOT NULL,
            expires_at TEXT NOT NULL,
            created_by TEXT NOT NULL
        );
        ALTER TABLE push_requests ADD COLUMN number INTEGER;
        ALTER TABLE push_requests ADD COLUMN choices TEXT;
        ALTER TABLE push_requests ADD COLUMN needs_number INTEGER NOT NULL DEFAULT 0
        """,
    )


MIGRATIONS: list[Migration] = [
    ("0001_initial", m0001_initial),
    ("0002_config_and_outbox", m0002_config_and_outbox),
    ("0003_push_requests", m0003_push_requests),
    ("0004_recovery", m0004_recovery),
    ("0005_outbox_sealed", m0005_outbox_sealed),
    ("0006_audit_indexes", m0006_audit_indexes),
    ("0007_password_failures", m0007_password_failures),
    ("0008_keyed_hashes", m0008_keyed_hashes),
    ("0009_totp_parameters", m0009_totp_parameters),
    ("0010_audit_hashes_as_bytes", m0010_audit_hashes_as_bytes),
    ("0011_api_keys", m0011_api_keys),
    ("0012_enroll_links_and_push_numbers", m0012_enroll_links_and_push_numbers),
]

LATEST_VERSION = len(MIGRATIONS)
