"""Backups of a PostgreSQL store (issue 10): a consistent snapshot of the eset2fa schema written as
a verified SQLite backup file with its manifest, listed by `db backups`, restored by `db restore`
into the same store with the hardening checks; recovery steps take one first."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from totp_helpers import enroll, totp_now

pytestmark = [
    pytest.mark.backends("postgresql"),
    pytest.mark.usefixtures("env_master_key", "store"),
]


def backups(cli) -> list[dict]:
    run = cli("db", "backups", "--json")
    assert run.exit_code == 0, run.stdout + run.stderr
    return run.json()


def test_backup_list_and_restore_into_the_same_store(cli, tmp_path):
    secret = enroll(cli, "alice")
    made = cli("db", "backup", "--json")
    assert made.exit_code == 0, made.stderr
    manifest = made.json()
    path = Path(manifest["path"])
    assert path.is_file() and (path.stat().st_mode & 0o777) == 0o600
    assert manifest["users"] == 2 and manifest["schema_version"] >= 9
    assert "test-only-pw" not in json.dumps(manifest)
    # The file is an ordinary SQLite backup of eset2fa's schema.
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA application_id").fetchone()[0] == 0x45324641
    assert conn.execute("SELECT count(*) FROM users").fetchone()[0] == 2
    conn.close()
    assert [b["status"] for b in backups(cli)] == ["ok"]

    assert cli("user", "add", "bob").exit_code == 0
    assert cli("auth", "verify", "alice", totp_now(secret)).exit_code == 0
    restored = cli("--yes", "db", "restore", str(path), "--json")
    assert restored.exit_code == 0, restored.stderr
    assert restored.json()["replaced"]  # the live rows were kept as a backup first
    names = [u["name"] for u in cli("user", "list", "--json").json()]
    assert names == ["Administrator", "alice"]
    assert cli("user", "status", "alice", "--json").json()["state"] == "pending"
    assert cli("audit", "verify").exit_code == 0
    assert cli("user", "add", "carol").exit_code == 0  # ids continue after the restored rows
    assert {b["reason"] for b in backups(cli)} == {"manual", "replaced by restore"}


def test_a_backup_of_another_store_or_a_changed_file_is_refused_untouched(
    cli, tmp_path, monkeypatch
):
    made = cli("db", "backup", "--json").json()
    path = Path(made["path"])
    assert cli("user", "add", "bob").exit_code == 0
    before = cli("user", "list", "--json").json()
    # A foreign object in the file: refused by the schema check.
    tampered = tmp_path / "tampered.db"
    tampered.write_bytes(path.read_bytes())
    conn = sqlite3.connect(tampered)
    conn.execute("CREATE TRIGGER t AFTER INSERT ON audit BEGIN SELECT 1; END")
    conn.commit()
    conn.close()
    run = cli("--yes", "db", "restore", str(tampered), "--no-manifest")
    assert run.exit_code == 9 and "did not create" in run.stderr
    # Another key: refused.
    monkeypatch.setenv("ESET2FA_KEY", "A" * 43)
    run = cli("--yes", "db", "restore", str(path))
    assert run.exit_code == 9
    monkeypatch.undo()
    assert cli("user", "list", "--json").json() == before


def test_a_recovery_step_takes_a_backup_of_the_postgresql_store_first(cli):
    enroll(cli, "alice")
    run = cli(
        "user",
        "reset-password",
        "alice",
        "--password-stdin",
        "--json",
        input="A-new-passw0rd-for-alice\n",
    )
    assert run.exit_code == 0, run.stdout + run.stderr
    listed = backups(cli)
    assert [b["reason"] for b in listed] == ["reset-password alice"]
    assert listed[0]["status"] == "ok" and listed[0]["users"] == 2
