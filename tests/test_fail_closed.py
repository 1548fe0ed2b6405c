"""Reads never create a store: a missing path or an empty file is exit 9 and nothing is made.

Only `init` creates a store at a path given with --db or ESET2FA_DB; on the default path, the first
command that changes users or settings creates it (the README's quick start). Before this, a read
at a mistyped path created a new store, printed a new Administrator password and answered
"unknown user" (exit 3): an integration could read that as "this user has no 2FA" (fail-open).
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat

import pytest
from typer.testing import CliRunner

from eset2fa.cli import app
from eset2fa.db import open_store
from eset2fa.errors import StorageError

pytestmark = pytest.mark.usefixtures("env_master_key")

# Every command that needs an existing store: reads, authentication, and the changes that only
# make sense on a store that exists (push decisions, key rotation, backups, a test SMS).
READS = [
    ("auth", "verify", "alice", "123456"),
    ("auth", "verify", "alice", "--recovery-code", "7KQ2M-XW9RD"),
    ("auth", "login", "alice", "--password-stdin"),
    ("auth", "push", "alice", "--timeout", "1"),
    ("user", "status", "alice"),
    ("user", "status", "Administrator", "--require", "disabled"),
    ("user", "show", "alice"),
    ("user", "list"),
    ("user", "check-install", "alice"),
    ("user", "recovery-codes", "alice"),
    ("audit", "list"),
    ("audit", "verify"),
    ("db", "check"),
    ("db", "backups"),
    ("db", "migrate"),
    ("db", "backup"),
    ("db", "rekey", "--yes"),
    ("push", "send", "alice", "--timeout", "1"),
    ("push", "list"),
    ("push", "show", "K7Q-4M2"),
    ("push", "approve", "K7Q-4M2"),
    ("push", "reject", "K7Q-4M2"),
    ("outbox",),
    ("config", "show"),
    ("qr", "alice"),
    ("sms", "test", "+442079460001"),
]
# Commands that change users or settings: they create the store at first use on the default path
# only, never at a --db / ESET2FA_DB path.
CHANGES = [
    ("user", "add", "alice"),
    ("user", "enable", "alice", "--no-qr"),
    ("user", "enable", "Administrator", "--method", "totp", "--qr"),  # the quick start
    ("user", "disable", "alice", "--yes"),
    ("user", "unlock", "alice"),
    ("user", "delete", "alice", "--yes"),
    ("user", "grant", "alice", "--write", "bob"),
    ("user", "revoke", "alice", "--write", "bob"),
    ("user", "reset-password", "Administrator", "--password-stdin"),
    ("user", "reset-token", "alice"),
    ("user", "recover", "alice", "--lost-phone", "--yes"),
    ("user", "recovery-codes", "alice", "--regenerate"),
    ("config", "set", "lockout.max_failures", "5"),
    ("config", "set-secret", "sms.password"),
    ("config", "unset", "lockout.max_failures"),
]
STDIN = "a-password-of-some-length\n"


def ids(commands):
    return [" ".join(c) for c in commands]


def run(*args: str, env: dict | None = None):
    result = CliRunner().invoke(app, list(args), input=STDIN, env=env)
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def files_under(folder) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def assert_no_store_error(result, path) -> None:
    assert result.exit_code == 9, (result.exit_code, result.stdout, result.stderr)
    assert result.stderr.startswith(f"Error: No eset2fa database at {path}")
    assert "Administrator password" not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


def test_the_reproducer_auth_verify_at_a_mistyped_path_is_exit_9_not_unknown_user(
    tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)  # the CLI runs in-process: typo.db is tmp_path/typo.db
    before = files_under(tmp_path)
    result = run("--db", "typo.db", "auth", "verify", "alice", "123456")
    assert_no_store_error(result, "typo.db")
    assert "init" in result.stderr  # the hint says how to create one
    assert files_under(tmp_path) == before  # no file, no -wal, no key file


@pytest.mark.parametrize("args", READS + CHANGES, ids=ids(READS + CHANGES))
def test_a_missing_db_path_is_exit_9_and_nothing_is_created(tmp_path, args):
    target = tmp_path / "not-there" / "eset2fa.db"
    result = run("--db", str(target), *args)
    assert_no_store_error(result, target)
    assert files_under(tmp_path) == []  # no file, no directory, no key file


@pytest.mark.parametrize("args", READS + CHANGES, ids=ids(READS + CHANGES))
def test_an_empty_file_is_exit_9_and_stays_empty(tmp_path, args):
    target = tmp_path / "empty.db"
    target.touch(mode=0o644)
    target.chmod(0o644)
    result = run("--db", str(target), *args)
    assert_no_store_error(result, target)
    assert "(the file is empty)" in result.stderr
    assert target.stat().st_size == 0 and stat.S_IMODE(target.stat().st_mode) == 0o644
    assert files_under(tmp_path) == ["empty.db"]


@pytest.mark.parametrize("args", READS, ids=ids(READS))
def test_reads_on_the_default_path_never_create_it(tmp_path, args):
    result = run(*args)  # no --db: the data directory (ESET2FA_HOME, set by conftest)
    assert_no_store_error(result, tmp_path / "home" / "eset2fa.db")
    assert not (tmp_path / "home").exists()  # not even the directory


def test_an_eset2fa_db_path_that_does_not_exist_is_never_created(tmp_path):
    target = tmp_path / "from-env.db"
    for args in (("user", "list"), ("user", "add", "alice")):
        result = run(*args, env={"ESET2FA_DB": str(target)})
        assert_no_store_error(result, target)
    assert not target.exists()


def test_json_mode_gets_the_error_document(tmp_path):
    target = tmp_path / "typo.db"
    result = run("--db", str(target), "--json", "auth", "verify", "alice", "123456")
    assert result.exit_code == 9
    error = json.loads(result.stdout)["error"]
    assert (error["code"], error["exit_code"]) == ("storage", 9)
    assert error["message"] == f"No eset2fa database at {target}."
    assert not target.exists()


def test_as_against_no_store_is_exit_9(tmp_path):
    target = tmp_path / "typo.db"
    result = run(
        "--db", str(target), "--as", "Administrator", "--as-password-stdin", "user", "list"
    )
    assert_no_store_error(result, target)
    assert not target.exists()


def test_an_sqlite_file_without_our_schema_is_not_a_store_for_reads(tmp_path):
    target = tmp_path / "blank.db"
    conn = sqlite3.connect(target)
    conn.execute("VACUUM")  # a valid, empty SQLite database: header, no tables
    conn.close()
    before = target.read_bytes()
    assert before  # not 0 bytes: SQLite wrote its header
    result = run("--db", str(target), "auth", "verify", "alice", "123456")
    assert_no_store_error(result, target)
    assert "without eset2fa's schema" in result.stderr
    assert target.read_bytes() == before


def test_the_python_api_opens_without_creating(tmp_path):
    target = tmp_path / "sub" / "typo.db"
    with pytest.raises(StorageError, match="No eset2fa database at"):
        open_store(target, create=False)
    assert not (tmp_path / "sub").exists()


def test_first_use_on_the_default_path_creates_the_store_for_a_change(tmp_path):
    """The README quick start: `user enable Administrator` on a fresh machine, then a read."""
    home = tmp_path / "home"
    enabled = run("user", "enable", "Administrator", "--method", "totp", "--no-qr")
    assert enabled.exit_code == 0, enabled.stderr
    assert "Administrator password (shown once" in enabled.stderr
    assert stat.S_IMODE((home / "eset2fa.db").stat().st_mode) == 0o600
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    status = run("user", "status", "Administrator", "--json")
    assert status.exit_code == 0 and json.loads(status.stdout)["state"] == "pending"
    assert "Administrator password" not in status.stderr


def test_init_in_an_existing_empty_file_makes_it_private(tmp_path):
    target = tmp_path / "made-by-mktemp.db"
    target.touch()
    target.chmod(0o644)
    result = run("--db", str(target), "init", "--password-stdin")
    assert result.exit_code == 0, result.stderr
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert run("--db", str(target), "user", "list").exit_code == 0


def test_directories_made_for_the_store_are_0700_whatever_the_umask(tmp_path):
    target = tmp_path / "a" / "b" / "c" / "eset2fa.db"
    previous = os.umask(0)
    try:
        result = run("--db", str(target), "init", "--password-stdin")
        first_use = run("user", "add", "alice")  # the default path: ESET2FA_HOME/eset2fa.db
    finally:
        os.umask(previous)
    assert result.exit_code == 0, result.stderr
    assert first_use.exit_code == 0, first_use.stderr
    for folder in (tmp_path / "a", tmp_path / "a" / "b", tmp_path / "a" / "b" / "c"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    for made in (target, tmp_path / "home" / "eset2fa.db"):
        assert stat.S_IMODE(made.stat().st_mode) == 0o600, made
    assert stat.S_IMODE((tmp_path / "home").stat().st_mode) == 0o700


def test_an_existing_directory_keeps_its_mode(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o755)
    result = run("--db", str(shared / "eset2fa.db"), "init", "--password-stdin")
    assert result.exit_code == 0, result.stderr
    assert stat.S_IMODE(shared.stat().st_mode) == 0o755


def test_an_empty_file_on_the_default_path_becomes_the_store_at_first_change(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "eset2fa.db").touch()
    (home / "eset2fa.db").chmod(0o644)
    assert_no_store_error(run("user", "list"), home / "eset2fa.db")  # a read: still nothing
    assert (home / "eset2fa.db").stat().st_size == 0
    added = run("user", "add", "alice")
    assert added.exit_code == 0, added.stderr
    assert "Administrator password (shown once" in added.stderr
    assert stat.S_IMODE((home / "eset2fa.db").stat().st_mode) == 0o600


@pytest.mark.parametrize("empty", [False, True], ids=["missing", "empty"])
def test_doctor_reports_no_store_as_its_failed_database_check(tmp_path, empty):
    target = tmp_path / "typo.db"
    if empty:
        target.touch()
    result = run("--db", str(target), "doctor", "--json")
    assert result.exit_code == 1
    (database,) = [c for c in json.loads(result.stdout)["checks"] if c["check"] == "database"]
    assert database["status"] == "failed"
    assert database["detail"].startswith(f"No eset2fa database at {target}")
    assert files_under(tmp_path) == (["typo.db"] if empty else [])
