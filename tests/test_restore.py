"""db restore: validated before the live database is touched; refused files change nothing."""

from __future__ import annotations

import json
import sqlite3
import stat
from pathlib import Path

import pytest

from eset2fa.secrets import keys


def rows(db: Path, statement: str = "SELECT * FROM users ORDER BY id") -> list[tuple]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute(statement).fetchall()
    finally:
        conn.close()


def live_bytes(db: Path) -> dict[str, bytes]:
    """The live database and its side files, to compare byte for byte."""
    found = {}
    for suffix in ("", "-wal", "-shm"):
        side = Path(str(db) + suffix)
        if side.exists():
            found[suffix] = side.read_bytes()
    return found


def no_leftovers(folder: Path) -> bool:
    return not [p for p in folder.iterdir() if ".partial-" in p.name or ".replaced-" in p.name]


@pytest.fixture
def backup(cli, store) -> Path:
    """A store with some users, backed up; returns the backup's path."""
    assert cli("user", "add", "alice", "--group", "ops").exit_code == 0
    assert cli("user", "add", "bob").exit_code == 0
    r = cli("db", "backup", "--json")
    assert r.exit_code == 0
    return Path(r.json()["path"])


def test_restore_round_trip(cli, store, backup, sql):
    at_backup = rows(store)
    assert cli("user", "add", "carol").exit_code == 0
    assert cli("user", "delete", "bob", "--yes").exit_code == 0
    conn = sqlite3.connect(store)
    with conn:
        conn.execute("UPDATE users SET state = 'active', fail_count = 3 WHERE name = 'alice'")
    conn.close()
    assert rows(store) != at_backup

    r = cli("db", "restore", str(backup), "--yes", "--json")
    assert r.exit_code == 0, r.stderr
    result = r.json()
    assert rows(store) == at_backup
    replaced = Path(result["replaced"])
    assert replaced.parent == store.parent and ".replaced-" in replaced.name
    assert stat.S_IMODE(replaced.stat().st_mode) == 0o600
    names = [r[0] for r in rows(replaced, "SELECT name FROM users ORDER BY name")]
    assert names == ["Administrator", "alice", "carol"]  # the replaced state, WAL included
    assert stat.S_IMODE(store.stat().st_mode) == 0o600
    assert rows(store, "PRAGMA journal_mode") == [("wal",)]
    assert rows(store, "PRAGMA integrity_check") == [("ok",)]
    audit = rows(store, "SELECT action, details FROM audit WHERE action = 'db.restore'")
    assert len(audit) == 1 and json.loads(audit[0][1])["backup"] == str(backup)
    assert cli("user", "status", "carol").exit_code == 3  # the CLI sees the restored store
    assert not [p for p in store.parent.iterdir() if ".partial-" in p.name]


def _corrupt(path: Path, target: Path) -> None:
    data = bytearray(path.read_bytes())
    for offset in range(4096, len(data), 4096):  # the b-tree header of every page but the first
        data[offset : offset + 8] = b"\xa5" * 8
    target.write_bytes(bytes(data))


def _truncated(path: Path, target: Path) -> None:
    data = path.read_bytes()
    target.write_bytes(data[: len(data) // 2 + 1000])


def _foreign(path: Path, target: Path) -> None:
    conn = sqlite3.connect(target)
    conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
    conn.execute("INSERT INTO users (name) VALUES ('someone')")
    conn.commit()
    conn.close()


def _newer_schema(path: Path, target: Path) -> None:
    target.write_bytes(path.read_bytes())
    conn = sqlite3.connect(target)
    conn.execute("PRAGMA user_version = 999")
    conn.close()


def _not_sqlite(path: Path, target: Path) -> None:
    target.write_text("name,group\nalice,ops\n" * 200)


@pytest.mark.parametrize(
    "damage", [_corrupt, _truncated, _foreign, _newer_schema, _not_sqlite], ids=lambda f: f.__name__
)
def test_bad_backups_are_refused_and_the_live_database_is_untouched(
    cli, store, backup, tmp_path, damage
):
    bad = tmp_path / "bad.db"
    damage(backup, bad)
    before = live_bytes(store)
    r = cli("db", "restore", str(bad), "--yes", "--json")
    assert r.exit_code == 9, r.stdout
    assert r.json()["error"]["code"] in ("storage", "key")
    assert str(bad) in r.json()["error"]["message"]
    assert live_bytes(store) == before
    assert no_leftovers(store.parent)


def test_a_backup_changed_since_its_manifest_is_refused(cli, store, backup):
    data = bytearray(backup.read_bytes())
    data[-10] ^= 0x01  # a change integrity_check would not even notice (unused space)
    backup.write_bytes(bytes(data))
    before = live_bytes(store)
    r = cli("db", "restore", str(backup), "--yes")
    assert r.exit_code == 9
    assert "SHA-256" in r.stderr
    assert live_bytes(store) == before


def test_restore_with_the_wrong_key_is_refused(cli, db_path, monkeypatch):
    from eset2fa.db import open_store

    right, wrong = keys.encode_key(b"r" * 32), keys.encode_key(b"w" * 32)
    monkeypatch.setenv("ESET2FA_KEY", right)
    store = db_path  # created with `right` (a store gets its key at creation)
    assert cli("user", "list").exit_code == 0
    opened = open_store(store)
    keys.load_key(opened.conn, store, create=True)
    opened.close()
    backup = Path(cli("db", "backup", "--json").json()["path"])
    assert cli("user", "add", "later").exit_code == 0
    before = live_bytes(store)

    monkeypatch.setenv("ESET2FA_KEY", wrong)
    r = cli("db", "restore", str(backup), "--yes", "--json")
    assert r.exit_code == 9
    assert r.json()["error"]["code"] == "key"
    assert live_bytes(store) == before

    monkeypatch.delenv("ESET2FA_KEY")  # no key anywhere: refused as well
    assert cli("db", "restore", str(backup), "--yes").exit_code == 9
    assert live_bytes(store) == before

    monkeypatch.setenv("ESET2FA_KEY", right)
    r = cli("db", "restore", str(backup), "--yes", "--json")
    assert r.exit_code == 0
    assert r.json()["key_fingerprint"] == keys.MasterKey(b"r" * 32, "env").fingerprint
    assert cli("user", "status", "later").exit_code == 3


def test_restore_asks_first_and_refuses_without_a_terminal(cli, store, backup):
    cli("user", "add", "later")
    before = live_bytes(store)
    r = cli("db", "restore", str(backup))
    assert r.exit_code == 2 and "--yes" in r.stderr
    assert live_bytes(store) == before


def test_restore_of_a_missing_file_or_the_live_database(cli, store, tmp_path):
    assert cli("db", "restore", str(tmp_path / "nope.db"), "--yes").exit_code == 3
    assert cli("db", "restore", str(store), "--yes").exit_code == 2


def test_restore_is_refused_to_a_delegated_user(cli, store, backup):
    assert cli("user", "add", "helpdesk", "--password-stdin", input="helpdesk-pw\n").exit_code == 0
    before = rows(store)
    r = cli(
        "--as",
        "helpdesk",
        "--as-password-stdin",
        "db",
        "restore",
        str(backup),
        "--yes",
        input="helpdesk-pw\n",
    )
    assert r.exit_code == 5
    assert rows(store) == before  # (the --as sign-in itself is audited, so bytes differ)
    assert no_leftovers(store.parent)


def test_restore_onto_a_machine_without_a_store(cli, store, backup, tmp_path):
    new_db = tmp_path / "new-host" / "eset2fa.db"
    # The key travels apart from the backup (README): put it beside the new database first.
    new_db.parent.mkdir(mode=0o700)
    key_file = store.with_name(store.name + ".key")
    new_db.with_name(new_db.name + ".key").write_bytes(key_file.read_bytes())
    r = cli("db", "restore", str(backup), "--yes", "--json", db=new_db)
    assert r.exit_code == 0, r.stderr
    assert r.json()["replaced"] is None
    assert [row[0] for row in rows(new_db, "SELECT name FROM users ORDER BY name")] == [
        "Administrator",
        "alice",
        "bob",
    ]
