"""db restore: validated before the live database is touched; refused files change nothing."""

from __future__ import annotations

import hashlib
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


# The key comes from ESET2FA_KEY before `store` runs `init`: a store gets its key at creation.
pytestmark = pytest.mark.usefixtures("env_master_key")


@pytest.fixture
def backup(cli, store, env_master_key) -> Path:
    """A store with some users and its encryption key (ESET2FA_KEY), backed up; returns the
    backup's path. (Restore refuses a backup without a key check value: issue 9.)"""
    assert cli("user", "add", "alice", "--group", "ops").exit_code == 0
    assert cli("user", "add", "bob").exit_code == 0
    assert cli("user", "enable", "bob", "--method", "totp", "--json").exit_code == 0  # the key
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
    assert cli("init").exit_code == 0
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
    if key_file.exists():  # else the key is ESET2FA_KEY, which the new host has too
        new_db.with_name(new_db.name + ".key").write_bytes(key_file.read_bytes())
    r = cli("db", "restore", str(backup), "--yes", "--json", db=new_db)
    assert r.exit_code == 0, r.stderr
    assert r.json()["replaced"] is None
    assert [row[0] for row in rows(new_db, "SELECT name FROM users ORDER BY name")] == [
        "Administrator",
        "alice",
        "bob",
    ]


# -- issue 9: what could take over or weaken the store is refused -------------------------------


def manifest_of(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def reseal_manifest(path: Path) -> None:
    """Make the manifest describe the file as it is now, as whoever tampered with it could."""
    data = json.loads(manifest_of(path).read_text())
    data["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    data["size"] = path.stat().st_size
    manifest_of(path).write_text(json.dumps(data))


def tampered_copy(backup: Path, target: Path, *statements: str, raw_schema: bool = False) -> Path:
    """A copy of a good backup (key check value, manifest) with `statements` run on it, and its
    manifest made to match: only what the statements changed can get it refused."""
    target.write_bytes(backup.read_bytes())
    manifest_of(target).write_text(manifest_of(backup).read_text())
    conn = sqlite3.connect(target, isolation_level=None)
    if raw_schema:
        conn.execute("PRAGMA writable_schema = ON")
    for statement in statements:
        conn.execute(statement)
    if raw_schema:
        conn.execute("PRAGMA writable_schema = OFF")
    conn.close()
    reseal_manifest(target)
    return target


def refused(r, *words: str) -> dict:
    """A refusal: exit 9, one line naming what was wrong, a hint; returns the JSON error."""
    assert r.exit_code == 9, (r.stdout, r.stderr)
    error = json.loads(r.stdout)["error"]
    assert "\n" not in error["message"] and error["hint"]
    for word in words:
        assert word in error["message"], error["message"]
    return error


def test_a_store_made_elsewhere_without_a_key_check_value_is_refused(
    cli, store, backup, tmp_path, monkeypatch
):
    """The reproducer: `eset2fa --db x.db init --password-stdin <<<'attacker-pass-1'` and
    `eset2fa db restore x.db --yes` used to exit 0 and hand the store to that password.

    A store gets its key at creation now, so the attacker's store has a check value, of a key of
    its own: refused because it does not open with this store's key; one with its check value
    removed is refused for having none."""
    x = tmp_path / "x.db"
    own_key = monkeypatch.context()
    with own_key as env:  # the attacker does not hold this store's key
        env.setenv("ESET2FA_KEY", keys.encode_key(b"a" * 32))
        assert cli("init", "--password-stdin", input="attacker-pass-1\n", db=x).exit_code == 0
        # and with a manifest of its own (the attacker's `db backup`)
        attacker_backup = Path(cli("db", "backup", "--json", db=x).json()["path"])
    before = live_bytes(store)

    r = cli("db", "restore", str(x), "--yes", "--json")  # no manifest beside it either
    refused(r, str(x), "manifest")
    r = cli("db", "restore", str(x), "--yes", "--json", "--no-manifest")
    assert refused(r, str(x), "key")["code"] == "key"
    refused(cli("db", "restore", str(attacker_backup), "--yes", "--json"), "key")
    conn = sqlite3.connect(x)  # an older store, or one whose check value was removed
    with conn:
        conn.execute("DELETE FROM meta WHERE key LIKE 'key_%'")
    conn.close()
    r = cli("db", "restore", str(x), "--yes", "--json", "--no-manifest")
    error = refused(r, str(x), "no encryption key check value")
    assert error["code"] == "key"

    assert live_bytes(store) == before
    assert no_leftovers(store.parent)
    r = cli(
        "--as", "Administrator", "--as-password-stdin", "user", "list", input="attacker-pass-1\n"
    )
    assert r.exit_code == 5  # the attacker's password does not open the live store
    assert [row[0] for row in rows(store, "SELECT name FROM users ORDER BY name")] == [
        "Administrator",
        "alice",
        "bob",
    ]


KEEP_UNLOCKED = (
    "CREATE TRIGGER {name} AFTER UPDATE OF fail_count ON users "
    "BEGIN UPDATE users SET fail_count = 0, locked = 0 WHERE id = NEW.id; END"
)

FOREIGN_SCHEMA = {
    "trigger resetting fail_count": ([KEEP_UNLOCKED.format(name="keep_unlocked")], False),
    "view": (["CREATE VIEW everyone AS SELECT name, password_hash FROM users"], False),
    "extra table": (["CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)"], False),
    "extra index": (["CREATE INDEX users_phone ON users (phone)"], False),
    "altered table": (["ALTER TABLE users ADD COLUMN bypass INTEGER"], False),
    "altered index": (
        ["DROP INDEX users_state", "CREATE INDEX users_state ON users (name)"],
        False,
    ),
    "missing index": (["DROP INDEX grants_user"], False),
    # SQLite refuses sqlite_ names in CREATE, but loads (and fires) a row written this way
    "trigger named sqlite_": (
        [
            "INSERT INTO sqlite_master (type, name, tbl_name, rootpage, sql) VALUES ('trigger', "
            f"'sqlite_keep', 'users', 0, '{KEEP_UNLOCKED.format(name='sqlite_keep')}')"
        ],
        True,
    ),
}


@pytest.mark.parametrize("what", list(FOREIGN_SCHEMA))
def test_a_backup_with_schema_objects_eset2fa_did_not_create_is_refused(
    cli, store, backup, tmp_path, what
):
    statements, raw = FOREIGN_SCHEMA[what]
    bad = tampered_copy(backup, tmp_path / "bad.db", *statements, raw_schema=raw)
    assert rows(bad, "PRAGMA integrity_check") == [("ok",)]  # only the schema check can tell
    before = live_bytes(store)
    r = cli("db", "restore", str(bad), "--yes", "--json")
    error = refused(r, str(bad), "schema objects eset2fa did not create")
    assert error["code"] == "storage"
    assert live_bytes(store) == before
    assert no_leftovers(store.parent)


def test_no_manifest_does_not_lift_the_schema_check(cli, store, backup, tmp_path):
    bad = tampered_copy(backup, tmp_path / "bad.db", KEEP_UNLOCKED.format(name="keep_unlocked"))
    manifest_of(bad).unlink()
    before = live_bytes(store)
    r = cli("db", "restore", str(bad), "--yes", "--json", "--no-manifest")
    refused(r, str(bad), "trigger keep_unlocked (not eset2fa's)")
    assert live_bytes(store) == before
    assert no_leftovers(store.parent)


def test_a_restored_trigger_would_have_kept_the_account_unlocked(cli, store, backup, tmp_path):
    """Why the trigger matters: in the tampered file, failures never stick."""
    bad = tampered_copy(backup, tmp_path / "bad.db", KEEP_UNLOCKED.format(name="keep_unlocked"))
    conn = sqlite3.connect(bad)
    with conn:
        conn.execute("UPDATE users SET fail_count = 10, locked = 1 WHERE name = 'bob'")
    conn.close()
    assert rows(bad, "SELECT fail_count, locked FROM users WHERE name = 'bob'") == [(0, 0)]
    reseal_manifest(bad)
    r = cli("db", "restore", str(bad), "--yes", "--json")
    assert "trigger keep_unlocked (not eset2fa's)" in refused(r)["message"]
    assert rows(store, "SELECT count(*) FROM sqlite_master WHERE type = 'trigger'") == [(0,)]


def test_a_backup_without_its_manifest_needs_no_manifest(cli, store, backup):
    manifest_of(backup).unlink()
    cli("user", "add", "later")
    before = live_bytes(store)
    r = cli("db", "restore", str(backup), "--yes", "--json")
    error = refused(r, str(backup), "has no manifest")
    assert "--no-manifest" in error["hint"]
    assert live_bytes(store) == before
    assert no_leftovers(store.parent)

    r = cli("db", "restore", str(backup), "--yes", "--json", "--no-manifest")
    assert r.exit_code == 0, r.stderr
    assert cli("user", "status", "later").exit_code == 3  # the backup's state is back
    assert cli("user", "status", "bob").exit_code == 0


@pytest.mark.parametrize("damage", [_corrupt, _truncated, _foreign, _newer_schema, _not_sqlite])
def test_no_manifest_does_not_lift_any_other_check(cli, store, backup, tmp_path, damage):
    bad = tmp_path / "bad.db"
    damage(backup, bad)
    before = live_bytes(store)
    r = cli("db", "restore", str(bad), "--yes", "--json", "--no-manifest")
    refused(r, str(bad))
    assert live_bytes(store) == before
    assert no_leftovers(store.parent)


def test_no_manifest_does_not_lift_the_key_check(cli, store, backup, monkeypatch):
    manifest_of(backup).unlink()
    before = live_bytes(store)
    monkeypatch.setenv("ESET2FA_KEY", keys.encode_key(b"w" * 32))
    r = cli("db", "restore", str(backup), "--yes", "--json", "--no-manifest")
    assert refused(r, str(backup))["code"] == "key"
    assert live_bytes(store) == before


def test_a_manifest_that_is_there_is_checked_even_with_no_manifest(cli, store, backup):
    before = live_bytes(store)
    manifest_of(backup).write_text("not json")
    for extra in ([], ["--no-manifest"]):
        refused(cli("db", "restore", str(backup), "--yes", "--json", *extra), "manifest")
    assert live_bytes(store) == before
    assert no_leftovers(store.parent)


def test_a_manifest_edited_to_another_key_is_refused(cli, store, backup):
    data = json.loads(manifest_of(backup).read_text())
    data["key_fingerprint"] = "0" * 16
    manifest_of(backup).write_text(json.dumps(data))
    before = live_bytes(store)
    refused(cli("db", "restore", str(backup), "--yes", "--json"), "does not match its manifest")
    assert live_bytes(store) == before


def test_a_refused_restore_onto_a_new_machine_leaves_no_folder(cli, backup, tmp_path):
    manifest_of(backup).unlink()
    new_db = tmp_path / "new-host" / "data" / "eset2fa.db"
    r = cli("db", "restore", str(backup), "--yes", "--json", db=new_db)
    refused(r, "manifest")
    assert not (tmp_path / "new-host").exists()


def test_backups_listing_flags_a_backup_with_foreign_schema_objects(cli, store, backup):
    good = Path(cli("db", "backup", "--reason", "good", "--json").json()["path"])
    conn = sqlite3.connect(backup, isolation_level=None)
    conn.execute(KEEP_UNLOCKED.format(name="keep_unlocked"))
    conn.close()
    reseal_manifest(backup)
    r = cli("db", "backups", "--json")
    assert r.exit_code == 1
    listed = {Path(b["path"]): b for b in r.json()}
    assert listed[good]["status"] == "ok"
    assert listed[backup]["status"] == "foreign schema"
    assert "trigger keep_unlocked" in listed[backup]["detail"]
    r = cli("db", "backups")
    assert "foreign schema: trigger keep_unlocked" in r.stdout


def test_schema_text_is_compared_without_comments_but_never_loses_code():
    from eset2fa.db.schema import normalize_sql

    reference = "CREATE TABLE t (\n  a INTEGER, -- why a\n  b TEXT\n)"
    assert normalize_sql(reference) == normalize_sql(
        "CREATE TABLE t ( a INTEGER, /* ok */ b TEXT )"
    )
    # moving the line break hides `b TEXT` in the comment: a different definition
    assert normalize_sql(reference) != normalize_sql(
        "CREATE TABLE t (\n a INTEGER, -- why a b TEXT\n)"
    )
    # whitespace inside quotes is part of a name or a value
    assert normalize_sql("CHECK (x IN ('a  b'))") != normalize_sql("CHECK (x IN ('a b'))")
    assert normalize_sql('CREATE TABLE "a  b" (x)') != normalize_sql('CREATE TABLE "a b" (x)')
    assert normalize_sql("SELECT '--', 'it''s -- x' /* c */") == "SELECT '--', 'it''s -- x'"
