"""`db rekey`: every secret re-encrypted with a new key that replaces the old one where it lived."""

from __future__ import annotations

import stat

import keyring
import pytest
from keyring.backend import KeyringBackend
from totp_helpers import enroll, totp_now

from eset2fa.db import open_store
from eset2fa.secrets import keys

# Every test here works on a store made by `init`: a --db path is created by nothing else. Each
# test runs it itself, after choosing where the key lives (a store gets its key at creation).


def _memory_keyring_class():
    # Defined only after keyring chose its default backend: every KeyringBackend subclass is a
    # candidate for that choice, and this one must never be picked outside the fixture.
    class MemoryKeyring(KeyringBackend):
        priority = 10

        def __init__(self) -> None:
            super().__init__()
            self.entries: dict[tuple[str, str], str] = {}

        def get_password(self, service, username):
            return self.entries.get((service, username))

        def set_password(self, service, username, password):
            self.entries[(service, username)] = password

        def delete_password(self, service, username):
            self.entries.pop((service, username), None)

    return MemoryKeyring


@pytest.fixture
def memory_keyring():
    previous = keyring.get_keyring()
    backend = _memory_keyring_class()()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)


def _key_meta(sql):
    return {r[0]: r[1] for r in sql("SELECT key, value FROM meta WHERE key LIKE 'key_%'")}


def test_rekey_with_key_file(cli, db_path, sql, monkeypatch):
    assert cli("init").exit_code == 0
    alice = enroll(cli, "alice")
    bob = enroll(cli, "bob")
    key_file = db_path.with_name(db_path.name + ".key")
    old_text = key_file.read_text()
    # A stored credential is re-encrypted too (inserted directly: no secret setting is declared
    # on this branch).
    store = open_store(db_path)
    old_key = keys.load_key(store.conn, db_path)
    store.conn.execute(
        "INSERT INTO config (key, secret, updated_at) VALUES ('sms.password', ?, 'now')",
        (old_key.seal(b"gateway-password", "config:sms.password"),),
    )
    store.close()
    before = _key_meta(sql)

    assert cli("db", "rekey").exit_code == 2  # no terminal and no --yes
    result = cli("db", "rekey", "--yes", "--json")
    assert result.exit_code == 0, result.stderr
    data = result.json()
    assert (data["users"], data["settings"], data["key_source"]) == (2, 1, "file")
    assert data["old_fingerprint"] == old_key.fingerprint != data["new_fingerprint"]
    assert key_file.read_text() != old_text
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert not key_file.with_name(key_file.name + ".new").exists()
    after = _key_meta(sql)
    assert after["key_fingerprint"] == data["new_fingerprint"]
    assert after["key_check"] != before["key_check"]

    assert cli("auth", "verify", "alice", totp_now(alice)).exit_code == 0
    assert cli("auth", "verify", "bob", totp_now(bob)).exit_code == 0
    store = open_store(db_path)
    secret = store.conn.execute("SELECT secret FROM config WHERE key = 'sms.password'").fetchone()[
        0
    ]
    assert keys.load_key(store.conn, db_path).open(secret, "config:sms.password") == (
        b"gateway-password"
    )
    store.close()
    monkeypatch.setenv("ESET2FA_KEY", old_text.strip())
    assert cli("auth", "verify", "alice", totp_now(alice, 1)).exit_code == 9  # old key refused
    assert [r[0] for r in sql("SELECT action FROM audit WHERE action = 'db.rekey'")] == ["db.rekey"]


def test_rekey_with_keyring(cli, db_path, memory_keyring, sql):
    assert cli("init").exit_code == 0
    alice = enroll(cli, "alice")
    assert not db_path.with_name(db_path.name + ".key").exists()
    ((entry, old_value),) = memory_keyring.entries.items()
    result = cli("db", "rekey", "--yes", "--json")
    assert result.exit_code == 0, result.stderr
    assert result.json()["key_source"] == "keyring"
    # The new key went to its own entry, named by the key id the store now names; the old entry
    # was removed after the commit.
    key_id = _key_meta(sql)["key_id"]
    ((new_entry, new_value),) = memory_keyring.entries.items()
    assert new_entry == (entry[0], f"{entry[1]}-{key_id}") and new_value != old_value
    assert cli("auth", "verify", "alice", totp_now(alice)).exit_code == 0


def test_rekey_with_environment_key_prints_the_new_key_once(cli, monkeypatch):
    monkeypatch.setenv("ESET2FA_KEY", keys.encode_key(b"\x07" * 32))
    assert cli("init").exit_code == 0
    alice = enroll(cli, "alice")
    result = cli("db", "rekey", "--yes", "--json")
    assert result.exit_code == 0, result.stderr
    assert "ESET2FA_KEY=" not in result.stdout
    new_key = result.stderr.split("ESET2FA_KEY=")[1].split()[0]
    assert cli("auth", "verify", "alice", totp_now(alice)).exit_code == 9  # variable not updated
    monkeypatch.setenv("ESET2FA_KEY", new_key)
    assert cli("auth", "verify", "alice", totp_now(alice)).exit_code == 0


def test_rekey_with_a_wrong_key_changes_nothing(cli, db_path, monkeypatch):
    assert cli("init").exit_code == 0
    enroll(cli, "alice")
    before = {p.name: p.read_bytes() for p in db_path.parent.glob(db_path.name + "*")}
    monkeypatch.setenv("ESET2FA_KEY", keys.encode_key(b"\x03" * 32))
    assert cli("db", "rekey", "--yes").exit_code == 9
    assert {p.name: p.read_bytes() for p in db_path.parent.glob(db_path.name + "*")} == before


def test_rekey_without_a_key_yet_is_a_state_conflict(cli, store, sql):
    # A store gets its key at creation now; one made by an earlier eset2fa may still have none.
    import sqlite3

    conn = sqlite3.connect(store)
    with conn:
        conn.execute("DELETE FROM meta WHERE key LIKE 'key_%'")
    conn.close()
    store.with_name(store.name + ".key").unlink()
    result = cli("db", "rekey", "--yes", "--json")
    assert result.exit_code == 6
    assert "nothing to re-encrypt" in result.json()["error"]["message"]


def test_rekey_reseals_outbox_sms(cli, sql):
    assert cli("init").exit_code == 0
    assert cli("sms", "test", "+442079460001", "--text", "code 424242").exit_code == 0
    (row,) = sql("SELECT body, sealed FROM outbox WHERE channel = 'sms'")
    assert row["body"] == "(encrypted)" and b"424242" not in row["sealed"]
    before = row["sealed"]
    result = cli("db", "rekey", "--yes", "--json")
    assert result.exit_code == 0, result.stderr
    (after,) = sql("SELECT sealed FROM outbox WHERE channel = 'sms'")
    assert after["sealed"] != before
    (message,) = cli("outbox", "--channel", "sms", "--json").json()
    assert message["body"] == "code 424242"
