"""The store: created on first use (0600), refused untouched when it is not ours or too new."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import stat

import pytest

from eset2fa.db.connection import APPLICATION_ID
from eset2fa.db.migrations import LATEST_VERSION, MIGRATIONS


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _default_path_cli(*args: str):
    """The CLI without --db: the store in the data directory (ESET2FA_HOME, set by conftest)."""
    from typer.testing import CliRunner

    from eset2fa.cli import app

    return CliRunner().invoke(app, list(args))


def test_first_use_creates_store_with_administrator(tmp_path):
    # First use: a command that changes something, on the default path (no --db, no ESET2FA_DB).
    db_path = tmp_path / "home" / "eset2fa.db"
    result = _default_path_cli("config", "set", "totp.issuer", "Example")
    assert result.exit_code == 0, result.stderr
    assert "Administrator password (shown once" in result.stderr
    status = _default_path_cli("user", "status", "Administrator", "--json")
    assert status.exit_code == 0, status.stderr
    assert json.loads(status.stdout)["state"] == "disabled"
    assert stat.S_IMODE(db_path.stat().st_mode) == 0o600
    conn = sqlite3.connect(db_path)
    rows = conn.execute("SELECT name, builtin, password_hash FROM users").fetchall()
    assert [(r[0], r[1]) for r in rows] == [("Administrator", 1)]
    assert rows[0][2].startswith("$argon2id$")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    assert conn.execute("PRAGMA user_version").fetchone()[0] == LATEST_VERSION
    conn.close()


def test_default_location_is_the_data_dir(cli, tmp_path):
    result = _default_path_cli("config", "set", "lockout.max_failures", "7", "--json")
    assert result.exit_code == 0, result.stderr
    created = tmp_path / "home" / "eset2fa.db"
    assert result.stdout and created.exists()
    assert stat.S_IMODE((tmp_path / "home").stat().st_mode) == 0o700


def test_init_with_password_from_stdin(cli, db_path, sql):
    result = cli("init", "--password-stdin", "--json", input="correct horse battery\n")
    assert result.exit_code == 0, result.stderr
    assert result.json() == {
        "db": str(db_path),
        "administrator": "Administrator",
        "password_generated": False,
    }
    assert "shown once" not in result.stderr
    from argon2 import PasswordHasher

    stored = sql("SELECT password_hash FROM users WHERE name = 'Administrator'")[0][0]
    assert PasswordHasher().verify(stored, "correct horse battery")


def test_init_generates_password_without_terminal(cli):
    result = cli("init")
    assert result.exit_code == 0
    assert "Administrator password (shown once" in result.stderr


def test_init_on_existing_store_is_a_conflict_and_changes_nothing(cli, store):
    before = digest(store)
    result = cli("init", "--password-stdin", input="another password\n")
    assert result.exit_code == 6
    assert "already exists" in result.stderr
    assert digest(store) == before


def test_init_rejects_short_password(cli, db_path):
    result = cli("init", "--password-stdin", input="short\n")
    assert result.exit_code == 2
    assert not db_path.exists()


@pytest.mark.parametrize(
    "content",
    [
        b"this is a plain text file, not a database\n" * 100,
        b"SQLite format 3\x00" + b"\xff" * 200,
    ],
    ids=["text", "bad-header"],
)
def test_not_a_database_is_refused_unchanged(cli, db_path, content):
    db_path.write_bytes(content)
    before = digest(db_path)
    for args in (["user", "list"], ["user", "add", "alice"], ["db", "check"], ["init"]):
        result = cli(*args, "--json")
        assert result.exit_code in (6, 9), (args, result.stdout)
        assert "Traceback" not in result.stderr
    result = cli("user", "list", "--json")
    assert result.exit_code == 9
    assert result.json()["error"]["code"] == "storage"
    assert digest(db_path) == before


def test_foreign_sqlite_database_is_refused_unchanged(cli, db_path):
    conn = sqlite3.connect(db_path)
    conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")
    conn.execute("INSERT INTO invoices (total) VALUES (9.5)")
    conn.commit()
    conn.close()
    before = digest(db_path)
    result = cli("user", "add", "alice")
    assert result.exit_code == 9
    assert "another application" in result.stderr
    assert digest(db_path) == before


def test_newer_schema_is_refused_unchanged(cli, store):
    conn = sqlite3.connect(store)
    conn.execute(f"PRAGMA user_version = {LATEST_VERSION + 1}")
    conn.commit()
    conn.close()
    before = digest(store)
    result = cli("user", "add", "alice")
    assert result.exit_code == 9
    assert "schema version" in result.stderr and "Upgrade eset2fa" in result.stderr
    assert digest(store) == before


def test_truncated_database_is_a_storage_error(cli, store):
    cli("user", "add", "--from-file", "-", input="".join(f"u{i}\n" for i in range(3000)))
    conn = sqlite3.connect(store)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    data = store.read_bytes()
    store.write_bytes(data[: len(data) // 3])
    result = cli("user", "list", "--json")
    assert result.exit_code == 9
    assert "Traceback" not in result.stderr


def test_migrations_are_recorded_and_older_stores_upgrade(cli, db_path, sql):
    # An older store: only the first migration applied.
    from eset2fa.db.connection import _connect

    conn = _connect(db_path)
    conn.execute("BEGIN")
    MIGRATIONS[0][1](conn)
    conn.execute(
        "INSERT INTO schema_migrations VALUES (?, '2026-01-01T00:00:00Z')", (MIGRATIONS[0][0],)
    )
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    conn.execute("PRAGMA user_version = 1")
    conn.execute("COMMIT")
    conn.close()
    result = cli("db", "migrate", "--json")
    assert result.exit_code == 0, result.stderr
    doc = result.json()
    assert doc["schema_version"] == LATEST_VERSION
    assert [m["name"] for m in doc["migrations"]] == [name for name, _ in MIGRATIONS]
    assert [r[0] for r in sql("SELECT name FROM schema_migrations ORDER BY name")] == [
        name for name, _ in MIGRATIONS
    ]


def test_db_check_reports_integrity_and_counts(cli, store):
    cli("user", "add", "alice")
    result = cli("db", "check", "--json")
    assert result.exit_code == 0
    report = result.json()
    assert report["ok"] is True and report["integrity"] == "ok"
    assert report["users"] == 2
    assert report["file_mode"] == "0600"
    assert report["schema_version"] == LATEST_VERSION


def test_a_database_path_that_cannot_be_created_is_exit_9_not_a_traceback(cli, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    result = cli("init", db=blocker / "sub" / "store.db")
    assert result.exit_code == 9, result.stderr
    assert "Cannot create the database" in result.stderr and "Traceback" not in result.stderr
    assert blocker.read_text() == "not a directory"


def test_an_unexpected_file_error_is_exit_9_not_a_traceback(cli, store):
    (store.parent / "backups").write_text("a file where the backups folder goes")
    result = cli("db", "backup", "--json")
    assert result.exit_code == 9, result.stderr
    assert result.json()["error"]["code"] == "storage"
    assert "Traceback" not in result.stderr


def test_a_path_that_looks_like_markup_does_not_hide_the_first_use_password(
    cli, tmp_path, monkeypatch
):
    monkeypatch.setenv("ESET2FA_HOME", str(tmp_path / "odd[/]dir"))
    db = tmp_path / "odd[/]dir" / "eset2fa.db"
    created = _default_path_cli("user", "add", "alice")  # first use, on the default path
    assert created.exit_code == 0, created.stderr
    assert "Administrator password (shown once" in created.stderr
    assert "[bold]" not in created.stderr
    assert str(db) in created.stderr.replace("\n", "")
    assert cli("db", "backup", db=db).exit_code == 0
    listed = cli("db", "backups", db=db)
    assert listed.exit_code == 0, listed.stderr
    assert "[/]" in listed.stdout


def _without_root_override() -> list[str]:
    """A prefix that makes file permissions apply (root ignores them), or skips the test."""
    import os
    import shutil

    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: file permissions cannot be tested")
    return ["setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner"]


def test_a_read_only_database_is_exit_9_with_a_permissions_hint(cli, store):
    import os
    import subprocess
    import sys

    store.chmod(0o400)
    try:
        command = [*_without_root_override(), sys.executable, "-m", "eset2fa", "--db", str(store)]
        result = subprocess.run(
            [*command, "user", "add", "bob"],
            capture_output=True,
            text=True,
            env=os.environ,
            timeout=60,
        )
    finally:
        store.chmod(0o600)
    assert result.returncode == 9, result.stderr
    assert "Check that you may write the database file" in result.stderr
    assert "Traceback" not in result.stderr
