"""ESET2FA_KEY_FILE (issue 10): the key file's path, for SQLite stores too (instead of the file
beside the database); the same key from there opens the store on every node."""

from __future__ import annotations

import stat

import keyring
import pytest
from keyring.backends import null
from totp_helpers import enroll, totp_now


@pytest.fixture
def no_keyring():
    """No usable keyring: a new key goes to a key file."""
    previous = keyring.get_keyring()
    keyring.set_keyring(null.Keyring())
    yield
    keyring.set_keyring(previous)


def test_the_key_goes_where_eset2fa_key_file_points_and_is_read_from_there(
    cli, db_path, tmp_path, monkeypatch, no_keyring
):
    key_file = tmp_path / "keys" / "node.key"
    key_file.parent.mkdir()
    monkeypatch.setenv("ESET2FA_KEY_FILE", str(key_file))
    assert cli("init").exit_code == 0
    secret = enroll(cli, "alice")
    assert key_file.is_file() and stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert not db_path.with_name(db_path.name + ".key").exists()  # nothing beside the database
    assert cli("auth", "verify", "alice", totp_now(secret)).exit_code == 0
    monkeypatch.delenv("ESET2FA_KEY_FILE")
    run = cli("user", "enable", "alice", "--method", "totp")  # no key where it is looked for
    assert run.exit_code == 9 and "not found" in run.stderr
    monkeypatch.setenv("ESET2FA_KEY_FILE", str(key_file))
    assert cli("audit", "verify").exit_code == 0
